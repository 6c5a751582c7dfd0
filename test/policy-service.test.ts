/**
 * The policy service (reference §6.4; docs/security.md; issue 8 item 5) on a real nats-server: a responder in the test
 * plays the policy server. A denial blocks a provider or component start with a clear error; no answer denies within
 * `policyTimeoutMs`; an allow lets it through; decisions are cached (a second decision sends no request) and a message
 * on the changes topic overrides (1.x) or drops (Trellis) a cached one; invocations are decided per interface and
 * function, in the component's worker, with the same cache and overrides.
 *
 * The component is an adder built here from WAT (test/support/components.ts `buildOwnAdder`), so no fixture is needed.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { deployApp, parseManifestText, undeployApp } from "../src/app/index.ts";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { defaultWorkloads } from "../src/host/default-workloads.ts";
import type { Host } from "../src/host/host.ts";
import { invokeJson } from "../packages/wire/src/invocation/client.ts";
import type { PolicyRequest } from "../src/policy/wire.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { buildOwnAdder } from "./support/components.ts";
import { testLattice, type EventRecorder, type TestLattice } from "./support/lattice.ts";
import { waitForEvent } from "./support/providers.ts";

let nats: TestNats;
/** The component the tests start: `docs:adder/add@0.1.0`. */
let ADDER: string;
before(async () => {
  nats = await startTestNats();
  ADDER = await buildOwnAdder();
});
after(async () => {
  await nats.stop();
});

type Answer = { permitted: boolean; message?: string } | "silent";

/** A policy server: records every request and answers with `decide` (or stays silent). */
async function policyServer(nc: NatsConnection, topic: string, decide: (r: PolicyRequest) => Answer) {
  const requests: PolicyRequest[] = [];
  const sub = nc.subscribe(topic, {
    callback: (_e, m) => {
      const r = m.json<PolicyRequest>();
      requests.push(r);
      const a = decide(r);
      if (a !== "silent") m.respond(JSON.stringify({ requestId: r.requestId, ...a }));
    },
  });
  await nc.flush();
  return { requests, of: (kind: string) => requests.filter((r) => r.kind === kind), stop: () => sub.unsubscribe() };
}

async function rejected(p: Promise<unknown>): Promise<TrellisError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TrellisError, String(err));
    return err;
  }
  assert.fail("expected a denial");
}

const TIMEOUT_MS = 400;

