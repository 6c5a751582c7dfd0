/**
 * App manifests end to end (issue 5, reference §8) against a real nats-server and real hosts: deploy config, links,
 * the `kv-memory` provider and (when the component runtime is wired into the default workloads) the `adder.wasm`
 * fixture; re-deploying changes nothing (no lattice events, no control writes); a changed manifest replaces links
 * and puts config; undeploy removes what the app owns; failures are reported; the store works from any client; hosts
 * joining are filled by a re-deploy or `watchApp`.
 *
 * Fixture: adder.wasm in `TRELLIS_FIXTURES_DIR` (test/support/components.ts; bytecodealliance/jco · examples/transpile/adder/adder.wasm ·
 * dae02a06, Apache-2.0 WITH LLVM-exception), read in place, never copied.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { CtlClient } from "../src/control/client.ts";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { ok } from "../src/core/envelope.ts";
import type { ComponentDescription } from "../src/core/host.ts";
import { ctlRoot } from "../src/core/subjects.ts";
import { defaultWorkloads } from "../src/host/default-workloads.ts";
import type { HostOptions } from "../src/host/options.ts";
import type { ComponentManager, WorkloadFactories } from "../src/host/workloads.ts";
import { providerSupervisor } from "../src/provider/supervisor.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import {
  AppStore,
  deployApp,
  getAppStatus,
  listApps,
  parseManifestText,
  undeployApp,
  watchApp,
} from "../src/app/index.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { fixture, needsFixtures } from "./support/components.ts";

const ADDER = fixture("adder.wasm");
const componentRuntime = defaultWorkloads().components;
const NO_RUNTIME = componentRuntime === undefined ? "the component runtime is not wired into src/host/default-workloads.ts yet" : false;

/** Hosts with the default workloads, and a provider supervisor with fast health checks. */
const hostOpts = (labels: Record<string, string> = {}): HostOptions => ({
  labels,
  // the manifests' component is the adder fixture (only the components test runs it)
  allowedPaths: [path.dirname(ADDER)],
  workloads: {
    ...defaultWorkloads(),
    providers: providerSupervisor({ firstHealthCheckMs: 100, healthIntervalMs: 1000, shutdownDelayMs: 500 }),
  },
});

/** Control subjects that change the lattice. */
const WRITE_VERBS = /\.(link\.(put|del|replace)|config\.(put|del)|component\.(scale|update)|provider\.(start|stop))(\.|$)/;
/** Events a deploy must not cause when nothing changed. */
const CHANGE_EVENTS = ["linkdef_set", "linkdef_deleted", "config_set", "config_deleted", "component_scaled", "provider_started", "provider_stopped"];

async function recordCtl(nc: NatsConnection, lattice: string): Promise<string[]> {
  const subjects: string[] = [];
  nc.subscribe(`${ctlRoot(lattice)}.>`, {
    callback: (_e, m) => {
      subjects.push(m.subject);
    },
  });
  await nc.flush();
  return subjects;
}

function appYaml(o: { name?: string; interfaces?: string; bucket?: string; providerRef?: string; providerScaler?: string } = {}): string {
  return `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: ${o.name ?? "counter"}
  annotations:
    version: v1
spec:
  components:
    - name: counter
      type: component
      properties:
        image: ${ADDER}
      traits:
        - type: link
          properties:
            namespace: wasi
            package: keyvalue
            interfaces: ${o.interfaces ?? "[store, atomics]"}
            source:
              config:
                - name: shared-settings
            target:
              name: kv
              config:
                - name: bucket
                  properties:
                    bucket: ${o.bucket ?? "demo"}
    - name: kv
      type: capability
      properties:
        image: ${o.providerRef ?? "kv-memory"}
${o.providerScaler ?? ""}`;
}

const parse = (yaml: string) => parseManifestText(yaml).manifest;

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats.stop();
});

