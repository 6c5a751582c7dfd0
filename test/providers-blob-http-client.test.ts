/**
 * The blobstore-fs and http-client providers (issue 5 §3), in-process as remote providers, called over the
 * invocation protocol the way a component's routed imports call them.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { runProvider, type ProviderDefinition, type RunningProvider } from "../packages/provider-sdk/src/index.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { silentLogger } from "../src/core/logger.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { headersFrom, invoke, OUTGOING_HANDLER, HTTP_HANDLE_TYPE, type HttpResponse, type InterfaceType, type ResourceMapper } from "../src/invocation/index.ts";
import { blobstoreFsProvider } from "../providers/blobstore-fs/main.ts";
import { decodeName, encodeName } from "../providers/blobstore-fs/store.ts";
import { BLOBSTORE, CONTAINER } from "../providers/blobstore-fs/wit.ts";
import { httpClientProvider } from "../providers/http-client/main.ts";
import { errorCodeFor, targetUrl } from "../providers/http-client/client.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

type R<T> = { tag: "ok"; val: T } | { tag: "err"; val: string };
function ok<T>(r: unknown): T {
  const v = r as R<T>;
  assert.equal(v.tag, "ok", `expected ok, got ${JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x))}`);
  return (v as { val: T }).val;
}

/** Handles as a caller sees them: containers by name, values by content, listings opaque. */
const callerHandles: ResourceMapper = {
  toHandle: (r, v) => (r === "container" ? enc.encode(String(v)) : (v as Uint8Array)),
  fromHandle: (r, h) => (r === "container" ? dec.decode(h) : h),
};