describe("policy service", () => {
  let t: TestLattice;
  let host: Host;
  let rec: EventRecorder;
  let nc: NatsConnection;
  let cacheDir: string;
  let server: Awaited<ReturnType<typeof policyServer>>;
  const topic = "test.policy.decide";
  const changes = "test.policy.changes";
  /** Provider / component ids the test's policy denies, or leaves unanswered. */
  const deny = new Set(["denied-kv", "denied-c", "denied-app"]);
  const silent = new Set(["silent-kv", "silent-c"]);
  const deniedFns = new Set<string>();

  before(async () => {
    t = await testLattice(nats);
    nc = await t.connection();
    cacheDir = await mkdtemp(path.join(tmpdir(), "trellis-policy-svc-"));
    server = await policyServer(nc, topic, (r) => {
      const id = r.kind === "startProvider" ? r.request.providerId : r.kind === "startComponent" ? r.request.componentId : r.request.target.componentId;
      if (silent.has(id)) return "silent";
      if (deny.has(id)) return { permitted: false, message: `${id} is not on the list` };
      if (r.kind === "performInvocation" && deniedFns.has(r.request.function)) return { permitted: false, message: "no adding today" };
      return { permitted: true };
    });
    host = await t.startHost({
      workloads: defaultWorkloads({ providers: { firstHealthCheckMs: 100, shutdownDelayMs: 300 }, components: { maxWorkers: 1 } }),
      cacheDir,
      labels: { zone: "east" },
      allowedPaths: [path.dirname(ADDER)],
      policyTopic: topic,
      policyChangesTopic: changes,
      policyTimeoutMs: TIMEOUT_MS,
    });
    rec = await t.recordEvents();
  });
  after(async () => {
    await t.close();
    await rm(cacheDir, { recursive: true, force: true });
  });

  test("a denial blocks a provider start with a clear error; the request has the 1.x shape", async () => {
    const err = await rejected(t.client.startProvider(host.id, { provider_id: "denied-kv", provider_ref: "kv-memory", annotations: { b: "2", a: "1" } }));
    assert.equal(err.code, ErrorCode.PolicyDenied);
    assert.match(err.message, /policy denied starting provider denied-kv \(kv-memory\): denied-kv is not on the list/);
    const ev = await waitForEvent(rec, "provider_start_failed", (e) => e.data.provider_id === "denied-kv");
    assert.match(String(ev.data.error), /not on the list/);
    assert.deepEqual((await t.client.getInventory(host.id)).providers, []);
    const r = server.of("startProvider").find((q) => q.kind === "startProvider" && q.request.providerId === "denied-kv");
    assert.ok(r);
    assert.match(r.requestId, /^[0-9a-f-]{36}$/);
    assert.equal(r.version, "v1");
    assert.deepEqual(r.request, { providerId: "denied-kv", imageRef: "kv-memory", annotations: { a: "1", b: "2" }, claims: null });
    assert.equal(r.host.publicKey, host.id);
    assert.equal(r.host.lattice, t.lattice);
    assert.equal(r.host.labels.zone, "east");
  });

  test("an allow lets a provider start", async () => {
    assert.equal(await t.client.startProvider(host.id, { provider_id: "ok-kv", provider_ref: "kv-memory" }), "successfully started provider");
    await t.client.stopProvider(host.id, "ok-kv");
  });

  test("a policy service that does not answer denies within its timeout", async () => {
    const started = Date.now();
    const err = await rejected(t.client.startProvider(host.id, { provider_id: "silent-kv", provider_ref: "kv-memory" }));
    const took = Date.now() - started;
    assert.equal(err.code, ErrorCode.PolicyDenied);
    assert.match(err.message, new RegExp(`did not answer on ${topic.replaceAll(".", "\\.")} within ${TIMEOUT_MS} ms`));
    assert.ok(took >= TIMEOUT_MS - 50 && took < TIMEOUT_MS + 2000, `denied after ${took} ms`);
    const cerr = await rejected(t.client.scaleComponent(host.id, { component_id: "silent-c", component_ref: ADDER, count: 1 }));
    assert.equal(cerr.code, ErrorCode.PolicyDenied);
    assert.match(cerr.message, /did not answer/);
    const ev = await waitForEvent(rec, "component_scale_failed", (e) => e.data.component_id === "silent-c");
    assert.match(String(ev.data.error), /did not answer/);
  });

  test("a denial blocks a component start: the reply and component_scale_failed say why", async () => {
    const err = await rejected(t.client.scaleComponent(host.id, { component_id: "denied-c", component_ref: ADDER, count: 1 }));
    assert.equal(err.code, ErrorCode.PolicyDenied);
    assert.match(err.message, /policy denied starting component denied-c .*: denied-c is not on the list/);
    const ev = await waitForEvent(rec, "component_scale_failed", (e) => e.data.component_id === "denied-c");
    assert.match(String(ev.data.error), /policy denied starting component denied-c .*: denied-c is not on the list/);
    assert.ok(!(await t.client.getInventory(host.id)).components.some((c) => c.id === "denied-c"));
  });

  test("trellis app deploy: a denied component fails the deploy with the policy's message", async () => {
    const yaml = `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: { name: denied, annotations: { version: v1 } }
spec:
  components:
    - name: adder
      type: component
      properties: { image: ${ADDER}, id: denied-app }
      traits: [{ type: spreadscaler, properties: { instances: 1 } }]
`;
    const r = await deployApp(t.client, parseManifestText(yaml).manifest, { wait: true, waitTimeoutMs: 10_000 });
    assert.equal(r.status.status, "failed");
    assert.match(r.failures.map((f) => f.message).join("\n"), /policy denied starting component denied-app .*not on the list/);
    await undeployApp(t.client, "denied");
  });

  test("decisions are cached; the changes topic overrides one (1.x) and drops one (Trellis)", async () => {
    const scale = async (count: number) => {
      const before = rec.ofType("component_scaled").length + rec.ofType("component_scale_failed").length;
      // a denied start is also answered in the reply; the event is what this helper reads
      await t.client.scaleComponent(host.id, { component_id: "cached", component_ref: ADDER, count }).catch(() => undefined);
      await waitFor(() => rec.ofType("component_scaled").length + rec.ofType("component_scale_failed").length > before, { timeoutMs: 15_000, message: "scale outcome" });
      const last = [...rec.events].reverse().find((e) => e.data.component_id === "cached");
      return last!.type.endsWith("component_scale_failed") ? String(last!.data.error) : "ok";
    };
    const asked = () => server.of("startComponent").filter((r) => r.kind === "startComponent" && r.request.componentId === "cached");
    assert.equal(await scale(1), "ok");
    assert.equal(asked().length, 1);
    assert.equal(await scale(0), "ok");
    assert.equal(await scale(1), "ok");
    assert.equal(asked().length, 1, "the second start used the cached decision");
    await scale(0);

    // 1.x override: the policy server revokes its earlier decision by request id
    nc.publish(changes, JSON.stringify({ requestId: asked()[0]!.requestId, permitted: false, message: "revoked" }));
    await nc.flush();
    await waitFor(async () => /revoked/.test(await scale(1)), { timeoutMs: 5000, message: "override applied" });
    assert.equal(asked().length, 1, "the override is used without a new request");

    // Trellis extension: a message without `permitted` drops the cached decision, so the host asks again
    nc.publish(changes, JSON.stringify({ requestId: asked()[0]!.requestId }));
    await nc.flush();
    await waitFor(async () => (await scale(1)) === "ok", { timeoutMs: 5000, message: "invalidation applied" });
    assert.equal(asked().length, 2, "asked again after the invalidation");
  });

  test("per-invocation decisions: asked once per interface and function, cached, overridable", async () => {
    await t.client.scaleComponent(host.id, { component_id: "adder", component_ref: ADDER, count: 1 });
    await waitForEvent(rec, "component_scaled", (e) => e.data.component_id === "adder" && e.data.max_instances === 1, 15_000);
    const call = { lattice: t.lattice, targetId: "adder", iface: "docs:adder/add@0.1.0", fn: "add", timeoutMs: 5000 };
    assert.equal(await invokeJson(nc, call, [2, 3]), 5);
    assert.equal(await invokeJson(nc, call, [4, 5]), 9);
    const asked = () => server.of("performInvocation").filter((r) => r.kind === "performInvocation" && r.request.target.componentId === "adder");
    assert.equal(asked().length, 1, "the second call used the cached decision");
    const r = asked()[0]!;
    assert.ok(r.kind === "performInvocation");
    assert.deepEqual(r.request, { interface: "docs:adder/add", function: "add", target: { componentId: "adder", imageRef: ADDER, maxInstances: 0, annotations: {}, claims: null } });
    assert.equal(r.host.publicKey, host.id);

    nc.publish(changes, JSON.stringify({ requestId: r.requestId, permitted: false, message: "calls revoked" }));
    await nc.flush();
    const err = await waitFor(async () => {
      try {
        await invokeJson(nc, call, [1, 1]);
        return undefined;
      } catch (e) {
        return e as TrellisError;
      }
    }, { timeoutMs: 5000, message: "invocation denied after the override" });
    assert.equal(err.code, ErrorCode.PolicyDenied);
    assert.match(err.message, /policy denied invoking docs:adder\/add\.add on component adder: calls revoked/);
    assert.equal(asked().length, 1);
  });

  test("a denied function is refused with the policy's message", async () => {
    deniedFns.add("add");
    await t.client.scaleComponent(host.id, { component_id: "adder2", component_ref: ADDER, count: 1 });
    await waitForEvent(rec, "component_scaled", (e) => e.data.component_id === "adder2" && e.data.max_instances === 1, 15_000);
    const err = await rejected(invokeJson(nc, { lattice: t.lattice, targetId: "adder2", iface: "docs:adder/add", fn: "add", timeoutMs: 5000 }, [1, 2]));
    assert.equal(err.code, ErrorCode.PolicyDenied);
    assert.match(err.message, /no adding today/);
  });
});

describe("policy service off for invocations (--no-policy-invocations)", () => {
  test("starts are decided, invocations are not asked about", async () => {
    const t = await testLattice(nats);
    const cacheDir = await mkdtemp(path.join(tmpdir(), "trellis-policy-svc-"));
    try {
      const nc = await t.connection();
      const server = await policyServer(nc, "test.policy.noinv", () => ({ permitted: true }));
      const host = await t.startHost({
        workloads: defaultWorkloads({ components: { maxWorkers: 1 } }),
        cacheDir,
        allowedPaths: [path.dirname(ADDER)],
        policyTopic: "test.policy.noinv",
        policyInvocations: false,
      });
      const rec = await t.recordEvents();
      await t.client.scaleComponent(host.id, { component_id: "adder", component_ref: ADDER, count: 1 });
      await waitForEvent(rec, "component_scaled", (e) => e.data.component_id === "adder" && e.data.max_instances === 1, 15_000);
      assert.equal(await invokeJson(nc, { lattice: t.lattice, targetId: "adder", iface: "docs:adder/add", fn: "add", timeoutMs: 5000 }, [2, 2]), 4);
      assert.deepEqual(server.requests.map((r) => r.kind), ["startComponent"]);
    } finally {
      await t.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
