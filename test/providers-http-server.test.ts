/**
 * The HTTP server provider (issue 5 §1): one listener per link on the link's address, several components behind
 * separate links, bodies larger than one NATS message, 413 / 504 / 503 without a crash, listener closed on link delete.
 * Components are stood in for by plain JavaScript targets (`serveHttpHandler`) here; the wasm path (the hello-world
 * fixture through the component runtime) is in test/providers-fixtures.test.ts.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect as connectTcp } from "node:net";
import type { NatsConnection } from "@nats-io/transport-node";
import { runProvider, type RunningProvider } from "../packages/provider-sdk/src/index.ts";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { silentLogger } from "../src/core/logger.ts";
import { headersFrom, serveHttpHandler, type InvocationServer } from "../src/invocation/index.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { waitFor } from "../src/testing/index.ts";
import { httpServerProvider } from "../providers/http-server/provider.ts";
import { statusForError, type HttpListener } from "../providers/http-server/listener.ts";
import { parseAddress, parseSize, listenerSettings } from "../providers/http-server/settings.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const enc = new TextEncoder();

/** One HTTP request with node:http (no keep-alive), resolving to status, headers and body. */
function http(
  url: string,
  opts: { method?: string; body?: Uint8Array; headers?: Record<string, string | number> } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? "GET", headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

void describe("http-server settings", () => {
  void test("addresses, sizes and defaults", () => {
    assert.deepEqual(parseAddress("127.0.0.1:8000"), { host: "127.0.0.1", port: 8000 });
    assert.deepEqual(parseAddress("[::1]:80"), { host: "::1", port: 80 });
    assert.deepEqual(parseAddress(":9"), { host: "0.0.0.0", port: 9 });
    assert.throws(() => parseAddress("localhost"), /expected host:port/);
    assert.throws(() => parseAddress("1.2.3.4:70000"), /port/);
    assert.equal(parseSize("k", "512K"), 512 * 1024);
    assert.equal(parseSize("k", "16MiB"), 16 * 1024 * 1024);
    assert.throws(() => parseSize("max_content_len", "lots"), /max_content_len/);
    const s = listenerSettings({ address: "127.0.0.1:1234" }, { timeout_ms: "50" });
    assert.deepEqual(s, { host: "127.0.0.1", port: 1234, timeoutMs: 50, maxContentLen: 16 * 1024 * 1024 });
    assert.throws(() => listenerSettings({ max_content_len: "1G" }), /protocol's limit/);
  });
});

void test("a component that refuses an upload for its limits (docs/protocol.md §7.1) is 503, a body over its limit 413", () => {
  assert.equal(statusForError(new TrellisError(ErrorCode.TooManyUploads, "x")).status, 503);
  assert.equal(statusForError(new TrellisError(ErrorCode.UploadBufferFull, "x")).status, 503);
  assert.equal(statusForError(new TrellisError(ErrorCode.PayloadTooLarge, "x")).status, 413);
});

void describe("http-server provider (in-process, remote mode)", () => {
  let t: TestLattice;
  let nc: NatsConnection;
  let provider: RunningProvider<HttpListener>;
  const servers: InvocationServer[] = [];
  const PID = "http-server";

  before(async () => {
    t = await testLattice();
    await t.startHost();
    nc = await t.connection();
    provider = await runProvider(httpServerProvider(), {
      remote: { providerId: PID, lattice: t.lattice, natsUrl: t.nats.url },
      exitOnShutdown: false,
      logger: silentLogger,
    });
    // Stand-ins for components: `echo` answers with what it got; `slow` sleeps; `hello` greets.
    servers.push(
      serveHttpHandler(nc, { lattice: t.lattice, targetId: "echo" }, (req, inv) => ({
        status: 201,
        headers: [...headersFrom({ "x-method": req.method, "x-path": req.pathWithQuery, "x-link": inv.linkName, "x-source": inv.sourceId ?? "" }), ["x-bin", Uint8Array.of(0xe9)]],
        body: req.body,
      })),
      serveHttpHandler(nc, { lattice: t.lattice, targetId: "slow" }, async () => {
        await new Promise((r) => setTimeout(r, 1500));
        return { status: 200, headers: [], body: enc.encode("late") };
      }),
      serveHttpHandler(nc, { lattice: t.lattice, targetId: "hello" }, () => ({ status: 200, headers: headersFrom({ "content-type": "text/plain" }), body: enc.encode("hello\n") })),
    );
    await nc.flush();
  });

  after(async () => {
    for (const s of servers) s.stop();
    await provider?.shutdown();
    await t?.close();
  });

  async function link(target: string, config: Record<string, string>, name = "default"): Promise<string> {
    const cfg = `http-${target}-${name}`;
    await t.client.putConfig(cfg, config);
    await t.client.putLink({ source_id: PID, target, name, wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"], source_config: [cfg] });
    const url = `http://${config.address}`;
    await waitFor(() => http(url).then(() => true, () => false), { timeoutMs: 5000, message: `listener ${url}` });
    return url;
  }

  void test("one listener per link; each component behind its own address; headers and link name pass through", async () => {
    const [p1, p2] = [await getFreePort(), await getFreePort()];
    // One source may link one target per (package, link name) (reference §2.3), so components get their own names.
    const echo = await link("echo", { address: `127.0.0.1:${p1}` });
    const hello = await link("hello", { address: `127.0.0.1:${p2}` }, "hello");
    const r = await http(`${echo}/a/b?x=1`, { method: "POST", body: enc.encode("ping"), headers: { "x-custom": "v" } });
    assert.equal(r.status, 201);
    assert.equal(r.body.toString(), "ping");
    assert.equal(r.headers["x-method"], "POST");
    assert.equal(r.headers["x-path"], "/a/b?x=1");
    assert.equal(r.headers["x-link"], "default");
    assert.equal(r.headers["x-source"], PID);
    assert.equal(Buffer.from(r.headers["x-bin"] as string, "latin1")[0], 0xe9);
    assert.equal(r.headers["content-length"], "4");
    const h = await http(`${hello}/`);
    assert.equal(h.status, 200);
    assert.equal(h.body.toString(), "hello\n");
  });

  void test("bodies larger than one NATS message travel both ways (chunked, docs/protocol.md §7)", async () => {
    const url = await link("echo", { address: `127.0.0.1:${await getFreePort()}` }, "big");
    const big = new Uint8Array(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const r = await http(`${url}/upload`, { method: "PUT", body: big });
    assert.equal(r.status, 201);
    assert.equal(r.body.length, big.length);
    assert.ok(Buffer.from(big).equals(r.body));
  });

  void test("a body over max_content_len is 413 (declared or chunked); the listener keeps serving", async () => {
    const url = await link("echo", { address: `127.0.0.1:${await getFreePort()}`, max_content_len: "1K" }, "small");
    const declared = await http(url, { method: "POST", body: new Uint8Array(4096) });
    assert.equal(declared.status, 413);
    assert.match(declared.body.toString(), /larger than the limit of 1024 bytes/);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(url, { method: "POST", agent: false, headers: { "transfer-encoding": "chunked" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.write(new Uint8Array(800));
      req.end(new Uint8Array(800));
    });
    assert.equal(chunked, 413);
    const ok = await http(url, { method: "POST", body: enc.encode("fits") });
    assert.equal(ok.status, 201);
  });

  void test("no answer within timeout_ms is 504; no component is 503", async () => {
    const slow = await link("slow", { address: `127.0.0.1:${await getFreePort()}`, timeout_ms: "300" }, "slow");
    const started = Date.now();
    const r = await http(slow);
    assert.equal(r.status, 504);
    assert.ok(Date.now() - started < 1400, "answered at the deadline, not when the component finished");
    const none = await link("nobody", { address: `127.0.0.1:${await getFreePort()}` }, "nobody");
    const n = await http(none);
    assert.equal(n.status, 503);
    assert.equal((await http(slow)).status, 504, "the provider still serves");
  });

  void test("deleting the link closes its listener; the same address can be linked again", async () => {
    const port = await getFreePort();
    const url = await link("hello", { address: `127.0.0.1:${port}` }, "temp");
    assert.equal((await http(url)).status, 200);
    await t.client.deleteLink({ source_id: PID, wit_namespace: "wasi", wit_package: "http", name: "temp" });
    await waitFor(() => http(url).then(() => false, () => true), { timeoutMs: 5000, message: "listener closed" });
    const again = await link("hello", { address: `127.0.0.1:${port}` }, "temp2");
    assert.equal((await http(again)).status, 200);
  });

  void test("from a raw socket: a malformed chunk size is 400 at once and the connection closes; a chunk over max_content_len is 413 at once", async () => {
    const url = await link("echo", { address: `127.0.0.1:${await getFreePort()}`, max_content_len: "1K" }, "raw");
    const port = Number(new URL(url).port);
    const head = "POST /raw HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    // Bad hex, a size past 2^64, a negative size, a size with no line end (then junk).
    for (const bad of ["zz\r\n", "fffffffffffffffffff\r\n", "-5\r\nhello\r\n", "5\nhello\r\n0\r\n\r\n"]) {
      const r = await rawExchange(port, [head + "4\r\nping\r\n" + bad]);
      assert.match(r.text, /^HTTP\/1\.1 400 /, `${JSON.stringify(bad)} → ${JSON.stringify(r.text)}`);
      assert.ok(r.closed, `${JSON.stringify(bad)}: the connection closes`);
    }
    // A chunk declaring 4 GiB: answered 413 once the bytes received pass 1 KiB, without waiting for the rest.
    const big = await rawExchange(port, [head + "ffffffff\r\n", "a".repeat(600), "b".repeat(600)]);
    assert.match(big.text, /^HTTP\/1\.1 413 /, big.text);
    assert.ok(big.closed, "the connection closes after the 413");
    assert.equal((await http(url, { method: "POST", body: enc.encode("fits") })).status, 201, "the listener keeps serving");
  });
});

/**
 * Writes `parts` to a fresh TCP connection (20 ms apart) and collects what comes back until the server closes the
 * connection; fails when it is still open after 2 s (the answers must be at once, not at a timeout).
 */
function rawExchange(port: number, parts: string[]): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connectTcp(port, "127.0.0.1");
    let text = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within 2 s; got ${JSON.stringify(text)}`));
    }, 2000);
    s.setEncoding("latin1");
    s.on("data", (d: string) => (text += d));
    s.on("error", () => undefined); // a reset after the answer is fine; `close` follows
    s.on("close", () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    s.on("connect", () => {
      void (async () => {
        for (const p of parts) {
          if (s.destroyed) return;
          s.write(p);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
    });
  });
}
