/**
 * The cases of the provider conformance suite (see ./suite.ts). Each case starts its own provider id, checks one part
 * of docs/protocol.md "Provider contract", and stops it again.
 */
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import type { CtlClient } from "../../src/control/client.ts";
import type { CloudEvent } from "../../src/core/events.ts";
import { providerRpc } from "../../src/core/subjects.ts";
import { invoke, invokeJson, t } from "../../src/invocation/index.ts";
import type { Host } from "../../src/host/host.ts";
import type { ProviderSupervisor } from "../../src/provider/supervisor.ts";
import type { LogRecord, TraceRecord } from "./suite.ts";

/** What a case gets from the suite. */
export interface CaseContext {
  readonly lattice: string;
  readonly host: Host;
  readonly supervisor: ProviderSupervisor;
  readonly client: CtlClient;
  readonly nc: NatsConnection;
  readonly events: CloudEvent[];
  readonly logs: LogRecord[];
  readonly traces: TraceRecord[];
  readonly timeoutMs: number;
  nextId(caseName: string): string;
  /** Target config for the key-value links a case puts (e.g. a Redis URL). */
  kvLinkConfig(): Record<string, string>;
  trace(providerId: string, event?: string): TraceRecord[];
  until<T>(what: string, pred: () => T | Promise<T>, timeoutMs?: number): Promise<Exclude<T, false | 0 | "" | null | undefined>>;
  settle(ms?: number): Promise<void>;
  startProvider(id: string, configs?: string[]): Promise<void>;
  healthy(id: string): Promise<void>;
  stopQuietly(id: string): Promise<void>;
}

/** One conformance case. */
export interface ConformanceCase {
  name: string;
  /** What it checks, for reports. */
  description: string;
  run(ctx: CaseContext, figures: Record<string, number>): Promise<void>;
}

const kvLink = (source: string, target: string, over: Record<string, unknown> = {}) => ({
  source_id: source,
  target,
  wit_namespace: "wasi",
  wit_package: "keyvalue",
  interfaces: ["atomics", "store"],
  ...over,
});

/** The wire form of a link put / delete as a host publishes it (reference §2.2). */
function definition(link: ReturnType<typeof kvLink>, targetConfig: Record<string, string> = {}, sourceConfig: Record<string, string> = {}) {
  return { name: "default", ...link, source_config: sourceConfig, target_config: targetConfig, source_secrets: null, target_secrets: null };
}

function expectLink(rec: TraceRecord | undefined, want: { role: string; source_id: string; target: string; config?: Record<string, string> }, what: string): void {
  assert.ok(rec, `${what}: no trace record`);
  assert.equal(rec.role, want.role, `${what}: role`);
  assert.equal(rec.source_id, want.source_id, `${what}: source_id`);
  assert.equal(rec.target, want.target, `${what}: target`);
  if (want.config) assert.deepEqual(rec.config, want.config, `${what}: config of the provider's side`);
}

async function exactly(ctx: CaseContext, id: string, event: string, n: number, what: string): Promise<TraceRecord[]> {
  await ctx.until(`${what}: ${n} ${event} callback(s)`, () => ctx.trace(id, event).length >= n);
  await ctx.settle();
  const got = ctx.trace(id, event);
  assert.equal(got.length, n, `${what}: expected exactly ${n} ${event} callback(s), got ${got.length}: ${JSON.stringify(got)}`);
  return got;
}

