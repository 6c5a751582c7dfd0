/**
 * A lattice you can put on a network (issue 8 §1–3): a nats-server started by the harness with TLS (certificates made
 * with openssl; client certificates demanded), one account for the lattice with nkey users per role and another
 * account for another tenant (src/testing/nats-secure.ts).
 *
 * - CLI → host → component workers → spawned providers → components → the http-server provider, all with credentials
 *   over mutual TLS: the Rust hello world behind the http-server provider, and http_counter whose
 *   `wasi:keyvalue/atomics.increment` import goes to the kv-memory provider; a remote kv-memory provider (its own
 *   process, its own `provider` user) joins and serves the counter; so does python-kv, spawned (the host's nkey in
 *   host data) and remote (the `provider` user; Ed25519 through libcrypto);
 * - an anonymous client, a client without a client certificate and a client of the other account are refused or see
 *   nothing of the lattice (subjects, KV buckets, events), even when they name them;
 * - the read-only user is refused `link.put` and `config.put` by the server;
 * - no seed or private key appears in any host/provider log line, CLI output or event of the run.
 *
 * Fixtures (`TRELLIS_FIXTURES_DIR`, test/support/components.ts; read in place, the tests that run them skip when they
 * are absent): http_hello_world_rust.wasm and http_counter.wasm from
 * wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e), Apache-2.0.
 */
import { FIXTURES_DIR, fixture, needsFixtures } from "./support/components.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { CtlClient } from "../src/control/client.ts";
import { connectionOptions, connectNats, parseNatsAuth, resolveNatsConnection } from "../src/core/connection.ts";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import type { Logger, LogMeta } from "../src/core/logger.ts";
import { eventWildcard, latticeDataBucket, configDataBucket } from "../src/core/subjects.ts";
import { demoWorkloads } from "../src/demo/stack.ts";
import { Host } from "../src/host/host.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { startSecureTestNats, uniqueLattice, waitFor, type SecureTestNats } from "../src/testing/index.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin", "trellis.mjs");
/**
 * The component tests run both HTTP fixtures; later ones reuse the `counter`, links and logs the first one leaves, so
 * all but the isolation test skip together when the fixtures are absent.
 */
const WITH_FIXTURES = { skip: needsFixtures("http_hello_world_rust.wasm", "http_counter.wasm") };

/** A logger that keeps every record as one JSON line. */
function recordingLogger(lines: string[], bindings: LogMeta = {}): Logger {
  const rec = (level: string) => (msg: string, meta?: LogMeta) => void lines.push(JSON.stringify({ level, msg, ...bindings, ...meta }));
  return { trace: rec("trace"), debug: rec("debug"), info: rec("info"), warn: rec("warn"), error: rec("error"), child: (b) => recordingLogger(lines, { ...bindings, ...b }) };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  return { status: r.status, body: await r.text() };
}

