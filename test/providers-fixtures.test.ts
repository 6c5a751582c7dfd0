/**
 * Real components (prebuilt fixtures) behind the first-party providers, every provider spawned by the host's supervisor
 * (issue 5, "Done when"): the Rust hello world and the inter-component chain served through the HTTP server provider;
 * wasmCloud's http_counter answering 1, 2, 3 with kv-redis, blobstore-fs and http-client pointed at a local server,
 * and 500 — with the host unharmed — when the HTTP client points nowhere.
 *
 * Fixtures (`TRELLIS_FIXTURES_DIR`, test/support/components.ts; read in place, never copied): Apache-2.0; http_hello_world_rust.wasm,
 * http_counter.wasm and inter_component_call_{caller,middleware,callee}.wasm from wasmCloud/wasmCloud
 * crates/wash/tests/fixtures (a1806a3e).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { CtlClient, type LinkInput } from "../src/control/client.ts";
import type { Logger, LogMeta } from "../src/core/logger.ts";
import type { Host } from "../src/host/host.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { startTestNats, startTestRedis, uniqueLattice, waitFor, type TestNats, type TestRedis } from "../src/testing/index.ts";
import { startDemoHost } from "../src/demo/stack.ts";
import { FIXTURES_DIR, fixture, needsFixtures } from "./support/components.ts";


/** A logger that keeps every record (component logs arrive through the host's logger). */
function recordingLogger(records: { level: string; msg: string; meta: LogMeta }[], bindings: LogMeta = {}): Logger {
  const rec = (level: string) => (msg: string, meta?: LogMeta) => void records.push({ level, msg, meta: { ...bindings, ...meta } });
  return { trace: rec("trace"), debug: rec("debug"), info: rec("info"), warn: rec("warn"), error: rec("error"), child: (b) => recordingLogger(records, { ...bindings, ...b }) };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  return { status: r.status, body: await r.text() };
}

