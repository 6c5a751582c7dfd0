/**
 * wadm's API and `wadm_state` served by Trellis hosts (issue 9, item 3; reference §7, §8), driven exactly as
 * washboard's client does it — real nats-server, real hosts, real component and provider.
 *
 * The requests copy `@wasmcloud/lattice-client-core` (wasmCloud/typescript@82e12753,
 * `packages/lattice-client-core/src/controllers/applications.ts`, `hosts.ts`, `providers.ts`,
 * `connection/nats-ws-lattice-connection.ts`): `nc.request(subject, data)` over the WebSocket listener (nats.ws), with
 * the same subjects and bodies, the reply read as JSON; host and provider lists read from KV bucket `wadm_state`, keys
 * `host_{lattice}` and `provider_{lattice}`. The package itself cannot be installed here (peer dependency conflict). Reply shapes are
 * wadm's (wasmCloud/wadm@589e98b3 `crates/wadm-types/src/api.rs`).
 *
 * Fixture: adder.wasm in `TRELLIS_FIXTURES_DIR` (test/support/components.ts; bytecodealliance/jco · examples/transpile/adder/adder.wasm ·
 * dae02a06, Apache-2.0 WITH LLVM-exception), read in place, never copied.
 */
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { type NatsConnection, headers, wsconnect } from "@nats-io/transport-node";
import { parse as parseYaml } from "yaml";
import { WadmStateWriter, updateComponents, updateHosts, updateProviders, wadmHostEntry } from "../src/app/wadm/index.ts";
import type { HostInventory } from "../src/core/host.ts";
import { defaultWorkloads } from "../src/host/default-workloads.ts";
import type { Host } from "../src/host/host.ts";
import { providerSupervisor } from "../src/provider/supervisor.ts";
import { waitFor } from "../src/testing/index.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { fixture, needsFixtures } from "./support/components.ts";

const ADDER = fixture("adder.wasm");
/** The app's tests from put to delete share its state and run adder.wasm: they skip together when it is absent. */
const WITH_ADDER = { skip: needsFixtures("adder.wasm") };

const manifest = (version: string, instances: number) => `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: adder-app
  annotations:
    version: ${version}
    description: adds
spec:
  components:
    - name: adder
      type: component
      properties:
        image: ${ADDER}
      traits:
        - type: spreadscaler
          properties:
            instances: ${instances}
        - type: link
          properties:
            namespace: wasi
            package: keyvalue
            interfaces: [store]
            target:
              name: kv
    - name: kv
      type: capability
      properties:
        image: kv-memory
`;

type Json = Record<string, any>;

/** What lattice-client-core's `NatsWsLatticeConnection` does: request, then `response.json()`. */
class WashboardClient {
  readonly nc: NatsConnection;
  readonly lattice: string;
  constructor(nc: NatsConnection, lattice: string) {
    this.nc = nc;
    this.lattice = lattice;
  }
  get wadmTopic(): string {
    return `wadm.api.${this.lattice}`;
  }
  async request(subject: string, data?: string): Promise<Json> {
    const m = await this.nc.request(subject, data, { timeout: 5000 });
    return m.json<Json>();
  }
  /** `getBucketEntry`: `jetstream().views.kv(bucket)` then `get(key)`; a missing entry throws. */
  async bucketEntry(bucket: string, key: string): Promise<Json> {
    const kv = await new Kvm(this.nc).open(bucket);
    const e = await kv.get(key);
    if (e === null) throw new Error(`Entry with key ${key} not found in bucket ${bucket}`);
    return e.json<Json>();
  }
  hosts() {
    return this.bucketEntry("wadm_state", `host_${this.lattice}`);
  }
  providers() {
    return this.bucketEntry("wadm_state", `provider_${this.lattice}`);
  }
  list() {
    return this.request(`${this.wadmTopic}.model.get`);
  }
  manifest(name: string, version?: string) {
    return this.request(`${this.wadmTopic}.model.get.${name}`, version ? JSON.stringify({ version }) : undefined);
  }
  versions(name: string) {
    return this.request(`${this.wadmTopic}.model.versions.${name}`);
  }
  put(yaml: string) {
    return this.request(`${this.wadmTopic}.model.put`, yaml);
  }
  deploy(name: string, version?: string) {
    return this.request(`${this.wadmTopic}.model.deploy.${name}`, version ? JSON.stringify({ version }) : undefined);
  }
  undeploy(name: string) {
    return this.request(`${this.wadmTopic}.model.undeploy.${name}`, JSON.stringify({ non_destructive: false }));
  }
  delete(name: string, options: { version?: string; delete_all?: boolean } = {}) {
    return this.request(`${this.wadmTopic}.model.del.${name}`, JSON.stringify({ ...(options.version ? { version: options.version } : {}), delete_all: options.delete_all ?? false }));
  }
  status(name: string) {
    return this.request(`${this.wadmTopic}.model.status.${name}`);
  }
}