void describe("a lattice on a secured NATS: accounts, nkey users, mutual TLS", () => {
  const lattice = uniqueLattice("sec");
  let s: SecureTestNats;
  let host: Host;
  let admin: CtlClient;
  let upstream: Server;
  let upstreamPort = 0;
  let blobRoot = "";
  let remote: ChildProcess | undefined;
  const logs: string[] = [];
  const outputs: string[] = [];
  const events: string[] = [];

  /** Runs the real `trellis` command with the admin's credentials: flags for some, `TRELLIS_NATS_*` twins for the rest. */
  const trellis = (args: string[], via: "flags" | "env" = "flags") => {
    const a = s.auth("admin");
    const flags = ["--nats-url", s.url, "--lattice", lattice, "--timeout-ms", "10000"];
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
    const pairs: [string, string, string | undefined][] = [
      ["--nats-nkey", "TRELLIS_NATS_NKEY", a.nkeyFile],
      ["--nats-tls-ca", "TRELLIS_NATS_TLS_CA", a.tlsCaFile],
      ["--nats-tls-cert", "TRELLIS_NATS_TLS_CERT", a.tlsCertFile],
      ["--nats-tls-key", "TRELLIS_NATS_TLS_KEY", a.tlsKeyFile],
    ];
    for (const [flag, name, value] of pairs) {
      if (via === "flags") flags.push(flag, value!);
      else env[name] = value;
    }
    return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, ...flags, ...args], { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
        outputs.push(stdout, stderr);
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      });
    });
  };
  const ok = async (args: string[], via: "flags" | "env" = "flags") => {
    const r = await trellis(args, via);
    assert.equal(r.code, 0, `trellis ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  const firstAnswer = (url: string) =>
    waitFor(async () => {
      const r = await get(url);
      return r.status === 503 ? undefined : r;
    }, { timeoutMs: 60_000, intervalMs: 150, message: `${url} to answer` });

  before(async () => {
    s = await startSecureTestNats(lattice, { verifyClients: true });
    host = await Host.create({
      natsUrl: s.url,
      natsAuth: s.auth("host"),
      lattice,
      logger: recordingLogger(logs),
      cacheDir: path.join(tmpdir(), "trellis-test-cache"),
      friendlyName: "secure-host",
      workloads: demoWorkloads(),
      // the fixtures and the Python provider are loaded from files (docs/security.md, "What a host may run")
      allowedPaths: [FIXTURES_DIR, path.join(ROOT, "providers")],
    });
    admin = await CtlClient.connect({ natsUrl: s.url, lattice, natsAuth: s.auth("admin"), timeoutMs: 10_000 });
    admin.nc.subscribe(eventWildcard(lattice), { callback: (_e, m) => void events.push(m.string()) });
    await admin.nc.flush();
    upstream = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>served locally</html>");
    });
    upstreamPort = await getFreePort();
    await new Promise<void>((r) => upstream.listen(upstreamPort, "127.0.0.1", () => r()));
    blobRoot = await mkdtemp(path.join(tmpdir(), "trellis-sec-blobs-"));
  });

  after(async () => {
    if (remote && remote.exitCode === null) {
      remote.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 500));
      if (remote.exitCode === null) remote.kill("SIGKILL");
    }
    await admin?.close();
    await host?.stop();
    upstream?.close();
    await s?.stop();
    if (blobRoot) await rm(blobRoot, { recursive: true, force: true });
  });

  void test("CLI → host → workers → spawned providers → components, with credentials over mutual TLS", WITH_FIXTURES, async () => {
    // the CLI, credentials as flags and as TRELLIS_NATS_* twins
    const hosts = await ok(["--output", "json", "get", "hosts"], "env");
    assert.equal((JSON.parse(hosts.stdout) as { id: string }[])[0]?.id, host.id);
    await ok(["start", "provider", "http-server", "http"]);
    await ok(["start", "provider", "kv-memory", "kv"], "env");
    await ok(["start", "provider", "blobstore-fs", "blobs"]);
    await ok(["start", "provider", "http-client", "http-client"]);
    const helloPort = await getFreePort();
    const counterPort = await getFreePort();
    await ok(["config", "put", "http-hello", `address=127.0.0.1:${helloPort}`]);
    await ok(["config", "put", "http-counter", `address=127.0.0.1:${counterPort}`], "env");
    await ok(["link", "put", "http", "hello", "wasi", "http", "--interface", "incoming-handler", "--link-name", "hello", "--source-config", "http-hello"]);
    await ok(["start", "component", fixture("http_hello_world_rust.wasm"), "hello"]);
    const r = await firstAnswer(`http://127.0.0.1:${helloPort}/`);
    assert.deepEqual(r, { status: 200, body: "Hello from Rust!\n" });

    // http_counter: its keyvalue import calls go from the component worker to the spawned kv-memory provider
    await admin.putConfig("hc-config", { counter_enabled: "true" });
    await admin.putConfig("hc-blobs", { root: blobRoot });
    await admin.putConfig("hc-local", { base_url: `http://127.0.0.1:${upstreamPort}` });
    await admin.putLink({ source_id: "counter", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"] });
    await admin.putLink({ source_id: "counter", target: "blobs", wit_namespace: "wasi", wit_package: "blobstore", interfaces: ["blobstore", "container", "types"], target_config: ["hc-blobs"] });
    await admin.putLink({ source_id: "counter", target: "http-client", wit_namespace: "wasi", wit_package: "http", interfaces: ["outgoing-handler"], target_config: ["hc-local"] });
    await ok(["link", "put", "http", "counter", "wasi", "http", "--interface", "incoming-handler", "--link-name", "counter", "--source-config", "http-counter"], "env");
    await ok(["start", "component", fixture("http_counter.wasm"), "counter", "--config", "hc-config"]);
    const url = `http://127.0.0.1:${counterPort}/`;
    const first = await firstAnswer(url);
    const rest = [await get(url), await get(url)];
    assert.deepEqual([first, ...rest].map((x) => `${x.status} ${x.body}`), ["200 1", "200 2", "200 3"]);
    const inv = await admin.getInventory(host.id);
    assert.deepEqual(inv.providers.map((p) => p.id).sort(), ["blobs", "http", "http-client", "kv"]);
    assert.ok(inv.providers.every((p) => p.status === undefined || p.status === "running"), JSON.stringify(inv.providers));
  });

  void test("a remote provider (SDK, own process) joins with its own `provider` user and serves the component", WITH_FIXTURES, async () => {
    const a = s.auth("provider");
    remote = spawn(process.execPath, [
      path.join(ROOT, "providers/kv-memory/main.ts"),
      "--provider-id", "remote-kv", "--lattice", lattice, "--nats-url", s.url,
      "--nats-nkey", a.nkeyFile!, "--nats-tls-ca", a.tlsCaFile!,
    ], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH, TRELLIS_NATS_TLS_CERT: a.tlsCertFile, TRELLIS_NATS_TLS_KEY: a.tlsKeyFile, TRELLIS_LOG_LEVEL: "debug" },
    });
    remote.stdout?.on("data", (c: Buffer) => outputs.push(c.toString()));
    remote.stderr?.on("data", (c: Buffer) => outputs.push(c.toString()));
    await admin.deleteLink({ source_id: "counter", wit_namespace: "wasi", wit_package: "keyvalue", name: "default" });
    await admin.putLink({ source_id: "counter", target: "remote-kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"] });
    const counter = await waitFor(async () => {
      const r = await get(`http://127.0.0.1:${await counterPortOf(admin)}/`);
      return r.status === 200 && r.body === "1" ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200, message: "the counter to count from 1 on the remote provider" });
    assert.equal(counter.body, "1");
    assert.equal(remote.exitCode, null, "the remote provider runs");
  });

  void test("python-kv (standard library + libcrypto Ed25519): spawned with the host's credentials, and remote with its own user", WITH_FIXTURES, async () => {
    const countsFromOne = async (target: string) => {
      await admin.deleteLink({ source_id: "counter", wit_namespace: "wasi", wit_package: "keyvalue", name: "default" });
      await admin.putLink({ source_id: "counter", target, wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"] });
      const port = await counterPortOf(admin);
      await waitFor(async () => {
        const r = await get(`http://127.0.0.1:${port}/`);
        return r.status === 200 && r.body === "1" ? r : undefined;
      }, { timeoutMs: 30_000, intervalMs: 200, message: `the counter to count from 1 on ${target}` });
      assert.equal((await get(`http://127.0.0.1:${port}/`)).body, "2");
    };
    await ok(["start", "provider", path.join(ROOT, "providers/python-kv/provider.py"), "pykv"]);
    await countsFromOne("pykv");
    const a = s.auth("provider");
    const py = spawn(path.join(ROOT, "providers/python-kv/provider.py"), ["--provider-id", "pykv-remote", "--lattice", lattice, "--nats-url", s.url, "--nats-tls-ca", a.tlsCaFile!], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH, TRELLIS_NATS_NKEY: a.nkeyFile, TRELLIS_NATS_TLS_CERT: a.tlsCertFile, TRELLIS_NATS_TLS_KEY: a.tlsKeyFile, TRELLIS_LOG_LEVEL: "debug" },
    });
    py.stdout?.on("data", (c: Buffer) => outputs.push(c.toString()));
    py.stderr?.on("data", (c: Buffer) => outputs.push(c.toString()));
    try {
      await countsFromOne("pykv-remote");
    } finally {
      py.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 300));
      if (py.exitCode === null) py.kill("SIGKILL");
    }
  });

  void test("an anonymous client, a client without certificate and a client of another account see nothing", async () => {
    const data = await resolveNatsConnection(s.url, parseNatsAuth({ tlsCaFile: s.certs.caFile, tlsCertFile: s.certs.clientCertFile, tlsKeyFile: s.certs.clientKeyFile }));
    await assert.rejects(connect(connectionOptions(data, { timeout: 3000 })), /Authorization Violation/i, "anonymous (with a valid client certificate) is refused");
    const noCert = await resolveNatsConnection(s.url, parseNatsAuth({ nkeyFile: s.nkeyFiles.admin, tlsCaFile: s.certs.caFile }));
    await assert.rejects(connectNats(noCert, { timeout: 3000 }), (e: unknown) => e instanceof TrellisError && e.code === ErrorCode.Lattice, "mutual TLS: no client certificate, no connection");
    await assert.rejects(connect({ servers: s.url.replace(/^tls:/, "nats:"), timeout: 3000 }), "plain TCP without the CA is refused");

    const other = await CtlClient.connect({ natsUrl: s.url, lattice, natsAuth: s.auth("other"), timeoutMs: 1000 });
    try {
      assert.deepEqual(await other.getHosts(1000), [], "no host answers host.ping in another account");
      await assert.rejects(other.putLink({ source_id: "x", target: "y", wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"] }), (e: unknown) => e instanceof TrellisError && e.code === ErrorCode.NoResponders);
      await assert.rejects(other.getLinks(), (e: unknown) => e instanceof TrellisError && e.code === ErrorCode.NoResponders);
      const seen: string[] = [];
      other.nc.subscribe(">", { callback: (_e, m) => void seen.push(m.subject) });
      other.nc.subscribe(eventWildcard(lattice), { callback: (_e, m) => void seen.push(m.subject) });
      await other.nc.flush();
      // the lattice is busy meanwhile: config writes, events
      await admin.putConfig("busy", { k: "v" });
      await admin.deleteConfig("busy");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(seen.filter((x) => !x.startsWith("_INBOX.")), [], "the other account received none of the lattice's subjects");
      const jsm = await jetstreamManager(other.nc);
      const streams: string[] = [];
      for await (const n of jsm.streams.names()) streams.push(n);
      for (const bucket of [latticeDataBucket(lattice), configDataBucket(lattice)]) {
        assert.ok(!streams.includes(`KV_${bucket}`), `the other account does not see KV bucket ${bucket}`);
        await assert.rejects(jsm.streams.info(`KV_${bucket}`), /not found/i, `naming ${bucket} does not reach it`);
      }
    } finally {
      await other.close();
    }
  });

  void test("the read-only user is refused link.put and config.put by the server, and may read", WITH_FIXTURES, async () => {
    const reader = await CtlClient.connect({ natsUrl: s.url, lattice, natsAuth: s.auth("reader"), timeoutMs: 2000 });
    try {
      assert.equal((await reader.getHosts(1000)).length, 1, "the reader may ping hosts");
      assert.ok((await reader.getLinks()).length > 0, "the reader may read links");
      const link = { source_id: "intruder", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] };
      await assert.rejects(reader.putLink(link), (e: unknown) => e instanceof TrellisError && e.code === ErrorCode.NatsPermissionDenied && /Permissions Violation/.test(e.message));
      await assert.rejects(reader.putConfig("intruder", { a: "b" }), (e: unknown) => e instanceof TrellisError && e.code === ErrorCode.NatsPermissionDenied);
      await assert.rejects(reader.nc.request("$JS.API.STREAM.NAMES", undefined, { timeout: 1000 }), /Permissions Violation/i, "no JetStream API for the reader");
      assert.ok(!(await admin.getLinks()).some((l) => l.source_id === "intruder"), "no host saw the refused link.put");
      const cli = await trellis(["--nats-nkey", s.nkeyFiles.reader, "--nats-tls-ca", s.certs.caFile, "--nats-tls-cert", s.certs.clientCertFile, "--nats-tls-key", s.certs.clientKeyFile, "link", "put", "intruder", "kv", "wasi", "keyvalue", "--interface", "store"], "env");
      assert.notEqual(cli.code, 0);
      assert.match(cli.stderr, /Permissions Violation/);
    } finally {
      await reader.close();
    }
  });

  void test("no seed, private key or token appears in any log line, CLI output or event of the run", WITH_FIXTURES, async () => {
    const keyBodies: string[] = [];
    for (const f of [s.certs.clientKeyFile, s.certs.serverKeyFile, s.certs.caKeyFile]) {
      const pem = await readFile(f, "utf8");
      keyBodies.push(...pem.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----")));
    }
    assert.ok(logs.length > 50 && events.length > 10 && outputs.length > 10, `the run was captured (${logs.length} log lines, ${events.length} events, ${outputs.length} outputs)`);
    assert.ok(logs.some((l) => l.includes("provider process started")), "provider logs were captured");
    const haystacks = { logs: logs.join("\n"), events: events.join("\n"), outputs: outputs.join("\n") };
    for (const secret of [...s.secrets, ...keyBodies]) {
      for (const [where, text] of Object.entries(haystacks)) {
        assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 4)}…) appears in ${where}`);
      }
    }
  });
});

/** The port of the `counter` link's HTTP listener, read back from its config. */
async function counterPortOf(admin: CtlClient): Promise<number> {
  const cfg = await admin.getConfig("http-counter");
  return Number(String(cfg?.["address"]).split(":")[1]);
}
