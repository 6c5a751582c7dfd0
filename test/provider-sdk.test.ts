/**
 * The provider SDK (issue 4 parts 2–4): remote mode (subscribe, then `link.get`), each link delivered once,
 * per-link resources keyed by (source id, link name) and released on delete, a changed link as delete then put,
 * config updates, health, shutdown addressing, typed handlers and outbound calls.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { silentLogger } from "../src/core/logger.ts";
import { providerRpc } from "../src/core/subjects.ts";
import { invoke, serveInterfaces, t as wit } from "../src/invocation/index.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { runProvider, type ProviderDefinition, type ProviderLink, type RunningProvider } from "../packages/provider-sdk/src/index.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { testLink } from "./support/providers.ts";

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats.stop();
});

/** A resource that records whether it was released. */
class Res {
  closed = false;
  readonly link: ProviderLink;
  constructor(link: ProviderLink) {
    this.link = link;
  }
  close(): void {
    this.closed = true;
  }
}

interface Recorder {
  calls: string[];
  resources: Res[];
  configs: Record<string, string>[];
  def: ProviderDefinition<Res>;
}

function recorder(over: Partial<ProviderDefinition<Res>> = {}): Recorder {
  const r: Recorder = { calls: [], resources: [], configs: [], def: {} };
  const key = (l: ProviderLink) => `${l.sourceId}->${l.target}:${l.package}@${l.name}[${l.interfaces.join(",")}]${JSON.stringify(l.config)}`;
  r.def = {
    init: () => void r.calls.push("init"),
    linkPutAsTarget: (l) => {
      r.calls.push(`put-target ${key(l)}`);
      const res = new Res(l);
      r.resources.push(res);
      return res;
    },
    linkPutAsSource: (l) => void r.calls.push(`put-source ${key(l)}`),
    linkDeleted: (l, res) => void r.calls.push(`del-${l.role} ${key(l)} res=${res ? "yes" : "no"}`),
    configUpdate: (c) => void r.configs.push({ ...c }),
    ...over,
  };
  return r;
}

const PID = "kvsdk";