const hostOpts = () => ({
  allowedPaths: [path.dirname(ADDER)],
  workloads: { ...defaultWorkloads(), providers: providerSupervisor({ firstHealthCheckMs: 100, healthIntervalMs: 1000, shutdownDelayMs: 500 }) },
});

let t: TestLattice;
let wb: WashboardClient;
let ws: NatsConnection | undefined;
let a: Host;
let b: Host;

before(async () => {
  t = await testLattice();
  a = await t.startHost(hostOpts());
  b = await t.startHost(hostOpts());
  // washboard connects with nats.ws: over the server's WebSocket listener when the harness has one
  ws = t.nats.websocketUrl ? await wsconnect({ servers: t.nats.websocketUrl }) : undefined;
  wb = new WashboardClient(ws ?? (await t.connection()), t.lattice);
});
after(async () => {
  await ws?.close();
  await t.close();
});

/** Waits until the host's component counts in `wadm_state` are `want` (component id → count; {} for none). */
async function hostComponents(hostId: string, want: Record<string, number>): Promise<void> {
  await waitFor(async () => JSON.stringify((await wb.hosts())[hostId]?.components) === JSON.stringify(want), { timeoutMs: 20_000 });
}

describe("wadm API and wadm_state, as washboard uses them", () => {
  test("hosts list from wadm_state host_{lattice}: both hosts, in wadm's Host shape", async () => {
    const hosts = await wb.hosts();
    assert.deepEqual(Object.keys(hosts).sort(), [a.id, b.id].sort());
    const h = hosts[a.id]!;
    assert.deepEqual(Object.keys(h).sort(), ["components", "friendly_name", "id", "labels", "last_seen", "providers", "uptime_seconds", "version"]);
    assert.equal(h.id, a.id);
    assert.equal(h.friendly_name, a.friendlyName);
    assert.deepEqual(h.labels, a.labels());
    assert.deepEqual(h.components, {});
    assert.deepEqual(h.providers, []);
    assert.match(h.version, /^\d+\.\d+\.\d+/);
    assert.ok(Date.now() - Date.parse(h.last_seen) < 60_000);
  });

  test("a third host appears in wadm_state and is removed when it stops", async () => {
    const c = await t.startHost();
    await waitFor(async () => (await wb.hosts())[c.id] !== undefined);
    await c.stop();
    await waitFor(async () => (await wb.hosts())[c.id] === undefined);
    assert.deepEqual(Object.keys(await wb.hosts()).sort(), [a.id, b.id].sort());
  });

  test("no applications yet: model.get lists none", async () => {
    assert.deepEqual(await wb.list(), { result: "success", message: "Successfully fetched list of applications", models: [] });
  });

  test("put: created, then deploy: acknowledged; the app runs on both hosts and wadm_state shows it", WITH_ADDER, async () => {
    const put = await wb.put(manifest("v1", 2));
    assert.deepEqual(put, { result: "created", total_versions: 1, current_version: "v1", message: "Successfully put manifest adder-app v1", name: "adder-app" });
    const listed = await wb.list();
    assert.equal(listed.models[0].name, "adder-app");
    assert.equal(listed.models[0].deployed_version, null);
    assert.equal(listed.models[0].status, "undeployed");

    const dep = await wb.deploy("adder-app");
    assert.deepEqual(dep, { result: "acknowledged", message: "Successfully deployed application adder-app v1", name: "adder-app", version: "v1" });
    await waitFor(async () => (await wb.status("adder-app")).status?.status.type === "deployed", { timeoutMs: 30_000 });
    const inv = await Promise.all([a.id, b.id].map((id) => t.client.getInventory(id)));
    assert.deepEqual(inv.map((i) => i.components.map((c) => [c.id, c.max_instances])), [[["adder_app-adder", 1]], [["adder_app-adder", 1]]]);
    await hostComponents(a.id, { "adder_app-adder": 1 });
    await hostComponents(b.id, { "adder_app-adder": 1 });
    // "Pending" until the provider's first health check passes, then "Running" (wadm's ProviderStatus)
    await waitFor(async () => Object.values((await wb.providers())["adder_app-kv"]?.hosts ?? {}).join() === "Running", { timeoutMs: 10_000 });
    const providers = await wb.providers();
    assert.deepEqual(Object.keys(providers), ["adder_app-kv"]);
    assert.equal(providers["adder_app-kv"].reference, "kv-memory");
    assert.deepEqual(Object.values(providers["adder_app-kv"].hosts), ["Running"]);
    const comps = await wb.bucketEntry("wadm_state", `component_${t.lattice}`);
    assert.deepEqual(Object.keys(comps["adder_app-adder"].instances).sort(), [a.id, b.id].sort());
  });

  test("status, list, manifest and versions in wadm's shapes", WITH_ADDER, async () => {
    const st = await wb.status("adder-app");
    assert.equal(st.result, "ok");
    assert.deepEqual(st.status.status, { type: "deployed" });
    assert.deepEqual(st.status.version, "");
    assert.deepEqual(st.status.components, []);
    assert.deepEqual(
      st.status.scalers.map((s: Json) => [s.kind, s.name, s.status.type]),
      [
        ["SpreadScaler", "adder_app-adder", "deployed"],
        ["SpreadScaler", "adder_app-kv", "deployed"],
        ["LinkScaler", "adder_app-adder -(wasi:keyvalue)-> adder_app-kv", "deployed"],
      ],
    );
    const list = await wb.list();
    assert.equal(list.result, "success");
    assert.deepEqual(
      list.models.map((m: Json) => [m.name, m.version, m.description, m.deployed_version, m.status, m.detailed_status.status.type]),
      [["adder-app", "v1", "adds", "v1", "deployed", "deployed"]],
    );
    const got = await wb.manifest("adder-app");
    assert.equal(got.result, "success");
    assert.equal(got.manifest.metadata.name, "adder-app");
    assert.equal(got.manifest.spec.components[0].properties.image, ADDER);
    assert.deepEqual(await wb.versions("adder-app"), {
      result: "success",
      message: "Successfully fetched versions for application adder-app",
      versions: [{ version: "v1", deployed: true }],
    });
  });

  test("a new version: newversion; deploying it by version rescales; versions mark it deployed", WITH_ADDER, async () => {
    const put = await wb.put(manifest("v2", 4));
    assert.equal(put.result, "newversion");
    assert.equal(put.total_versions, 2);
    assert.equal((await wb.manifest("adder-app", "v1")).manifest.spec.components[0].traits[0].properties.instances, 2);
    assert.equal((await wb.deploy("adder-app", "v2")).result, "acknowledged");
    await hostComponents(a.id, { "adder_app-adder": 2 });
    await hostComponents(b.id, { "adder_app-adder": 2 });
    await waitFor(async () => (await wb.status("adder-app")).status?.status.type === "deployed", { timeoutMs: 20_000 });
    assert.deepEqual((await wb.versions("adder-app")).versions, [
      { version: "v1", deployed: false },
      { version: "v2", deployed: true },
    ]);
  });

  test("malformed or impossible requests get wadm's error replies, never silence", WITH_ADDER, async () => {
    const err = (r: Json, re: RegExp) => {
      assert.equal(r.result, "error", JSON.stringify(r));
      assert.match(r.message, re);
    };
    err(await wb.put("apiVersion: [unclosed"), /^Unable to parse manifest: /);
    err(await wb.put(""), /^Unable to parse manifest: /);
    err(await wb.put(manifest("v1", 1)), /^Manifest version v1 already exists$/);
    err(await wb.put(manifest("latest", 1)), /^Unable to parse manifest: .*latest/);
    err(await wb.request(`${wb.wadmTopic}.model.deploy.adder-app`, "{not json"), /^Unable to parse deploy application request: /);
    err(await wb.request(`${wb.wadmTopic}.model.get.adder-app`, JSON.stringify({ version: 3 })), /^Unable to parse get application request: version/);
    err(await wb.request(`${wb.wadmTopic}.model.get.adder-app.extra`), /^Invalid subject: Found extra components/);
    err(await wb.request(`${wb.wadmTopic}.model`), /^Invalid subject: Expected to find operation/);
    err(await wb.request(`${wb.wadmTopic}.model.frobnicate.adder-app`), /^Unsupported subject: /);
    err(await wb.request(`${wb.wadmTopic}.model.put.adder-app`, manifest("v9", 1)), /^Unsupported subject: /);
    err(await wb.deploy("adder-app", "v7"), /does not have a version 'v7' to deploy/);
    assert.deepEqual(await wb.deploy("nope"), { result: "notfound", message: "Application with the name nope not found", name: "nope", version: null });
    assert.equal((await wb.status("nope")).result, "notfound");
    assert.equal((await wb.versions("nope")).result, "notfound");
    assert.equal((await wb.manifest("nope")).result, "notfound");
    assert.equal((await wb.manifest("adder-app", "v7")).result, "notfound");
    assert.equal((await wb.delete("nope")).result, "noop");
    assert.equal((await wb.delete("adder-app", { version: "v7" })).result, "noop");
    // the app was not touched by any of this
    assert.deepEqual((await wb.versions("adder-app")).versions.map((v: Json) => v.version), ["v1", "v2"]);
  });

  test("put as wash does it (wadm-client: JSON body, Content-Type: application/json); other content types are refused", WITH_ADDER, async () => {
    const json = headers();
    json.set("Content-Type", "application/json");
    const body = JSON.stringify(parseYaml(manifest("v3", 1)));
    const put = (await wb.nc.request(`${wb.wadmTopic}.model.put`, body, { timeout: 5000, headers: json })).json<Json>();
    assert.deepEqual([put.result, put.current_version, put.total_versions], ["newversion", "v3", 3]);
    const text = headers();
    text.set("Content-Type", "text/plain");
    const bad = (await wb.nc.request(`${wb.wadmTopic}.model.put`, manifest("v4", 1), { timeout: 5000, headers: text })).json<Json>();
    assert.deepEqual(bad, { result: "error", message: "Unsupported content type text/plain given. Wadm supports YAML and JSON" });
    // wadm-client's delete body: {"version": …}
    assert.deepEqual(await wb.request(`${wb.wadmTopic}.model.del.adder-app`, JSON.stringify({ version: "v3" })), {
      result: "deleted",
      message: "Successfully deleted version v3 of application adder-app",
      undeploy: false,
    });
  });

  test("undeploy: acknowledged; the component and provider leave the hosts and wadm_state; versions stay", WITH_ADDER, async () => {
    assert.deepEqual(await wb.undeploy("adder-app"), { result: "acknowledged", message: "Successfully undeployed application adder-app", name: "adder-app", version: null });
    await hostComponents(a.id, {});
    await hostComponents(b.id, {});
    await waitFor(async () => Object.keys(await wb.providers()).length === 0, { timeoutMs: 20_000 });
    const inv = await Promise.all([a.id, b.id].map((id) => t.client.getInventory(id)));
    assert.deepEqual(inv.flatMap((i) => [...i.components, ...i.providers]), []);
    assert.deepEqual((await wb.status("adder-app")).status.status, { type: "undeployed" });
    assert.deepEqual((await wb.versions("adder-app")).versions, [
      { version: "v1", deployed: false },
      { version: "v2", deployed: false },
    ]);
    assert.equal((await wb.list()).models[0].status, "undeployed");
  });

  test("delete: one version, then the whole app; the list is empty again", WITH_ADDER, async () => {
    assert.deepEqual(await wb.delete("adder-app", { version: "v1" }), { result: "deleted", message: "Successfully deleted version v1 of application adder-app", undeploy: false });
    assert.deepEqual((await wb.versions("adder-app")).versions, [{ version: "v2", deployed: false }]);
    assert.deepEqual(await wb.delete("adder-app"), { result: "deleted", message: "Successfully deleted application adder-app", undeploy: true });
    assert.deepEqual((await wb.list()).models, []);
    assert.equal((await wb.versions("adder-app")).result, "notfound");
  });

  test("a manifest put without a version gets a ULID, as wadm does", async () => {
    const put = await wb.put(manifest("x", 1).replace("    version: x\n", ""));
    assert.equal(put.result, "created");
    assert.match(put.current_version, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal((await wb.manifest("adder-app")).manifest.metadata.annotations.version, put.current_version);
    assert.equal((await wb.delete("adder-app")).result, "deleted");
  });
});

const inventory = (hostId: string, components: [string, number][] = [], providers: string[] = []): HostInventory => ({
  host_id: hostId,
  friendly_name: hostId.toLowerCase(),
  labels: {},
  version: "0.1.0",
  uptime_human: "1s",
  uptime_seconds: 1,
  components: components.map(([id, n]) => ({ id, image_ref: `${id}.wasm`, max_instances: n, revision: 0, annotations: {} })),
  providers: providers.map((id) => ({ id, image_ref: id, revision: 0, status: "running" })),
});

describe("wadm_state writes", () => {
  test("hosts not seen within the expiry are dropped with their instances; a stopped host's part is removed", () => {
    const t0 = new Date("2026-01-01T00:00:00Z");
    const t1 = new Date(t0.getTime() + 71_000);
    const hosts = updateHosts({}, "NA", wadmHostEntry(inventory("NA"), t0), new Set(), t0, 70_000).hosts;
    assert.deepEqual(Object.keys(updateHosts(hosts, "NB", wadmHostEntry(inventory("NB"), t0), new Set(), t0, 70_000).hosts).sort(), ["NA", "NB"]);
    const r = updateHosts(hosts, "NB", wadmHostEntry(inventory("NB"), t1), new Set(), t1, 70_000);
    assert.deepEqual(Object.keys(r.hosts), ["NB"]);
    assert.deepEqual([...r.gone], ["NA"]);
    let comps = updateComponents({}, "NA", inventory("NA", [["c1", 2]]), new Set());
    comps = updateComponents(comps, "NB", inventory("NB", [["c1", 1]]), new Set());
    assert.deepEqual(Object.keys(comps.c1!.instances).sort(), ["NA", "NB"]);
    assert.deepEqual(Object.keys(updateComponents(comps, "NB", inventory("NB", [["c1", 1]]), r.gone).c1!.instances), ["NB"]);
    assert.deepEqual(updateComponents(comps, "NB", undefined, r.gone), {});
    const provs = updateProviders({}, "NA", inventory("NA", [], ["p1"]), new Set());
    assert.deepEqual(provs.p1!.hosts, { NA: "Running" });
    assert.deepEqual(updateProviders(provs, "NB", inventory("NB"), r.gone), {});
  });

  test("hosts writing at once keep each other's parts (revision-checked read-modify-write)", async () => {
    const lattice = `${t.lattice}w`;
    const writers = ["NX1", "NX2", "NX3", "NX4"].map(
      (id, i) => new WadmStateWriter({ nc: t.client.nc, lattice, hostId: id, inventory: () => inventory(id, [[`c${i}`, i + 1]], ["shared"]) }),
    );
    await Promise.all(writers.map((w) => w.start()));
    await Promise.all(writers.map((w) => w.write()));
    const hosts = await wb.bucketEntry("wadm_state", `host_${lattice}`);
    assert.deepEqual(Object.keys(hosts).sort(), ["NX1", "NX2", "NX3", "NX4"]);
    const provs = await wb.bucketEntry("wadm_state", `provider_${lattice}`);
    assert.deepEqual(Object.keys(provs.shared.hosts).sort(), ["NX1", "NX2", "NX3", "NX4"]);
    const comps = await wb.bucketEntry("wadm_state", `component_${lattice}`);
    assert.deepEqual(Object.keys(comps).sort(), ["c0", "c1", "c2", "c3"]);
    await Promise.all(writers.map((w) => w.stop()));
    assert.deepEqual(await wb.bucketEntry("wadm_state", `host_${lattice}`), {});
    assert.deepEqual(await wb.bucketEntry("wadm_state", `provider_${lattice}`), {});
  });
});

describe("opting out", () => {
  test("a host with wadm: false neither answers the wadm API nor writes wadm_state", async () => {
    const other = await testLattice(t.nats);
    try {
      const h = await other.startHost({ wadm: false });
      const client = new WashboardClient(await other.connection(), other.lattice);
      await assert.rejects(client.list(), (err: Error) => /no responders/i.test(err.message) || (err as { code?: string }).code === "503");
      assert.equal(h.wadm, undefined);
      await assert.rejects(client.hosts(), /not found/);
    } finally {
      await other.close();
    }
  });
});