void describe("fixtures behind the first-party providers", { skip: needsFixtures("http_hello_world_rust.wasm", "http_counter.wasm", "inter_component_call_caller.wasm", "inter_component_call_middleware.wasm", "inter_component_call_callee.wasm") }, () => {
  let nats: TestNats;
  let redis: TestRedis;
  let host: Host;
  let client: CtlClient;
  let upstream: Server;
  let upstreamPort: number;
  let blobRoot: string;
  const logs: { level: string; msg: string; meta: LogMeta }[] = [];
  let helloUrl = "";

  const link = (l: LinkInput) => client.putLink(l);
  const httpLink = async (component: string, name: string, port: number) => {
    await client.putConfig(`http-${name}`, { address: `127.0.0.1:${port}` });
    await link({ source_id: "http", target: component, name, wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"], source_config: [`http-${name}`] });
  };
  const scale = (ref: string, id: string, config: string[] = []) => client.scaleComponent(host.id, { component_ref: ref, component_id: id, count: 1, config });
  const firstAnswer = (url: string) => waitFor(async () => {
    const r = await get(url);
    return r.status === 503 ? undefined : r;
  }, { timeoutMs: 60_000, intervalMs: 150, message: `${url} to answer` });

  before(async () => {
    [nats, redis] = await Promise.all([startTestNats(), startTestRedis()]);
    const lattice = uniqueLattice("fx");
    host = await startDemoHost({ natsUrl: nats.url, lattice, logger: recordingLogger(logs), cacheDir: path.join(tmpdir(), "trellis-test-cache"), allowedPaths: [FIXTURES_DIR] });
    client = await CtlClient.connect({ natsUrl: nats.url, lattice, timeoutMs: 5000 });
    upstream = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>example.com, served locally</html>");
    });
    upstreamPort = await getFreePort();
    await new Promise<void>((r) => upstream.listen(upstreamPort, "127.0.0.1", () => r()));
    blobRoot = await mkdtemp(path.join(tmpdir(), "trellis-fx-blobs-"));
    for (const [id, ref] of [["http", "http-server"], ["kv-redis", "kv-redis"], ["blobs", "blobstore-fs"], ["http-client", "http-client"]] as const) {
      await client.startProvider(host.id, { provider_id: id, provider_ref: ref });
    }
  });

  after(async () => {
    await client?.close();
    await host?.stop();
    upstream?.close();
    await redis?.stop();
    await nats?.stop();
    if (blobRoot) await rm(blobRoot, { recursive: true, force: true });
  });

  void test("http_hello_world_rust through provider → lattice → component", async () => {
    const port = await getFreePort();
    await httpLink("hello", "hello", port);
    await scale(fixture("http_hello_world_rust.wasm"), "hello");
    helloUrl = `http://127.0.0.1:${port}/`;
    const r = await firstAnswer(`${helloUrl}any/path?q=1`);
    assert.deepEqual(r, { status: 200, body: "Hello from Rust!\n" });
    const many = await Promise.all(Array.from({ length: 20 }, () => get(`http://127.0.0.1:${port}/`)));
    assert.ok(many.every((m) => m.status === 200 && m.body === "Hello from Rust!\n"));
  });

  void test("the inter-component chain: caller → middleware → callee, each logging through its own context", async () => {
    const port = await getFreePort();
    await link({ source_id: "caller", target: "middleware", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["middleware"] });
    await link({ source_id: "middleware", target: "callee", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["receiver"] });
    await httpLink("caller", "chain", port);
    await scale(fixture("inter_component_call_callee.wasm"), "callee");
    await scale(fixture("inter_component_call_middleware.wasm"), "middleware");
    await scale(fixture("inter_component_call_caller.wasm"), "caller");
    const r = await firstAnswer(`http://127.0.0.1:${port}/`);
    assert.deepEqual(r, { status: 200, body: "" });
    const lines = logs.filter((l) => /invoke/.test(l.msg)).map((l) => `${String(l.meta.component_id)}: ${l.msg}`);
    const mi = lines.findIndex((l) => l.startsWith("middleware:") && l.includes("middleware: invoke"));
    const ri = lines.findIndex((l) => l.startsWith("callee:") && l.includes("receiver: invoke"));
    assert.ok(mi >= 0 && ri > mi, `logs show middleware then receiver: ${JSON.stringify(lines)}`);
  });

  void test("http_counter answers 1, 2, 3 with kv-redis, blobstore-fs and http-client → local server; 500 when the client points nowhere", async () => {
    const port = await getFreePort();
    await client.putConfig("hc-config", { test_key: "test_value", counter_enabled: "true" });
    await client.putConfig("hc-redis", { url: redis.url });
    await client.putConfig("hc-blobs", { root: blobRoot });
    await client.putConfig("hc-local", { base_url: `http://127.0.0.1:${upstreamPort}` });
    // Links first: the component then starts with its whole routing table.
    await link({ source_id: "counter", target: "kv-redis", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"], target_config: ["hc-redis"] });
    await link({ source_id: "counter", target: "blobs", wit_namespace: "wasi", wit_package: "blobstore", interfaces: ["blobstore", "container", "types"], target_config: ["hc-blobs"] });
    await link({ source_id: "counter", target: "http-client", wit_namespace: "wasi", wit_package: "http", interfaces: ["outgoing-handler"], target_config: ["hc-local"] });
    await httpLink("counter", "counter", port);
    await scale(fixture("http_counter.wasm"), "counter", ["hc-config"]);
    const url = `http://127.0.0.1:${port}/`;
    const first = await firstAnswer(url);
    const rest = [await get(url), await get(url)];
    assert.deepEqual([first, ...rest].map((r) => `${r.status} ${r.body}`), ["200 1", "200 2", "200 3"]);
    assert.equal(await readFile(path.join(blobRoot, "http-responses", "example-com-response"), "utf8"), "<html>example.com, served locally</html>");
    assert.ok(logs.some((l) => /test_key/.test(l.msg)), "the component logged its config keys through wasi:logging");

    // Point the HTTP client nowhere: the outgoing request fails, the component answers 500, everything else keeps going.
    await client.putConfig("hc-nowhere", { base_url: `http://127.0.0.1:${await getFreePort()}` });
    await client.replaceLink(
      { source_id: "counter", wit_namespace: "wasi", wit_package: "http", name: "default", target: "http-client" },
      { source_id: "counter", target: "http-client", wit_namespace: "wasi", wit_package: "http", interfaces: ["outgoing-handler"], target_config: ["hc-nowhere"] },
    );
    const failed = await waitFor(async () => {
      const r = await get(url);
      return r.status === 500 ? r : undefined;
    }, { timeoutMs: 10_000, message: "a 500 once the client points nowhere" });
    assert.match(failed.body, /ConnectionRefused/, "the guest saw wasi:http error-code connection-refused");
    assert.equal((await get(url)).status, 500, "the counter keeps answering (500) without crashing");
    assert.equal(host.state, "RUNNING");
    const inv = await client.getInventory(host.id);
    assert.deepEqual(inv.components.map((c) => c.id).sort(), ["callee", "caller", "counter", "hello", "middleware"]);
    assert.ok(inv.providers.every((p) => p.status === undefined || p.status === "running"), JSON.stringify(inv.providers));
    assert.deepEqual(await get(helloUrl), { status: 200, body: "Hello from Rust!\n" }, "the rest of the host is unharmed");
  });
});
