/**
 * The Redis and NATS JetStream KV key-value providers (issue 5 §2): `wasi:keyvalue` store + atomics + batch
 * @0.2.0-draft over the invocation protocol, called the way a component's import is (source id + link name), each run
 * in-process as a remote provider against a real nats-server and redis-server.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { runProvider, type ProviderDefinition, type RunningProvider } from "../packages/provider-sdk/src/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { invoke, type InterfaceType } from "../src/invocation/index.ts";
import { startTestRedis, waitFor, type TestRedis } from "../src/testing/index.ts";
import { BUCKET_HANDLES, KEYVALUE_ATOMICS, KEYVALUE_BATCH, KEYVALUE_STORE } from "trellis/provider-sdk";
import { kvRedisProvider } from "../providers/kv-redis/main.ts";
import type { RedisBackend } from "../providers/kv-redis/redis-backend.ts";
import { kvNatsProvider } from "../providers/kv-nats/main.ts";
import { decodePart, encodePart } from "../providers/kv-nats/nats-backend.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

type Ok<T> = { tag: "ok"; val: T } | { tag: "err"; val: { tag: string; val?: string } };

function ok<T>(r: unknown): T {
  const v = r as Ok<T>;
  assert.equal(v.tag, "ok", `expected ok, got ${JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x))}`);
  return (v as { val: T }).val;
}

/** Calls one keyvalue function as component `source` under `linkName` would. */
function kvCall(nc: NatsConnection, lattice: string, target: string, source: string, linkName: string) {
  return (iface: InterfaceType, fn: string, args: unknown[]) =>
    invoke(nc, { lattice, targetId: target, iface: iface.name, fn, sourceId: source, linkName, timeoutMs: 5000 }, iface.functions[fn]!, args, BUCKET_HANDLES);
}

async function exercise(call: ReturnType<typeof kvCall>, bucketName: string): Promise<void> {
  const b = ok<string>(await call(KEYVALUE_STORE, "open", [bucketName]));
  assert.equal(b, bucketName);
  assert.equal(ok(await call(KEYVALUE_STORE, "[method]bucket.get", [b, "missing"])), undefined);
  ok(await call(KEYVALUE_STORE, "[method]bucket.set", [b, "greeting", enc.encode("hello")]));
  ok(await call(KEYVALUE_STORE, "[method]bucket.set", [b, "odd key/ü", Uint8Array.of(0, 255)]));
  assert.equal(dec.decode(ok<Uint8Array>(await call(KEYVALUE_STORE, "[method]bucket.get", [b, "greeting"]))), "hello");
  assert.deepEqual([...ok<Uint8Array>(await call(KEYVALUE_STORE, "[method]bucket.get", [b, "odd key/ü"]))], [0, 255]);
  assert.equal(ok(await call(KEYVALUE_STORE, "[method]bucket.exists", [b, "greeting"])), true);
  assert.equal(ok(await call(KEYVALUE_ATOMICS, "increment", [b, "n", 5n])), 5n);
  assert.equal(ok(await call(KEYVALUE_ATOMICS, "increment", [b, "n", 2n])), 7n);
  const notNumber = (await call(KEYVALUE_ATOMICS, "increment", [b, "greeting", 1n])) as Ok<bigint>;
  assert.equal(notNumber.tag, "err");
  assert.equal(notNumber.val && (notNumber.val as { tag: string }).tag, "other");
  const keys = ok<{ keys: string[]; cursor?: bigint }>(await call(KEYVALUE_STORE, "[method]bucket.list-keys", [b, undefined]));
  assert.deepEqual([...keys.keys].sort(), ["greeting", "n", "odd key/ü"]);
  ok(await call(KEYVALUE_BATCH, "set-many", [b, [["a", enc.encode("1")], ["b", enc.encode("2")]]]));
  const many = ok<([string, Uint8Array] | undefined)[]>(await call(KEYVALUE_BATCH, "get-many", [b, ["a", "nope", "b"]]));
  assert.deepEqual(many.map((e) => (e ? [e[0], dec.decode(e[1])] : null)), [["a", "1"], null, ["b", "2"]]);
  ok(await call(KEYVALUE_BATCH, "delete-many", [b, ["a", "b"]]));
  ok(await call(KEYVALUE_STORE, "[method]bucket.delete", [b, "greeting"]));
  assert.equal(ok(await call(KEYVALUE_STORE, "[method]bucket.exists", [b, "greeting"])), false);
  assert.equal(ok(await call(KEYVALUE_STORE, "[method]bucket.get", [b, "a"])), undefined);
}