async function noReply(nc: NatsConnection, subject: string, body: unknown, what: string): Promise<void> {
  try {
    const m = await nc.request(subject, JSON.stringify(body), { timeout: 500 });
    assert.fail(`${what}: expected no reply, got ${new TextDecoder().decode(m.data)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every case, in the order they run. */
export const CASES: ConformanceCase[] = [
  {
    name: "link-before-start",
    description: "links put before the provider starts arrive once each, from host data, with the provider's side of the config",
    async run(ctx) {
      const id = ctx.nextId("before");
      await ctx.client.putConfig(`${id}-tc`, { side: "target" });
      await ctx.client.putConfig(`${id}-sc`, { side: "source" });
      await ctx.client.putLink(kvLink("comp-a", id, { target_config: [`${id}-tc`], source_config: [`${id}-sc`] }));
      await ctx.client.putLink({ source_id: id, target: "comp-b", wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"], source_config: [`${id}-sc`] });
      await ctx.startProvider(id);
      try {
        const puts = await exactly(ctx, id, "link_put", 2, "links put before start");
        expectLink(puts.find((p) => p.role === "target"), { role: "target", source_id: "comp-a", target: id, config: { side: "target" } }, "target link");
        expectLink(puts.find((p) => p.role === "source"), { role: "source", source_id: id, target: "comp-b", config: { side: "source" } }, "source link");
        assert.ok(ctx.traces.indexOf(ctx.trace(id, "init")[0]!) < ctx.traces.indexOf(puts[0]!), "init comes before the first link callback");
      } finally {
        await ctx.stopQuietly(id);
      }
    },
  },
  {
    name: "link-after-start",
    description: "a link put after the provider is healthy arrives once",
    async run(ctx, figures) {
      const id = ctx.nextId("after");
      await ctx.startProvider(id);
      try {
        await ctx.healthy(id);
        const t0 = performance.timeOrigin + performance.now();
        await ctx.client.putLink(kvLink("comp-late", id));
        const [put] = await exactly(ctx, id, "link_put", 1, "link put after start");
        expectLink(put, { role: "target", source_id: "comp-late", target: id, config: {} }, "late link");
        if (typeof put!.t === "number") figures.putToCallbackMs = Math.round((put!.t - t0) * 100) / 100;
      } finally {
        await ctx.stopQuietly(id);
      }
    },
  },
  {
    name: "duplicate-put",
    description: "a put of a link the provider already has is ignored (no second callback)",
    async run(ctx) {
      const id = ctx.nextId("dup");
      await ctx.startProvider(id);
      try {
        await ctx.healthy(id);
        const link = kvLink("comp-dup", id);
        await ctx.client.putLink(link);
        await exactly(ctx, id, "link_put", 1, "first put");
        for (let i = 0; i < 3; i++) ctx.nc.publish(providerRpc.linkPut(ctx.lattice, id), JSON.stringify(definition(link)));
        await ctx.client.putLink(link);
        await exactly(ctx, id, "link_put", 1, "after duplicate puts");
      } finally {
        await ctx.stopQuietly(id);
      }
    },
  },
  {
    name: "delete",
    description: "a link delete arrives once; a delete of an unknown link is ignored and harmless",
    async run(ctx) {
      const id = ctx.nextId("del");
      await ctx.startProvider(id);
      try {
        await ctx.healthy(id);
        await ctx.client.putLink(kvLink("comp-del", id));
        await exactly(ctx, id, "link_put", 1, "put");
        await ctx.client.deleteLink({ source_id: "comp-del", wit_namespace: "wasi", wit_package: "keyvalue" });
        const [del] = await exactly(ctx, id, "link_del", 1, "delete");
        assert.equal(del!.source_id, "comp-del");
        assert.equal(del!.target, id);
        ctx.nc.publish(providerRpc.linkDel(ctx.lattice, id), JSON.stringify(definition(kvLink("comp-unknown", id))));
        await ctx.client.deleteLink({ source_id: "comp-del", wit_namespace: "wasi", wit_package: "keyvalue" });
        await exactly(ctx, id, "link_del", 1, "after deleting unknown links");
        const h = await ctx.nc.request(providerRpc.health(ctx.lattice, id), new Uint8Array(), { timeout: 2000 });
        assert.equal((h.json() as { healthy?: boolean }).healthy, true, "still healthy");
      } finally {
        await ctx.stopQuietly(id);
      }
    },
  },
  {
    name: "changed-link",
    description: "a changed link (delete + put, or a re-put with other values) arrives as a delete then a put, never dropped",
    async run(ctx) {
      const id = ctx.nextId("chg");
      await ctx.client.putConfig(`${id}-v1`, { v: "1" });
      await ctx.client.putConfig(`${id}-v2`, { v: "2" });
      await ctx.startProvider(id);
      try {
        await ctx.healthy(id);
        await ctx.client.putLink(kvLink("comp-chg", id, { target_config: [`${id}-v1`] }));
        await exactly(ctx, id, "link_put", 1, "first version");
        await ctx.client.replaceLink({ source_id: "comp-chg", wit_namespace: "wasi", wit_package: "keyvalue" }, kvLink("comp-chg", id, { interfaces: ["store"], target_config: [`${id}-v2`] }));
        const puts = await exactly(ctx, id, "link_put", 2, "second version");
        const [del] = await exactly(ctx, id, "link_del", 1, "old version deleted");
        assert.ok(ctx.traces.indexOf(del!) < ctx.traces.indexOf(puts[1]!), "the delete comes before the new put");
        assert.deepEqual(puts[1]!.config, { v: "2" });
        assert.deepEqual(puts[1]!.interfaces, ["store"]);
        ctx.nc.publish(providerRpc.linkPut(ctx.lattice, id), JSON.stringify(definition(kvLink("comp-chg", id, { interfaces: ["store"] }), { v: "3" })));
        const puts3 = await exactly(ctx, id, "link_put", 3, "a re-put with other values");
        const dels = await exactly(ctx, id, "link_del", 2, "a re-put with other values replaces the old");
        assert.ok(ctx.traces.indexOf(dels[1]!) < ctx.traces.indexOf(puts3[2]!), "delete before put");
        assert.deepEqual(puts3[2]!.config, { v: "3" });
      } finally {
        await ctx.stopQuietly(id);
      }
    },
  },
  {
    name: "config-update",
    description: "a change of the provider's named config arrives as config_update with the merged map",
    async run(ctx) {
      const id = ctx.nextId("cfg");
      await ctx.client.putConfig(`${id}-own`, { mode: "a" });
      await ctx.startProvider(id, [`${id}-own`]);
      try {
        await ctx.healthy(id);
        await ctx.client.putConfig(`${id}-own`, { mode: "b", extra: "x" });
        const rec = await ctx.until("config_update with mode=b", () => ctx.trace(id, "config_update").find((r) => (r.config as Record<string, string>)?.mode === "b"));
        assert.deepEqual(rec.config, { trellis_conformance_trace: "stdout", mode: "b", extra: "x" });
      } finally {
        await ctx.stopQuietly(id);
      }
    },
  },
  {
    name: "health",
    description: "health requests get {healthy: true}; requests naming another instance get no answer",
    async run(ctx) {
      const id = ctx.nextId("health");
      await ctx.startProvider(id);
      try {
        await ctx.healthy(id);
        const m = await ctx.nc.request(providerRpc.health(ctx.lattice, id), new Uint8Array(), { timeout: 2000 });
        const body = m.json() as { healthy?: unknown; message?: unknown };
        assert.equal(body.healthy, true, `reply ${JSON.stringify(body)}`);
        assert.ok(body.message === undefined || typeof body.message === "string", "message is a string when present");
        await noReply(ctx.nc, providerRpc.health(ctx.lattice, id), { host_id: ctx.host.id, instance_id: "00000000-0000-4000-8000-000000000000" }, "health for another instance");
        assert.equal(ctx.supervisor.snapshot(id)?.status, "running");
      } finally {
        await ctx.stopQuietly(id);
      }
    },
  },
  {
    name: "shutdown",
    description: "shutdown requests for another host are ignored; provider.stop makes it run its shutdown, answer and exit",
    async run(ctx, figures) {
      const id = ctx.nextId("stop");
      await ctx.startProvider(id);
      const pid = ctx.supervisor.snapshot(id)?.pid;
      assert.ok(pid, "a pid");
      await ctx.healthy(id);
      await noReply(ctx.nc, providerRpc.shutdown(ctx.lattice, id), { host_id: "NOT-THIS-HOST" }, "shutdown for another host");
      assert.ok(alive(pid), "still running after a shutdown request for another host");
      const t0 = Date.now();
      await ctx.client.stopProvider(ctx.host.id, id);
      figures.stopMs = Date.now() - t0;
      assert.equal(ctx.trace(id, "shutdown").length, 1, "the shutdown trace line");
      const complaints = ctx.logs.filter((l) => l.level !== "info" && l.meta.stream === undefined && l.meta.provider_id === id && /shutdown request|killing it/.test(l.msg));
      assert.deepEqual(complaints.map((l) => l.msg), [], "answered the shutdown request and exited by itself");
      assert.ok(!alive(pid), "the process is gone");
      await ctx.until(`${id}: provider_stopped`, () => ctx.events.some((e) => e.type.endsWith(".provider_stopped") && e.data.provider_id === id));
    },
  },
  {
    name: "crash-restart",
    description: "after SIGKILL the host restarts the provider, which gets every one of its links again (even one put while it was down)",
    async run(ctx, figures) {
      const id = ctx.nextId("crash");
      await ctx.client.putLink(kvLink("comp-c1", id));
      await ctx.client.putLink({ source_id: id, target: "comp-c2", wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"] });
      await ctx.startProvider(id);
      try {
        await ctx.healthy(id);
        await exactly(ctx, id, "link_put", 2, "links before the crash");
        const before = ctx.supervisor.snapshot(id)!;
        const t0 = Date.now();
        process.kill(before.pid!, "SIGKILL");
        await ctx.client.putLink(kvLink("comp-c3", id));
        const want = ["comp-c1", "comp-c2", "comp-c3"];
        await ctx.until("a new process with all three links", () => {
          const inits = ctx.trace(id, "init");
          if (inits.length < 2) return false;
          const from = ctx.traces.indexOf(inits[1]!);
          const puts = ctx.traces.slice(from).filter((r) => r.providerId === id && r.event === "link_put");
          const peers = new Set(puts.map((p) => (p.role === "source" ? p.target : p.source_id)));
          return want.every((w) => peers.has(w as string));
        });
        figures.killToAllLinksMs = Date.now() - t0;
        const after = ctx.supervisor.snapshot(id)!;
        assert.notEqual(after.pid, before.pid, "a new process");
        assert.notEqual(after.instanceId, before.instanceId, "a new instance id");
        assert.equal(after.starts, 2);
        await ctx.until("healthy again", () => ctx.supervisor.snapshot(id)?.status === "running");
        figures.killToHealthyMs = Date.now() - t0;
      } finally {
        await ctx.stopQuietly(id);
      }
    },
  },
  {
    name: "json-handles",
    description:
      "key-value handles work in the JSON form (docs/protocol.md §6, §8): `open` answers a base64 handle, calls that send it back reach the same bucket as binary calls",
    async run(ctx) {
      const id = ctx.nextId("jsonh");
      await ctx.client.putConfig(`${id}-kv`, ctx.kvLinkConfig());
      await ctx.client.putLink(kvLink("comp-json", id, { target_config: [`${id}-kv`] }));
      await ctx.startProvider(id);
      try {
        await ctx.healthy(id);
        await exactly(ctx, id, "link_put", 1, "kv link");
        const bucket = `conf-${id}`;
        const at = (iface: string, fn: string) => ({ lattice: ctx.lattice, targetId: id, iface, fn, sourceId: "comp-json", timeoutMs: ctx.timeoutMs });
        const store = (fn: string) => at("wasi:keyvalue/store", fn);
        const opened = (await invokeJson(ctx.nc, store("open"), [bucket])) as { tag?: string; val?: unknown };
        assert.equal(opened?.tag, "ok", `open in the JSON form: ${JSON.stringify(opened)}`);
        const handle = opened.val;
        assert.ok(typeof handle === "string" && handle !== "" && Buffer.from(handle, "base64").toString("base64") === handle, `the handle is a base64 string, got ${JSON.stringify(handle)}`);
        assert.deepEqual(await invokeJson(ctx.nc, store("[method]bucket.set"), [handle, "hits", [1, 2, 3]]), { tag: "ok" });
        assert.deepEqual(await invokeJson(ctx.nc, at("wasi:keyvalue/atomics", "increment"), [handle, "n", 5]), { tag: "ok", val: 5 });
        assert.deepEqual(await invokeJson(ctx.nc, store("[method]bucket.get"), [handle, "hits"]), { tag: "ok", val: [1, 2, 3] });
        // the same bucket through the binary form
        const err = t.variant([["no-such-store", undefined], ["access-denied", undefined], ["other", t.string]]);
        const bin = (await invoke(ctx.nc, store("open"), t.func([["identifier", t.string]], t.result(t.own("bucket"), err)), [bucket])) as { tag: string; val: Uint8Array };
        assert.equal(bin.tag, "ok");
        const got = await invoke(ctx.nc, store("[method]bucket.get"), t.func([["self", t.borrow("bucket")], ["key", t.string]], t.result(t.option(t.list(t.u8)), err)), [bin.val, "hits"]);
        assert.deepEqual(got, { tag: "ok", val: new Uint8Array([1, 2, 3]) }, "a value set through a JSON handle is in the bucket binary calls open");
        const n = await invoke(ctx.nc, at("wasi:keyvalue/atomics", "increment"), t.func([["bucket", t.borrow("bucket")], ["key", t.string], ["delta", t.u64]], t.result(t.u64, err)), [bin.val, "n", 1n]);
        assert.deepEqual(n, { tag: "ok", val: 6n });
      } finally {
        await ctx.stopQuietly(id);
      }
    },
  },
];