describe("provider SDK (remote mode)", () => {
  let t: TestLattice;
  let nc: NatsConnection;
  let rec: Recorder;
  let p: RunningProvider<Res>;
  const publish = (kind: "put" | "del", link: Record<string, unknown>) => {
    const def = { name: "default", source_config: {}, target_config: {}, source_secrets: null, target_secrets: null, ...link };
    nc.publish(kind === "put" ? providerRpc.linkPut(t.lattice, PID) : providerRpc.linkDel(t.lattice, PID), JSON.stringify(def));
  };

  before(async () => {
    t = await testLattice(nats);
    await t.startHost();
    nc = await t.connection();
    await t.client.putConfig("tcfg", { bucket: "one" });
    await t.client.putLink(testLink({ source_id: "early", target: PID, target_config: ["tcfg"] }));
    rec = recorder({ linkDrainMs: 300 });
    p = await runProvider(rec.def, { remote: { providerId: PID, lattice: t.lattice, natsUrl: t.nats.url }, exitOnShutdown: false, logger: silentLogger });
  });
  after(async () => {
    await p.shutdown();
    await t.close();
  });

  test("init runs first, then the links that existed before start (link.get), with their config resolved", async () => {
    await p.idle();
    assert.deepEqual(rec.calls, ["init", 'put-target early->kvsdk:keyvalue@default[atomics,store]{"bucket":"one"}']);
    assert.equal(p.ctx.mode, "remote");
    assert.equal(p.ctx.hostId, "");
  });

  test("a link put after start arrives once; a duplicate put is ignored; a delete of an unknown link is fine", async () => {
    rec.calls.length = 0;
    await t.client.putLink(testLink({ source_id: "late", target: PID }));
    await waitFor(() => rec.calls.length === 1, { message: "put callback" });
    publish("put", testLink({ source_id: "late", target: PID }));
    publish("del", testLink({ source_id: "ghost", target: PID }));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    await p.idle();
    assert.deepEqual(rec.calls, ["put-target late->kvsdk:keyvalue@default[atomics,store]{}"]);
  });

  test("resources are kept by (source id, link name) and released on delete, after the drain", async () => {
    rec.calls.length = 0;
    await t.client.putLink(testLink({ source_id: "late", target: PID, name: "cache" }));
    await waitFor(() => rec.calls.length === 1);
    const a = p.ctx.linkFor("late", "default")?.resource;
    const b = p.ctx.linkFor("late", "cache")?.resource;
    assert.ok(a && b && a !== b, "two links, two resources");
    assert.equal(p.ctx.linkFor("late", "cache", "wasi:keyvalue")?.link.name, "cache");
    assert.equal(p.ctx.linkFor("late", "cache", "wasi:blobstore"), undefined);
    await t.client.deleteLink({ source_id: "late", wit_namespace: "wasi", wit_package: "keyvalue", name: "cache" });
    await waitFor(() => rec.calls.length === 2);
    assert.equal(rec.calls[1], "del-target late->kvsdk:keyvalue@cache[atomics,store]{} res=yes");
    assert.equal(p.ctx.linkFor("late", "cache"), undefined, "gone for the provider's own lookups at once");
    assert.equal(b.closed, false, "still draining: calls sent before the caller saw the delete are served");
    await waitFor(() => b.closed, { timeoutMs: 2000, message: "resource released when the drain ends" });
    assert.equal(a.closed, false);
  });

  test("a changed link (delete + put, here link.replace) arrives as a delete callback then a put callback", async () => {
    rec.calls.length = 0;
    await t.client.putConfig("tcfg2", { bucket: "two" });
    const old = p.ctx.linkFor("late", "default")?.resource;
    await t.client.replaceLink(
      { source_id: "late", wit_namespace: "wasi", wit_package: "keyvalue" },
      testLink({ source_id: "late", target: PID, interfaces: ["store"], target_config: ["tcfg2"] }),
    );
    await waitFor(() => rec.calls.length === 2);
    assert.deepEqual(rec.calls, [
      "del-target late->kvsdk:keyvalue@default[atomics,store]{} res=yes",
      'put-target late->kvsdk:keyvalue@default[store]{"bucket":"two"}',
    ]);
    assert.deepEqual(p.ctx.linkFor("late", "default")?.link.config, { bucket: "two" }, "the new link answers at once");
    await waitFor(() => old?.closed === true, { timeoutMs: 2000, message: "the old link's resource released when its drain ends" });
  });

  test("a re-put with other values and no delete is never dropped: delete callback, then put callback", async () => {
    rec.calls.length = 0;
    publish("put", testLink({ source_id: "late", target: PID, interfaces: ["store"], target_config: { bucket: "three" } }));
    await waitFor(() => rec.calls.length === 2);
    assert.match(rec.calls[0]!, /^del-target late.*bucket":"two"/);
    assert.match(rec.calls[1]!, /^put-target late.*bucket":"three"/);
  });

  test("a put hook that throws leaves the link unrecorded; the next put retries it", async () => {
    let fail = true;
    const r2 = recorder({
      linkPutAsTarget: (l) => {
        if (fail) throw new Error("not yet");
        r2.calls.push(`put ${l.sourceId}`);
        return new Res(l);
      },
    });
    const p2 = await runProvider(r2.def, { remote: { providerId: "flaky", lattice: t.lattice, natsUrl: t.nats.url }, exitOnShutdown: false, logger: silentLogger });
    try {
      await t.client.putLink(testLink({ source_id: "x", target: "flaky" }));
      await new Promise((r) => setTimeout(r, 100));
      await p2.idle();
      assert.equal(p2.ctx.links().length, 0);
      fail = false;
      nc.publish(providerRpc.linkPut(t.lattice, "flaky"), JSON.stringify({ ...testLink({ source_id: "x", target: "flaky" }), name: "default", source_config: {}, target_config: {} }));
      await waitFor(() => p2.ctx.links().length === 1);
      assert.deepEqual(r2.calls, ["init", "put x"]);
    } finally {
      await p2.shutdown();
    }
  });

  test("links where the provider is the source use the source side's config", async () => {
    rec.calls.length = 0;
    await t.client.putConfig("scfg", { url: "http://x" });
    await t.client.putLink({ source_id: PID, target: "comp", wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"], source_config: ["scfg"] });
    await waitFor(() => rec.calls.length === 1);
    assert.equal(rec.calls[0], 'put-source kvsdk->comp:http@default[incoming-handler]{"url":"http://x"}');
    assert.equal(p.ctx.linkFor("comp", "default")?.link.role, "source");
  });

  test("config update: the hook gets the merged map and ctx.config() follows", async () => {
    nc.publish(providerRpc.configUpdate(t.lattice, PID), JSON.stringify({ level: "high" }));
    await waitFor(() => rec.configs.length === 1);
    assert.deepEqual(rec.configs[0], { level: "high" });
    assert.deepEqual(p.ctx.config(), { level: "high" });
  });

  test("health: default healthy; a request naming another instance gets no answer from this one", async () => {
    const m = await nc.request(providerRpc.health(t.lattice, PID), new Uint8Array(), { timeout: 1000 });
    assert.deepEqual(m.json(), { healthy: true });
    await assert.rejects(nc.request(providerRpc.health(t.lattice, PID), JSON.stringify({ instance_id: "someone-else" }), { timeout: 300 }));
    const m2 = await nc.request(providerRpc.health(t.lattice, PID), JSON.stringify({ instance_id: p.ctx.instanceId }), { timeout: 1000 });
    assert.deepEqual(m2.json(), { healthy: true });
  });

  test("a remote provider ignores shutdown requests (it has no host); it stops on shutdown() or a signal", async () => {
    await assert.rejects(nc.request(providerRpc.shutdown(t.lattice, PID), JSON.stringify({ host_id: "" }), { timeout: 300 }));
    assert.equal((await nc.request(providerRpc.health(t.lattice, PID), new Uint8Array(), { timeout: 1000 })).json<{ healthy: boolean }>().healthy, true);
  });
});

describe("provider SDK: typed exports and outbound calls", () => {
  const COUNTER = {
    name: "test:counter/count@0.1.0",
    resources: [],
    functions: { add: wit.func([["n", wit.u32]], wit.u32), whoami: wit.func([], wit.string) },
  };

  test("handlers get the link's resource by (source-id, link-name); calls without a link fail with LINK_NOT_FOUND", async () => {
    const t = await testLattice(nats);
    try {
      await t.startHost();
      const nc = await t.connection();
      const p = await runProvider<{ total: number }>(
        {
          linkPutAsTarget: () => ({ total: 0 }),
          exports: [
            {
              type: COUNTER,
              handlers: {
                add: (n: number, call) => (call.resource!.total += n),
                whoami: (call) => `${call.sourceId}@${call.linkName}`,
              },
            },
          ],
        },
        { remote: { providerId: "counter", lattice: t.lattice, natsUrl: t.nats.url }, exitOnShutdown: false, logger: silentLogger },
      );
      try {
        await t.client.putLink({ source_id: "a", target: "counter", wit_namespace: "test", wit_package: "counter", interfaces: ["count"] });
        await t.client.putLink({ source_id: "a", target: "counter", wit_namespace: "test", wit_package: "counter", interfaces: ["count"], name: "other" });
        const call = (sourceId: string, linkName: string, fn: "add" | "whoami", args: unknown[]) =>
          invoke(nc, { lattice: t.lattice, targetId: "counter", iface: COUNTER.name, fn, sourceId, linkName, timeoutMs: 3000 }, COUNTER.functions[fn], args);
        assert.equal(await call("a", "default", "add", [5]), 5);
        assert.equal(await call("a", "default", "add", [2]), 7);
        assert.equal(await call("a", "other", "add", [1]), 1, "another link name, another resource");
        assert.equal(await call("a", "other", "whoami", []), "a@other");
        await assert.rejects(call("b", "default", "add", [1]), (err: unknown) => {
          assert.ok(err instanceof TrellisError);
          assert.equal(err.code, ErrorCode.LinkNotFound);
          return true;
        });
      } finally {
        await p.shutdown();
      }
    } finally {
      await t.close();
    }
  });

  test("ctx.call invokes a linked target with source-id = the provider and link-name = the link's name", async () => {
    const t = await testLattice(nats);
    try {
      await t.startHost();
      const nc = await t.connection();
      const seen: string[] = [];
      const server = serveInterfaces(nc, { lattice: t.lattice, targetId: "comp" }, [
        { type: COUNTER, handlers: { add: (n: number, req: { sourceId?: string; linkName: string }) => (seen.push(`${req.sourceId}@${req.linkName}`), n * 2), whoami: () => "comp" } },
      ]);
      await nc.flush();
      const p = await runProvider({}, { remote: { providerId: "caller", lattice: t.lattice, natsUrl: t.nats.url }, exitOnShutdown: false, logger: silentLogger });
      try {
        await t.client.putLink({ source_id: "caller", target: "comp", wit_namespace: "test", wit_package: "counter", interfaces: ["count"], name: "primary" });
        const link = await waitFor(() => p.ctx.links().find((l) => l.role === "source"));
        assert.equal(await p.ctx.call(link, COUNTER.name, "add", COUNTER.functions.add, [21]), 42);
        assert.equal(await p.ctx.callJson("comp", COUNTER.name, "add", [4]), 8);
        assert.deepEqual(seen, ["caller@primary", "caller@default"]);
      } finally {
        await p.shutdown();
        server.stop();
      }
    } finally {
      await t.close();
    }
  });
});