void describe("key-value providers", () => {
  let t: TestLattice;
  let redis: TestRedis;
  let nc: NatsConnection;
  const running: RunningProvider<unknown>[] = [];

  async function start<R>(id: string, def: ProviderDefinition<R>): Promise<RunningProvider<R>> {
    const p = await runProvider(def, { remote: { providerId: id, lattice: t.lattice, natsUrl: t.nats.url }, exitOnShutdown: false, logger: silentLogger });
    running.push(p as RunningProvider<unknown>);
    return p;
  }

  async function linkKv(source: string, target: string, name: string, config: Record<string, string>): Promise<void> {
    const cfg = `${source}-${name}-${target}`;
    await t.client.putConfig(cfg, config);
    await t.client.putLink({ source_id: source, target, name, wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "batch", "store"], target_config: [cfg] });
  }

  before(async () => {
    t = await testLattice();
    redis = await startTestRedis();
    await t.startHost();
    nc = await t.connection();
  });

  after(async () => {
    await Promise.allSettled(running.map((p) => p.shutdown()));
    await t?.close();
    await redis?.stop();
  });

  void test("encoding of NATS KV key parts round-trips and stays readable", () => {
    for (const s of ["plain", "with-dash_under/slash", "", "=x", "a.b", "spa ce", "ü"]) assert.equal(decodePart(encodePart(s)), s);
    assert.equal(encodePart("request-count"), "request-count");
    assert.match(encodePart("a.b"), /^=[-\w]+$/);
  });

  void test("kv-redis: store, atomics and batch; one connection per link, closed when the link is deleted", async () => {
    const p = await start("kv-redis", kvRedisProvider({ drainMs: 1000 }));
    const prefix = `t${Date.now()}`;
    await linkKv("app", "kv-redis", "default", { url: redis.url });
    await linkKv("app", "kv-redis", "other", { URL: redis.url });
    await exercise(kvCall(nc, t.lattice, "kv-redis", "app", "default"), `${prefix}-a`);
    // The data is really in Redis, under bucket:key.
    const r = new Redis(redis.url);
    try {
      assert.equal(await r.get(`${prefix}-a:n`), "7");
      const call2 = kvCall(nc, t.lattice, "kv-redis", "app", "other");
      assert.equal(ok(await call2(KEYVALUE_ATOMICS, "increment", [`${prefix}-a`, "n", 1n])), 8n, "another link sees the same Redis");
      const links = () => p.ctx.links().filter((l) => l.sourceId === "app");
      await waitFor(() => links().length === 2);
      const backend = p.ctx.linkFor("app", "other", "wasi:keyvalue")?.resource as RedisBackend | undefined;
      assert.ok(backend);
      await t.client.deleteLink({ source_id: "app", wit_namespace: "wasi", wit_package: "keyvalue", name: "other" });
      // A deleted link keeps answering for its drain time (calls routed just before the delete), then closes.
      await waitFor(() => p.ctx.links().filter((l) => l.sourceId === "app").length === 1, { message: "the link delete" });
      assert.equal(ok(await call2(KEYVALUE_ATOMICS, "increment", [`${prefix}-a`, "n", 1n])), 9n, "answered while draining");
      await waitFor(() => backend.status === "end", { message: "the link's connection to be closed" });
      const gone = (await invoke(nc, { lattice: t.lattice, targetId: "kv-redis", iface: KEYVALUE_STORE.name, fn: "open", sourceId: "app", linkName: "other", timeoutMs: 3000 }, KEYVALUE_STORE.functions.open!, ["x"], BUCKET_HANDLES).catch((e: { code?: string }) => e.code)) as string;
      assert.equal(gone, "LINK_NOT_FOUND");
    } finally {
      r.disconnect();
    }
  });

  void test("kv-redis: an unreachable Redis is an error value, not a hang or a crash", async () => {
    await start("kv-redis-down", kvRedisProvider());
    await linkKv("app2", "kv-redis-down", "default", { url: "redis://127.0.0.1:1", command_timeout_ms: "300" });
    const call = kvCall(nc, t.lattice, "kv-redis-down", "app2", "default");
    const r = (await call(KEYVALUE_ATOMICS, "increment", ["b", "k", 1n])) as Ok<bigint>;
    assert.equal(r.tag, "err");
  });

  void test("kv-nats: store, atomics and batch on a JetStream KV bucket; concurrent increments are exact", async () => {
    await start("kv-nats", kvNatsProvider());
    await linkKv("app3", "kv-nats", "default", { bucket: "trellis_test_kv" });
    const call = kvCall(nc, t.lattice, "kv-nats", "app3", "default");
    await exercise(call, "bucket-one");
    const results = await Promise.all(Array.from({ length: 40 }, () => call(KEYVALUE_ATOMICS, "increment", ["race", "hits", 1n])));
    const values = results.map((x) => ok<bigint>(x)).sort((a, b) => Number(a - b));
    assert.deepEqual(values, Array.from({ length: 40 }, (_, i) => BigInt(i + 1)));
  });
});