void describe("blobstore-fs and http-client providers", () => {
  let t: TestLattice;
  let nc: NatsConnection;
  let root: string;
  let upstream: Server;
  let upstreamPort: number;
  const running: RunningProvider<unknown>[] = [];

  async function start<X>(id: string, def: ProviderDefinition<X>): Promise<void> {
    running.push((await runProvider(def, { remote: { providerId: id, lattice: t.lattice, natsUrl: t.nats.url }, exitOnShutdown: false, logger: silentLogger })) as RunningProvider<unknown>);
  }

  before(async () => {
    t = await testLattice();
    await t.startHost();
    nc = await t.connection();
    root = await mkdtemp(path.join(tmpdir(), "trellis-blobs-"));
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        res.writeHead(req.url === "/missing" ? 404 : 200, { "content-type": "text/plain", "x-seen-path": req.url ?? "", "x-seen-method": req.method ?? "" });
        res.end(`got ${Buffer.concat(chunks).toString()}`);
      });
    });
    upstreamPort = await getFreePort();
    await new Promise<void>((r) => upstream.listen(upstreamPort, "127.0.0.1", () => r()));
    await start("blobs", blobstoreFsProvider());
    await start("http-client", httpClientProvider());
  });

  after(async () => {
    await Promise.allSettled(running.map((p) => p.shutdown()));
    upstream?.close();
    await t?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  void test("names on disk: any string, nothing escapes the root", () => {
    for (const n of ["a", "with space", "..", ".", "a/b", "ü", ".tmp-x"]) assert.equal(decodeName(encodeName("object", n)), n);
    assert.ok(!encodeName("object", "../x").includes("/"));
    assert.notEqual(encodeName("object", ".."), "..");
    assert.throws(() => encodeName("container", ""), /must not be empty/);
  });

  void test("blobstore-fs: containers and objects on the link's root; values travel by content", async () => {
    await t.client.putConfig("blobs-root", { root });
    await t.client.putLink({ source_id: "app", target: "blobs", wit_namespace: "wasi", wit_package: "blobstore", interfaces: ["blobstore", "container", "types"], target_config: ["blobs-root"] });
    const call = (iface: InterfaceType, fn: string, args: unknown[]) =>
      invoke(nc, { lattice: t.lattice, targetId: "blobs", iface: iface.name, fn, sourceId: "app", timeoutMs: 5000 }, iface.functions[fn]!, args, callerHandles);
    const missing = (await call(BLOBSTORE, "get-container", ["http-responses"])) as R<string>;
    assert.equal(missing.tag, "err");
    assert.equal(ok(await call(BLOBSTORE, "container-exists", ["http-responses"])), false);
    const c = ok<string>(await call(BLOBSTORE, "create-container", ["http-responses"]));
    assert.equal(c, "http-responses");
    assert.equal((await call(BLOBSTORE, "create-container", ["http-responses"]) as R<string>).tag, "err", "create of an existing container fails");
    ok(await call(CONTAINER, "[method]container.write-data", [c, "example-com-response", enc.encode("<html>hi</html>")]));
    assert.equal(await readFile(path.join(root, "http-responses", "example-com-response"), "utf8"), "<html>hi</html>");
    assert.equal(dec.decode(ok<Uint8Array>(await call(CONTAINER, "[method]container.get-data", [c, "example-com-response", 0n, (1n << 64n) - 1n]))), "<html>hi</html>");
    assert.equal(dec.decode(ok<Uint8Array>(await call(CONTAINER, "[method]container.get-data", [c, "example-com-response", 6n, 7n]))), "hi");
    const info = ok<{ name: string; container: string; size: bigint }>(await call(CONTAINER, "[method]container.object-info", [c, "example-com-response"]));
    assert.deepEqual([info.name, info.container, info.size], ["example-com-response", "http-responses", 15n]);
    ok(await call(CONTAINER, "[method]container.write-data", [c, "b/../odd", enc.encode("x")]));
    ok(await call(BLOBSTORE, "copy-object", [{ container: c, object: "b/../odd" }, { container: c, object: "copy" }]));
    const listing = ok<Uint8Array>(await call(CONTAINER, "[method]container.list-objects", [c]));
    const [first, end1] = ok<[string[], boolean]>(await call(CONTAINER, "[method]stream-object-names.read-stream-object-names", [listing, 2n]));
    const [rest, end2] = ok<[string[], boolean]>(await call(CONTAINER, "[method]stream-object-names.read-stream-object-names", [listing, 10n]));
    assert.deepEqual([...first, ...rest].sort(), ["b/../odd", "copy", "example-com-response"]);
    assert.deepEqual([end1, end2], [false, true]);
    assert.equal(ok(await call(CONTAINER, "[method]container.has-object", [c, "copy"])), true);
    ok(await call(CONTAINER, "[method]container.clear", [c]));
    assert.deepEqual(await readdir(path.join(root, "http-responses")), []);
    ok(await call(BLOBSTORE, "delete-container", [c]));
    assert.equal(ok(await call(BLOBSTORE, "container-exists", [c])), false);
  });

  void test("http-client: base_url points requests at a local server; failures carry wasi:http error codes", async () => {
    await t.client.putConfig("local", { base_url: `http://127.0.0.1:${upstreamPort}` });
    await t.client.putLink({ source_id: "app", target: "http-client", wit_namespace: "wasi", wit_package: "http", interfaces: ["outgoing-handler"], target_config: ["local"] });
    const send = (linkName: string, req: { method: string; pathWithQuery: string; authority?: string; scheme?: string; body?: string }) =>
      invoke(
        nc,
        { lattice: t.lattice, targetId: "http-client", iface: OUTGOING_HANDLER, fn: "handle", sourceId: "app", linkName, timeoutMs: 5000 },
        HTTP_HANDLE_TYPE,
        [{ ...req, headers: headersFrom({ "x-test": "1" }), body: enc.encode(req.body ?? "") }],
      ) as Promise<HttpResponse>;
    const r = await send("default", { method: "POST", pathWithQuery: "/p?q=1", scheme: "https", authority: "example.com", body: "hello" });
    assert.equal(r.status, 200);
    assert.equal(dec.decode(r.body), "got hello");
    assert.equal(dec.decode(r.headers.find(([n]) => n === "x-seen-path")![1]), "/p?q=1");
    assert.equal((await send("default", { method: "GET", pathWithQuery: "/missing", authority: "example.com" })).status, 404);

    await t.client.putConfig("nowhere", { base_url: `http://127.0.0.1:${await getFreePort()}` });
    await t.client.putLink({ source_id: "app", target: "http-client", name: "nowhere", wit_namespace: "wasi", wit_package: "http", interfaces: ["outgoing-handler"], target_config: ["nowhere"] });
    await assert.rejects(send("nowhere", { method: "GET", pathWithQuery: "/", authority: "example.com" }), (e: TrellisError) => {
      assert.equal(e.code, "APPLICATION_ERROR");
      assert.equal(e.details?.error_code, "connection-refused");
      return true;
    });
  });

  void test("http-client: URL building and error mapping", () => {
    assert.equal(targetUrl({ method: "GET", pathWithQuery: "/a?b=1", authority: "x.org", headers: [], body: new Uint8Array() }, undefined).href, "https://x.org/a?b=1");
    assert.equal(targetUrl({ method: "GET", pathWithQuery: "/a?b=1", authority: "x.org", headers: [], body: new Uint8Array() }, new URL("http://127.0.0.1:9/base/")).href, "http://127.0.0.1:9/base/a?b=1");
    assert.throws(() => targetUrl({ method: "GET", pathWithQuery: "/", headers: [], body: new Uint8Array() }, undefined), /no authority/);
    assert.equal(errorCodeFor(Object.assign(new Error("x"), { code: "ENOTFOUND" })), "destination-not-found");
    assert.equal(errorCodeFor(Object.assign(new Error("x"), { code: "ECONNREFUSED" })), "connection-refused");
    assert.equal(errorCodeFor(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })), "connection-terminated");
  });
});
