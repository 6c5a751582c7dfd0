/**
 * `trellis up`'s own nats-server (issue 8 §2–3): loopback only; WebSocket off unless `--nats-websocket-port`; when the
 * host has credentials the started server demands them on the client and the WebSocket listener; and the secure
 * set-up in one command — `trellis lattice secure init` writes an account with nkey users per role, `trellis up
 * --nats-server-accounts` starts a server with it, and the read-only user is refused `link.put` by the server; a
 * provider user narrowed to one provider id runs that provider and may not subscribe to another target's calls.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { wsconnect } from "@nats-io/nats-core";
import { getFreePort, isNatsReachable } from "../src/lattice/nats-server.ts";
import { connectNats, resolveNatsConnection } from "../src/core/connection.ts";
import { waitFor } from "../src/testing/index.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = join(ROOT, "bin/trellis.mjs");

function trellis(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Starts `trellis up` in the foreground and waits until its host is up; returns the process and its output so far. */
async function up(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  await waitFor(() => /is up on lattice/.test(out) || child.exitCode !== null, { timeoutMs: 30_000, message: "trellis up" });
  assert.match(out, /is up on lattice/, out);
  return { child, out: () => out };
}

async function stopUp(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill("SIGINT");
  const exited = new Promise((r) => child.once("exit", r));
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function externalAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
}

