/**
 * The host-side handle cache of `wasi:keyvalue/store.open` (issue 12 item 3, docs/adr/0024-call-path.md): a component
 * that opens the same bucket on every request makes one `open` round trip per link, sends no `[resource-drop]` for the
 * shared handle, and after a re-link (to another target, or again to the same one) its next calls reach the new link
 * only — no stale handle reaches the old target. Two key-value targets served in this process record every call.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentize } from "componentize-qjs";
import { invokeJson, serveInterfaces, type InvocationRequest, type InvocationServer } from "../src/invocation/index.ts";
import type { Link } from "../src/core/link.ts";
import { waitFor } from "../src/testing/index.ts";
import { KEYVALUE_ATOMICS, KEYVALUE_STORE } from "trellis/provider-sdk";
import { COUNTER_WIT } from "./support/providers.ts";
import { startRuntime, type RuntimeEnv } from "./support/components.ts";

/** Opens, uses and drops the bucket on every call, as the demo's counter does. */
const GUEST_JS = `
import { open } from "wasi:keyvalue/store@0.2.0-draft";
import { increment } from "wasi:keyvalue/atomics@0.2.0-draft";
function using(name, f) {
  const b = open(name);
  try { return f(b); } finally { b[Symbol.dispose]?.(); }
}
export const api = {
  ping() { return 1; },
  hit(key) { return using("counters", (b) => increment(b, key, 1)); },
  put(key, value) { using("data", (b) => b.set(key, Uint8Array.from(value, (c) => c.charCodeAt(0)))); },
  fetch(key) {
    const v = using("data", (b) => b.get(key));
    return v == null ? undefined : String.fromCharCode(...v);
  },
};
`;

interface Seen {
  target: string;
  fn: string;
  bucket: string | undefined;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const handles = { toHandle: (_r: string, v: unknown) => enc.encode(String(v)), fromHandle: (_r: string, h: Uint8Array) => dec.decode(h) };

/** A key-value target (store + atomics) that records every call it receives into `seen`. */
function kvTarget(env: RuntimeEnv, targetId: string, seen: Seen[]): InvocationServer {
  const data = new Map<string, Uint8Array>();
  const ok = (val?: unknown) => (val === undefined ? { tag: "ok" } : { tag: "ok", val });
  const log = (fn: string, bucket: string | undefined) => seen.push({ target: targetId, fn, bucket });
  return serveInterfaces(env.nc, { lattice: env.lattice, targetId }, [
    {
      type: KEYVALUE_STORE,
      resources: handles,
      handlers: {
        open: (name: string) => (log("open", name), ok(name)),
        "[method]bucket.get": (b: string, key: string) => (log("get", b), ok(data.get(`${b}/${key}`))),
        "[method]bucket.set": (b: string, key: string, v: Uint8Array) => (log("set", b), data.set(`${b}/${key}`, Uint8Array.from(v)), ok()),
        "[resource-drop]bucket": (b: string, _req: InvocationRequest) => void log("drop", b),
      },
    },
    {
      type: KEYVALUE_ATOMICS,
      resources: handles,
      handlers: {
        increment: (b: string, key: string, delta: bigint) => {
          log("increment", b);
          const next = BigInt(dec.decode(data.get(`${b}/${key}`) ?? enc.encode("0"))) + BigInt(delta);
          data.set(`${b}/${key}`, enc.encode(String(next)));
          return ok(next);
        },
      },
    },
  ]);
}

describe("handle cache of key-value open (issue 12 item 3)", () => {
  let env: RuntimeEnv;
  const seen: Seen[] = [];
  const servers: InvocationServer[] = [];
  const api = (fn: string, args: unknown[]) => invokeJson(env.nc, { lattice: env.lattice, targetId: "hc", iface: "test:counter/api", fn, timeoutMs: 5000 }, args);
  const kvLink = (target: string, config: string[] = []) => ({
    source_id: "hc",
    target,
    wit_namespace: "wasi",
    wit_package: "keyvalue",
    interfaces: ["atomics", "store"],
    target_config: config,
  });
  const count = (target: string, fn?: string, bucket?: string) =>
    seen.filter((s) => s.target === target && (fn === undefined || s.fn === fn) && (bucket === undefined || s.bucket === bucket)).length;
  let link: Link;

  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-hcache-"));
    await writeFile(path.join(dir, "world.wit"), COUNTER_WIT);
    const { component } = await componentize({ witPath: path.join(dir, "world.wit"), jsSource: GUEST_JS, sync: true, optSize: true });
    await writeFile(path.join(dir, "hc.wasm"), component);
    env = await startRuntime();
    servers.push(kvTarget(env, "kva", seen), kvTarget(env, "kvb", seen));
    await env.nc.flush();
    link = env.links.put(kvLink("kva"));
    await env.runtime.start(path.join(dir, "hc.wasm"), "hc");
  });
  after(async () => {
    for (const s of servers) s.stop();
    await env?.close();
  });

  test("one open per bucket and link, no drop notification for the shared handle", async () => {
    for (let i = 1; i <= 5; i++) assert.equal(await api("hit", ["k"]), i);
    assert.equal(await api("put", ["greeting", "hello"]), null);
    assert.equal(await api("fetch", ["greeting"]), "hello");
    assert.equal(count("kva", "increment"), 5);
    assert.equal(count("kva", "open", "counters"), 1, `one open of "counters" for five hits: ${JSON.stringify(seen)}`);
    assert.equal(count("kva", "open", "data"), 1);
    assert.equal(count("kva", "drop"), 0, "no drop notifications for cached handles");
  });

  test("after a re-link to another target, no call (and no stale handle) reaches the old target", async () => {
    env.links.del(link);
    link = env.links.put(kvLink("kvb"));
    // the worker applies the change asynchronously: wait for the first call at the new target
    await waitFor(async () => (await api("hit", ["k"]), count("kvb") > 0), { timeoutMs: 10_000, message: "a call reaches kvb" });
    const atOld = count("kva");
    for (let i = 0; i < 5; i++) await api("hit", ["k"]);
    assert.equal(await api("put", ["greeting", "again"]), null);
    assert.equal(await api("fetch", ["greeting"]), "again");
    assert.equal(count("kva"), atOld, `calls reached the old target after the re-link: ${JSON.stringify(seen.slice(-12))}`);
    assert.equal(count("kvb", "open", "counters"), 1, "the new target opened the bucket itself");
    assert.equal(count("kvb", "open", "data"), 1);
    assert.equal(count("kvb", "set", "data"), 1);
    assert.equal(count("kvb", "get", "data"), 1, "methods on the re-opened handle go to the new target");
  });

  test("a re-link to the same target (another config) opens the bucket again there", async () => {
    const opens = count("kvb", "open", "counters");
    env.links.del(link);
    link = env.links.put(kvLink("kvb", ["kv-other"]));
    await waitFor(async () => (await api("hit", ["k"]), count("kvb", "open", "counters") > opens), {
      timeoutMs: 10_000,
      message: "an open of counters on the new link",
    });
    const after = count("kvb", "open", "counters");
    for (let i = 0; i < 3; i++) await api("hit", ["k"]);
    assert.equal(count("kvb", "open", "counters"), after, "cached again after the first open on the new link");
  });
});