describe("app deploy: links, config, provider, store", () => {
  let t: TestLattice;
  before(async () => {
    t = await testLattice(nats);
    await t.startHost(hostOpts());
    await t.client.putConfig("shared-settings", { mode: "fast" });
  });
  after(async () => t.close());

  test("deploy with --wait: config, link and provider in place; status deployed; annotations as wadm's", async () => {
    const r = await deployApp(t.client, parse(appYaml()), { wait: true, waitTimeoutMs: 20_000 });
    assert.equal(r.outcome, "created");
    assert.deepEqual(r.failures, []);
    assert.equal(r.status.status, "deployed", r.status.message);
    assert.deepEqual(r.actions.map((a) => a.kind), ["put_config", "put_link", "start_provider"]);
    assert.deepEqual(await t.client.getConfig("counter-bucket"), { bucket: "demo" });
    assert.deepEqual(await t.client.getLinks(), [
      { source_id: "counter-counter", target: "counter-kv", name: "default", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"], source_config: ["shared-settings"], target_config: ["counter-bucket"] },
    ]);
    const inv = await t.client.getInventory(t.hosts[0]!.id);
    assert.deepEqual(inv.providers.map((p) => [p.id, p.image_ref, p.status]), [["counter-kv", "kv-memory", "running"]]);
    assert.deepEqual(inv.providers[0]?.annotations, {
      "wasmcloud.dev/managed-by": "trellis",
      "wasmcloud.dev/appspec": "counter",
      "wasmcloud.dev/scaler": "spreadscaler/kv",
    });
    const s = await getAppStatus(t.client, "counter");
    assert.equal(s.status, "deployed");
    assert.equal(s.version, "v1");
  });

  test("re-deploying the same manifest changes nothing: no events, no control writes, no record write", async () => {
    const rec = await t.recordEvents();
    const ctlSubjects = await recordCtl(await t.connection(), t.lattice);
    const store = await AppStore.open(t.client.nc, t.lattice);
    const before = await store.get("counter");
    const r = await deployApp(t.client, parse(appYaml()), { wait: true });
    assert.equal(r.outcome, "unchanged");
    assert.deepEqual(r.actions, []);
    assert.equal(r.status.status, "deployed");
    await t.client.nc.flush();
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(CHANGE_EVENTS.flatMap((e) => rec.ofType(e)), [], "no change events");
    assert.deepEqual(ctlSubjects.filter((s) => WRITE_VERBS.test(s)), [], "only reads on the control interface");
    assert.ok(ctlSubjects.some((s) => s.endsWith(".link.get")), "the deploy did observe the lattice");
    assert.equal((await store.get("counter"))?.revision, before?.revision, "the record was not rewritten");
  });

  test("a changed manifest: the link is replaced in one write, the inline config put; nothing else moves", async () => {
    const rec = await t.recordEvents();
    const ctlSubjects = await recordCtl(await t.connection(), t.lattice);
    const r = await deployApp(t.client, parse(appYaml({ interfaces: "[store]", bucket: "other" }).replace("version: v1", "version: v2")), { wait: true, waitTimeoutMs: 10_000 });
    assert.equal(r.outcome, "updated");
    assert.equal(r.status.status, "deployed");
    assert.deepEqual(r.actions.map((a) => a.kind), ["put_config", "replace_link"]);
    assert.deepEqual(ctlSubjects.filter((s) => WRITE_VERBS.test(s)).map((s) => s.slice(ctlRoot(t.lattice).length + 1)), ["config.put.counter-bucket", "link.replace"]);
    const links = await t.client.getLinks();
    assert.deepEqual(links.map((l) => l.interfaces), [["store"]]);
    assert.deepEqual(await t.client.getConfig("counter-bucket"), { bucket: "other" });
    await waitFor(() => rec.ofType("linkdef_set").length === 1);
    assert.equal(rec.ofType("provider_stopped").length, 0, "the provider was not restarted");
    assert.equal((await getAppStatus(t.client, "counter")).version, "v2");
  });

  test("the store works from any client: list and status from another connection; concurrent writes are caught", async () => {
    const other = await CtlClient.connect({ natsUrl: nats.url, lattice: t.lattice });
    try {
      const apps = await listApps(other);
      assert.deepEqual(apps.map((a) => [a.app, a.version, a.status]), [["counter", "v2", "deployed"]]);
      const store = await AppStore.open(other.nc, t.lattice);
      const got = await store.get("counter");
      assert.ok(got);
      await store.put({ ...got.record, updated_at: new Date().toISOString() }, got.revision);
      await assert.rejects(store.put(got.record, got.revision), (err: unknown) => err instanceof TrellisError && err.code === ErrorCode.AlreadyExists);
    } finally {
      await other.close();
    }
  });

  test("status shows what is missing when the lattice drifts; a re-deploy fills the gap", async () => {
    await t.client.deleteLink({ source_id: "counter-counter", wit_namespace: "wasi", wit_package: "keyvalue" });
    const s = await getAppStatus(t.client, "counter");
    assert.equal(s.status, "reconciling");
    assert.deepEqual(s.missing, ["put link counter-counter -[wasi:keyvalue/{store} @default]-> counter-kv"]);
    const r = await deployApp(t.client, parse(appYaml({ interfaces: "[store]", bucket: "other" }).replace("version: v1", "version: v2")));
    assert.equal(r.outcome, "reconciled");
    assert.deepEqual(r.actions.map((a) => a.kind), ["put_link"]);
    assert.equal((await getAppStatus(t.client, "counter")).status, "deployed");
  });

  test("undeploy removes the app's link, inline config, provider and record; named config stays", async () => {
    const r = await undeployApp(t.client, "counter", { wait: true, waitTimeoutMs: 10_000 });
    assert.equal(r.removed, true);
    assert.deepEqual(r.actions.map((a) => a.kind).sort(), ["delete_config", "delete_link", "stop_provider"]);
    assert.deepEqual(await t.client.getLinks(), []);
    assert.equal(await t.client.getConfig("counter-bucket"), undefined);
    assert.deepEqual(await t.client.getConfig("shared-settings"), { mode: "fast" });
    assert.deepEqual((await t.client.getInventory(t.hosts[0]!.id)).providers, []);
    assert.deepEqual(await listApps(t.client), []);
    await assert.rejects(getAppStatus(t.client, "counter"), (err: unknown) => err instanceof TrellisError && err.code === ErrorCode.NotFound);
    await assert.rejects(undeployApp(t.client, "counter"), /no app named counter/);
  });

  test("an undeployed app can be deployed again (the store's delete marker is not a conflict)", async () => {
    const again = await deployApp(t.client, parse(appYaml()), { wait: true, waitTimeoutMs: 20_000 });
    assert.equal(again.status.status, "deployed");
    assert.equal((await t.client.getLinks()).length, 1);
    const gone = await undeployApp(t.client, "counter", { wait: true, waitTimeoutMs: 10_000 });
    assert.equal(gone.removed, true);
  });

  test("failures are reported: a provider that cannot start fails the deploy and the status", async () => {
    const r = await deployApp(t.client, parse(appYaml({ name: "broken", providerRef: "no-such-provider" })), { wait: true, waitTimeoutMs: 10_000 });
    assert.equal(r.status.status, "failed");
    assert.equal(r.failures.length, 1);
    assert.match(r.failures[0]?.action ?? "", /start provider broken-kv \(no-such-provider\)/);
    assert.match(r.failures[0]?.message ?? "", /no first-party provider named no-such-provider/);
    const s = await getAppStatus(t.client, "broken");
    assert.equal(s.status, "failed");
    assert.match(s.message, /no-such-provider/);
    assert.deepEqual(s.missing, [`start provider broken-kv (no-such-provider) on ${t.hosts[0]!.id.slice(0, 12)}…`]);
    assert.equal((await undeployApp(t.client, "broken")).removed, true);
  });
});

describe("app deploy: hosts joining and leaving", () => {
  test("daemonscaler: a joining host shows as missing; a re-deploy or watchApp fills it", async () => {
    const t = await testLattice(nats);
    const ac = new AbortController();
    try {
      await t.startHost(hostOpts({ zone: "east" }));
      await t.client.putConfig("shared-settings", {});
      const daemon = appYaml({ providerScaler: "      traits:\n        - type: daemonscaler\n          properties:\n            instances: 1\n            spread:\n              - name: east\n                requirements: { zone: east }\n" });
      const r = await deployApp(t.client, parse(daemon), { wait: true, waitTimeoutMs: 20_000 });
      assert.equal(r.status.status, "deployed", r.status.message);
      const h2 = await t.startHost(hostOpts({ zone: "east" }));
      await t.startHost(hostOpts({ zone: "west" }));
      const s = await getAppStatus(t.client, "counter");
      assert.equal(s.status, "reconciling");
      assert.deepEqual(s.missing, [`start provider counter-kv (kv-memory) on ${h2.id.slice(0, 12)}…`]);
      const again = await deployApp(t.client, parse(daemon), { wait: true, waitTimeoutMs: 20_000 });
      assert.equal(again.outcome, "reconciled");
      assert.equal(again.status.status, "deployed");
      // with a watch running, the next matching host is filled without a command
      const results: string[] = [];
      const watching = watchApp(t.client, "counter", { signal: ac.signal, debounceMs: 100, onResult: (w) => results.push(w.outcome) });
      const h4 = await t.startHost(hostOpts({ zone: "east" }));
      await waitFor(async () => (await t.client.getInventory(h4.id)).providers.some((p) => p.id === "counter-kv"), { timeoutMs: 15_000, message: "the watch starts the provider on the new host" });
      ac.abort();
      await watching;
      assert.ok(results.includes("reconciled"), `watch results: ${results.join(",")}`);
      // a host leaving: its provider is gone with it; nothing to re-place for a daemonscaler
      await h2.stop();
      await waitFor(async () => (await getAppStatus(t.client, "counter")).status === "deployed", { timeoutMs: 10_000 });
      // every host gone: status and list still answer (from the store), deploy refuses
      await Promise.all(t.hosts.map((h) => h.stop()));
      const none = await getAppStatus(t.client, "counter");
      assert.equal(none.status, "failed");
      assert.match(none.message, /no host matches any spread of the daemonscaler/);
      assert.deepEqual((await listApps(t.client)).map((a) => a.status), ["failed"]);
      await assert.rejects(deployApp(t.client, parse(daemon)), (err: unknown) => err instanceof TrellisError && err.code === ErrorCode.NoResponders && /no host is running/.test(err.message));
    } finally {
      ac.abort();
      await t.close();
    }
  });
});

/**
 * A stand-in component manager: answers `component.scale` / `component.update` as the host contract says (reference
 * §1.4) and keeps an inventory, without running WebAssembly. It lets the component side of the applier (requests,
 * annotations, scale changes, updates, stops, idempotence) run through real hosts and NATS before the runtime lands.
 */
function standInComponents(requests: Record<string, unknown>[]): WorkloadFactories["components"] {
  return (ctx) => {
    const running = new Map<string, ComponentDescription>();
    const manager: ComponentManager = {
      handleScale(payload) {
        const body = JSON.parse(new TextDecoder().decode(payload)) as Record<string, any>;
        requests.push({ verb: "scale", host: ctx.hostId, ...body });
        const id = String(body.component_id);
        const count = Number(body.count ?? body.max_instances ?? 0);
        if (count === 0) running.delete(id);
        else running.set(id, { id, image_ref: String(body.component_ref), revision: 0, max_instances: count, annotations: body.annotations });
        ctx.events.publish("component_scaled", { component_id: id, host_id: ctx.hostId, image_ref: body.component_ref, max_instances: count, annotations: body.annotations ?? {} });
        return Promise.resolve(ok(""));
      },
      handleUpdate(payload) {
        const body = JSON.parse(new TextDecoder().decode(payload)) as Record<string, any>;
        requests.push({ verb: "update", host: ctx.hostId, ...body });
        const c = running.get(String(body.component_id));
        if (c) c.image_ref = String(body.new_component_ref);
        return Promise.resolve(ok(""));
      },
      inventory: () => [...running.values()],
      close: () => Promise.resolve(),
    };
    return Promise.resolve(manager);
  };
}

describe("app deploy: component verbs through a stand-in component manager", () => {
  test("spread over two hosts, re-deploy sends nothing, scale / ref changes, undeploy stops", async () => {
    const t = await testLattice(nats);
    const requests: Record<string, unknown>[] = [];
    try {
      const a = await t.startHost({ workloads: { components: standInComponents(requests) } });
      const b = await t.startHost({ workloads: { components: standInComponents(requests) } });
      await t.client.putConfig("settings", { k: "v" });
      const yaml = (instances: number, image = ADDER) => `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: { name: adder }
spec:
  components:
    - name: adder
      type: component
      properties: { image: ${image}, config: [{ name: settings }] }
      traits:
        - type: spreadscaler
          properties: { instances: ${instances} }
`;
      const r = await deployApp(t.client, parse(yaml(3)), { wait: true, waitTimeoutMs: 10_000 });
      assert.equal(r.status.status, "deployed", r.status.message);
      const first = a.id < b.id ? a.id : b.id;
      assert.deepEqual(requests.map((q) => [q.host === first ? "lower id" : "higher id", q.count]).sort(), [["higher id", 1], ["lower id", 2]], "the remainder goes to the lower host id");
      assert.deepEqual(requests[0]?.config, ["settings"]);
      assert.deepEqual(requests[0]?.annotations, { "wasmcloud.dev/managed-by": "trellis", "wasmcloud.dev/appspec": "adder", "wasmcloud.dev/scaler": "spreadscaler/adder" });
      requests.length = 0;
      const rec = await t.recordEvents();
      assert.equal((await deployApp(t.client, parse(yaml(3)), { wait: true })).outcome, "unchanged");
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(requests.length, 0, "no component requests");
      assert.equal(rec.ofType("component_scaled").length, 0);
      // 4 instances and a new ref: both hosts updated, one scaled
      const u = await deployApp(t.client, parse(yaml(4, "./adder-v2.wasm")), { wait: true, waitTimeoutMs: 10_000 });
      assert.equal(u.status.status, "deployed", u.status.message);
      assert.deepEqual(requests.map((q) => `${q.verb}:${String(q.count ?? q.new_component_ref)}`).sort(), ["scale:2", "update:./adder-v2.wasm", "update:./adder-v2.wasm"]);
      requests.length = 0;
      const gone = await undeployApp(t.client, "adder", { wait: true, waitTimeoutMs: 10_000 });
      assert.equal(gone.removed, true);
      assert.deepEqual(requests.map((q) => q.count), [0, 0]);
      assert.deepEqual(await t.client.getConfig("settings"), { k: "v" }, "named config is not the app's");
    } finally {
      await t.close();
    }
  });
});

describe("app deploy: components", () => {
  test("adder.wasm over two hosts with kv-memory and a link; re-deploy changes nothing; undeploy removes all", { skip: NO_RUNTIME || needsFixtures("adder.wasm") }, async () => {
    const t = await testLattice(nats);
    try {
      await t.startHost(hostOpts());
      await t.startHost(hostOpts());
      const yaml = `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: { name: adder }
spec:
  components:
    - name: adder
      type: component
      properties: { image: ${ADDER} }
      traits:
        - type: spreadscaler
          properties: { instances: 2 }
        - type: link
          properties:
            namespace: wasi
            package: keyvalue
            interfaces: [store]
            target: { name: kv, config: [{ name: bucket, properties: { bucket: adder } }] }
    - name: kv
      type: capability
      properties: { image: kv-memory }
`;
      const r = await deployApp(t.client, parse(yaml), { wait: true, waitTimeoutMs: 30_000 });
      assert.equal(r.status.status, "deployed", r.status.message);
      for (const h of t.hosts) {
        const inv = await t.client.getInventory(h.id);
        assert.deepEqual(inv.components.map((c) => [c.id, c.max_instances]), [["adder-adder", 1]]);
      }
      assert.equal((await Promise.all(t.hosts.map((h) => t.client.getInventory(h.id)))).flatMap((i) => i.providers).length, 1);
      assert.deepEqual((await t.client.getLinks()).map((l) => `${l.source_id}->${l.target}`), ["adder-adder->adder-kv"]);
      const rec = await t.recordEvents();
      const ctlSubjects = await recordCtl(await t.connection(), t.lattice);
      const again = await deployApp(t.client, parse(yaml), { wait: true });
      assert.equal(again.outcome, "unchanged");
      await new Promise((res) => setTimeout(res, 200));
      assert.deepEqual(CHANGE_EVENTS.flatMap((e) => rec.ofType(e)), []);
      assert.deepEqual(ctlSubjects.filter((s) => WRITE_VERBS.test(s)), []);
      const u = await undeployApp(t.client, "adder", { wait: true, waitTimeoutMs: 10_000 });
      assert.equal(u.removed, true);
      for (const h of t.hosts) {
        const inv = await t.client.getInventory(h.id);
        assert.deepEqual([...inv.components, ...inv.providers], []);
      }
      assert.deepEqual(await t.client.getLinks(), []);
    } finally {
      await t.close();
    }
  });
});