test("trellis up's nats-server: loopback only, no WebSocket unless asked for", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "trellis-up-sec-"));
  const port = await getFreePort();
  const env: NodeJS.ProcessEnv = { ...process.env, TRELLIS_DATA_DIR: dataDir, TRELLIS_NATS_URL: `nats://127.0.0.1:${port}` };
  delete env.TRELLIS_NATS_WEBSOCKET_PORT;
  const { child, out } = await up(["up", "--log-level", "warn"], env);
  try {
    assert.match(out(), /started nats-server .*loopback only, no credentials.*WebSocket off/);
    const ext = externalAddress();
    if (ext) assert.equal(await isNatsReachable(`nats://${ext}:${port}`, 1000), false, `not reachable on ${ext}`);
  } finally {
    await stopUp(child);
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("with a user and password, the started server demands them on the client and the WebSocket listener", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "trellis-up-sec-"));
  const port = await getFreePort();
  const wsPort = await getFreePort();
  const password = `pw-${Math.random().toString(36).slice(2)}-secret`;
  const env = { ...process.env, TRELLIS_DATA_DIR: dataDir, TRELLIS_NATS_URL: `nats://127.0.0.1:${port}`, TRELLIS_NATS_USER: "ops", TRELLIS_NATS_PASSWORD: password };
  const { child, out } = await up(["up", "--log-level", "debug", "--nats-websocket-port", String(wsPort)], env);
  try {
    assert.match(out(), /credentials required.*WebSocket ws:\/\/127\.0\.0\.1:\d+/);
    await assert.rejects(connect({ servers: `127.0.0.1:${port}`, timeout: 3000 }), /Authorization Violation/i, "anonymous client refused");
    await assert.rejects(wsconnect({ servers: `ws://127.0.0.1:${wsPort}`, timeout: 3000 }), /Authorization Violation/i, "anonymous WebSocket refused");
    await assert.rejects(wsconnect({ servers: `ws://127.0.0.1:${wsPort}`, user: "ops", pass: "wrong", timeout: 3000 }), /Authorization Violation/i);
    const ws = await wsconnect({ servers: `ws://127.0.0.1:${wsPort}`, user: "ops", pass: password, timeout: 3000 });
    await ws.close();
    const hosts = await trellis(["--output", "json", "get", "hosts"], env);
    assert.equal(hosts.code, 0, hosts.stderr);
    assert.equal((JSON.parse(hosts.stdout) as unknown[]).length, 1);
    const refused = await trellis(["get", "hosts"], { ...env, TRELLIS_NATS_PASSWORD: "wrong-one" });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+ \(user ops\): .*Authorization Violation/i);
    const viaUrl = await trellis(["--nats-url", `nats://ops:${password}@127.0.0.1:${port}`, "get", "hosts"], { ...env, TRELLIS_NATS_USER: "", TRELLIS_NATS_PASSWORD: "" });
    assert.equal(viaUrl.code, 0, `credentials in the URL: ${viaUrl.stderr}`);
    await stopUp(child);
    assert.ok(!out().includes(password), "the password is in no log line of trellis up");
    assert.ok(!refused.stderr.includes("wrong-one") && !viaUrl.stdout.includes(password) && !viaUrl.stderr.includes(password));
  } finally {
    await stopUp(child);
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("the secure set-up in one command: lattice secure init, then up with the account; the reader is refused link.put", async () => {
  const dir = await mkdtemp(join(tmpdir(), "trellis-secure-init-"));
  const port = await getFreePort();
  const lattice = "prod";
  const base = { ...process.env, TRELLIS_DATA_DIR: join(dir, "data"), TRELLIS_NATS_URL: `nats://127.0.0.1:${port}`, TRELLIS_LATTICE: lattice };
  const init = await trellis(["--output", "json", "lattice", "secure", "init", join(dir, "creds"), "--provider-id", "kv"], base);
  assert.equal(init.code, 0, init.stderr);
  const files = JSON.parse(init.stdout) as { accountFile: string; serverConfigFile: string; nkeyFiles: Record<string, string>; providerNkeyFiles: Record<string, string> };
  assert.equal((await stat(files.nkeyFiles.host!)).mode & 0o777, 0o600, "seed files are private");
  assert.match(await readFile(files.accountFile, "utf8"), /"prod": \{/);
  const { child, out } = await up(["up", "--log-level", "warn", "--nats-server-accounts", files.accountFile], { ...base, TRELLIS_NATS_NKEY: files.nkeyFiles.host });
  try {
    assert.match(out(), /credentials required/);
    await assert.rejects(connect({ servers: `127.0.0.1:${port}`, timeout: 3000 }), /Authorization Violation/i, "anonymous client refused");
    const asReader = { ...base, TRELLIS_NATS_NKEY: files.nkeyFiles.reader };
    const hosts = await trellis(["get", "hosts"], asReader);
    assert.equal(hosts.code, 0, hosts.stderr);
    const put = await trellis(["link", "put", "a", "b", "wasi", "keyvalue", "--interface", "store"], asReader);
    assert.notEqual(put.code, 0);
    assert.match(put.stderr, /Permissions Violation for Publish to "wasmbus\.ctl\.v1\.prod\.link\.put"/);
    const asAdmin = { ...base, TRELLIS_NATS_NKEY: files.nkeyFiles.admin };
    const adminPut = await trellis(["link", "put", "a", "b", "wasi", "keyvalue", "--interface", "store"], asAdmin);
    assert.equal(adminPut.code, 0, adminPut.stderr);

    // a provider user narrowed to `kv`: a real kv-memory joins with it; it cannot subscribe to another target's calls
    const kvSeed = files.providerNkeyFiles.kv!;
    const kv = spawn(process.execPath, [join(ROOT, "providers/kv-memory/main.ts"), "--provider-id", "kv", "--nats-nkey", kvSeed], { env: { ...base }, stdio: ["ignore", "pipe", "pipe"] });
    let kvOut = "";
    kv.stderr?.on("data", (d: Buffer) => (kvOut += d.toString()));
    kv.stdout?.on("data", (d: Buffer) => (kvOut += d.toString()));
    try {
      await waitFor(() => /loaded links with link\.get/.test(kvOut), { timeoutMs: 20_000, message: `kv-memory up with the narrowed user: ${kvOut}` });
      const nc = await connectNats(await resolveNatsConnection(`nats://127.0.0.1:${port}`, { nkeyFile: kvSeed }));
      const other = nc.subscribe(`trellis.inv.v1.${lattice}.other.>`);
      const closed = await other.closed;
      assert.match(String(closed), /Permissions Violation for Subscription to "trellis\.inv\.v1\.prod\.other\.>"/);
      await nc.close();
    } finally {
      kv.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 300));
      if (kv.exitCode === null) kv.kill("SIGKILL");
    }
    const seeds = await Promise.all([...Object.values(files.nkeyFiles), kvSeed].map(async (f) => (await readFile(f, "utf8")).trim()));
    for (const seed of seeds) assert.ok(![out(), hosts.stdout, hosts.stderr, put.stderr, adminPut.stdout, init.stdout].some((t) => t.includes(seed)), "no seed in any output");
  } finally {
    await stopUp(child);
    await rm(dir, { recursive: true, force: true });
  }
});
