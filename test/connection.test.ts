/**
 * The connection module (src/core/connection.ts) and the SDK's copy (packages/provider-sdk/src/connection.ts):
 * validation of auth options, URL credentials and redaction, and a `.creds` (JWT) user against a real nats-server in
 * operator mode (memory resolver; JWTs made with @nats-io/jwt) — host, a spawned provider (JWT + seed in host data)
 * and the control client all connect with it; the JWT with a seed that does not match it is refused.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser } from "@nats-io/nkeys";
import { CtlClient } from "../src/control/client.ts";
import { describeNatsAuth, parseCredsText, parseNatsAuth, redactSecrets, redactUrl, resolveNatsConnection } from "../src/core/connection.ts";
import { ErrorCode, InvalidArgumentError, TrellisError } from "../src/core/errors.ts";
import type { Logger, LogMeta } from "../src/core/logger.ts";
import { Host } from "../src/host/host.ts";
import { providerSupervisor } from "../src/provider/supervisor.ts";
import { startNatsServer } from "../src/lattice/nats-server.ts";
import { uniqueLattice, waitFor } from "../src/testing/index.ts";
import { providerConnectionOptions, remoteConnectionFields } from "../packages/provider-sdk/src/connection.ts";

const dec = new TextDecoder();
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const execFileP = promisify(execFile);

void describe("connection options", () => {
  void test("auth options are validated once, naming the bad field and never echoing a value", () => {
    assert.deepEqual(parseNatsAuth({}), {});
    assert.deepEqual(parseNatsAuth({ user: "a", password: "b", tlsCaFile: "/ca.pem" }), { user: "a", password: "b", tlsCaFile: "/ca.pem" });
    const bad: [unknown, RegExp][] = [
      [{ user: "a" }, /natsAuth\.password: user and password go together/],
      [{ token: "t0k3n-value", nkeyFile: "/k" }, /give one way to authenticate/],
      [{ tlsCertFile: "/c.pem" }, /tlsKeyFile: tlsCertFile and tlsKeyFile go together/],
      [{ passwd: "x" }, /natsAuth/],
      [{ credsFile: "" }, /credsFile/],
    ];
    for (const [input, re] of bad) {
      assert.throws(() => parseNatsAuth(input), (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message) && !e.message.includes("t0k3n-value"));
    }
  });

  void test("credentials in URLs are taken out of them and redacted everywhere", async () => {
    assert.equal(redactUrl("nats://alice:s3cret@h1:4222,tls://tok@h2:4223,h3:4222"), "nats://***@h1:4222,tls://***@h2:4223,h3:4222");
    const d = await resolveNatsConnection("nats://alice:s%40cret@127.0.0.1:4222, tls://127.0.0.1:4223");
    assert.deepEqual(d, { servers: ["nats://127.0.0.1:4222", "tls://127.0.0.1:4223"], tls: true, user: "alice", pass: "s@cret" });
    assert.equal(describeNatsAuth(d), "user alice, TLS");
    assert.equal(redactSecrets("failed for s@cret at nats://alice:s@cret@h", d), "failed for *** at nats://***@h");
    await assert.rejects(resolveNatsConnection("nats://tok@h:1", parseNatsAuth({ token: "x" })), /holds credentials and other credentials/);
    await assert.rejects(resolveNatsConnection("nats://h:1", parseNatsAuth({ nkeyFile: "/nonexistent/key.nk" })), /cannot read nkeyFile \/nonexistent\/key\.nk: ENOENT/);
    // the SDK's copy does the same for remote providers
    const f = remoteConnectionFields("tls://bob:pw@127.0.0.1:1", {});
    assert.deepEqual(f, { lattice_rpc_url: "tls://127.0.0.1:1", lattice_rpc_user_jwt: "", lattice_rpc_user_seed: "", lattice_rpc_user: "bob", lattice_rpc_password: "pw" });
    assert.deepEqual(providerConnectionOptions(f).tls, {}, "tls:// demands TLS");
    assert.throws(() => remoteConnectionFields("nats://h:1", { user: "u" }), /user and password go together/);
  });

  void test("a password in the URL: the host connects, and host.ping replies and logs show the URL redacted", async () => {
    const password = "url-pass-0123456789";
    const server = await startNatsServer({ extraConfig: ["authorization {", "  user: ops", `  password: ${JSON.stringify(password)}`, "}"] });
    const lattice = uniqueLattice("urlpw");
    const lines: string[] = [];
    const rec = (b: LogMeta): Logger => {
      const r = (msg: string, meta?: LogMeta) => void lines.push(JSON.stringify({ msg, ...b, ...meta }));
      return { trace: r, debug: r, info: r, warn: r, error: r, child: (c) => rec({ ...b, ...c }) };
    };
    const url = server.url.replace("nats://", `nats://ops:${password}@`);
    const host = await Host.create({ natsUrl: url, lattice, logger: rec({}), cacheDir: path.join(tmpdir(), "trellis-test-cache"), workloads: {} });
    const client = await CtlClient.connect({ natsUrl: url, lattice });
    try {
      const [info] = await client.getHosts();
      assert.equal(info?.ctl_host, server.url.replace("nats://", "nats://***@"));
      assert.ok(!JSON.stringify(info).includes(password), "no password in the host.ping reply");
      assert.ok(lines.some((l) => l.includes("host started")) && !lines.join("\n").includes(password), "no password in the logs");
      await assert.rejects(CtlClient.connect({ natsUrl: server.url.replace("nats://", "nats://ops:wrong-password@"), lattice, timeoutMs: 3000 }), (e: unknown) => e instanceof TrellisError && /Authorization Violation/i.test(e.message) && !e.message.includes("wrong-password"));
    } finally {
      await client.close();
      await host.stop();
      await server.stop();
    }
  });

  void test("python-kv's client: user/password, token and credentials in the URL; wrong ones refused", async () => {
    const script = (url: string, auth: Record<string, string>) =>
      `import sys; sys.path.insert(0, ${JSON.stringify(path.join(ROOT, "providers/python-kv"))}); import provider\n` +
      `try:\n  nc = provider.Nats(${JSON.stringify(url)}, "t", ${JSON.stringify(auth)}); nc.flush(); print("connected")\n` +
      `except Exception as e:\n  print("refused", type(e).__name__)`;
    const py = (url: string, auth: Record<string, string>) => execFileP("python3", ["-c", script(url, auth)], { timeout: 20_000 }).then((r) => r.stdout.trim());
    const withUser = await startNatsServer({ extraConfig: ["authorization {", "  user: ops", '  password: "py-pass"', "}"] });
    const withToken = await startNatsServer({ extraConfig: ["authorization {", '  token: "py-token-123"', "}"] });
    try {
      assert.equal(await py(withUser.url, { user: "ops", password: "py-pass" }), "connected");
      assert.equal(await py(withUser.url.replace("nats://", "nats://ops:py-pass@"), {}), "connected");
      assert.match(await py(withUser.url, { user: "ops", password: "nope" }), /^refused/);
      assert.match(await py(withUser.url, {}), /^refused/);
      assert.equal(await py(withToken.url, { token: "py-token-123" }), "connected");
      assert.equal(await py(withToken.url.replace("nats://", "nats://py-token-123@"), {}), "connected");
      assert.match(await py(withToken.url, { token: "other" }), /^refused/);
    } finally {
      await withUser.stop();
      await withToken.stop();
    }
  });

  void test("a .creds (JWT) user: host, spawned provider and control client connect; a JWT with another user's seed is refused", async () => {
    const operator = createOperator();
    const account = createAccount();
    const user = createUser();
    const sys = createAccount();
    const operatorJwt = await encodeOperator("trellis-test", operator, { system_account: sys.getPublicKey() });
    const sysJwt = await encodeAccount("SYS", sys, {}, { signer: operator });
    const accountJwt = await encodeAccount("LATTICE", account, { limits: { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1, wildcards: true, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } } as never, { signer: operator });
    const userJwt = await encodeUser("host", user, account);
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-creds-"));
    const credsFile = path.join(dir, "host.creds");
    const credsText = dec.decode(fmtCreds(userJwt, user));
    await writeFile(credsFile, credsText, { mode: 0o600 });
    const seed = dec.decode(user.getSeed());
    assert.deepEqual(parseCredsText(credsText), { jwt: userJwt, seed });
    const rogue = path.join(dir, "rogue.creds");
    const rogueUser = createUser();
    // the right JWT with somebody else's seed: the server's nonce check fails
    await writeFile(rogue, credsText.replace(seed, dec.decode(rogueUser.getSeed())));
    const server = await startNatsServer({
      extraConfig: [`operator: ${JSON.stringify(operatorJwt)}`, "resolver: MEMORY", `resolver_preload: { ${account.getPublicKey()}: ${JSON.stringify(accountJwt)}, ${sys.getPublicKey()}: ${JSON.stringify(sysJwt)} }`],
    });
    const lattice = uniqueLattice("creds");
    const lines: string[] = [];
    const rec = (b: LogMeta): Logger => {
      const r = (msg: string, meta?: LogMeta) => void lines.push(JSON.stringify({ msg, ...b, ...meta }));
      return { trace: r, debug: r, info: r, warn: r, error: r, child: (c) => rec({ ...b, ...c }) };
    };
    let host: Host | undefined;
    let client: CtlClient | undefined;
    try {
      await assert.rejects(CtlClient.connect({ natsUrl: server.url, lattice, timeoutMs: 3000 }), (e: unknown) => e instanceof TrellisError && e.code === ErrorCode.Lattice);
      await assert.rejects(CtlClient.connect({ natsUrl: server.url, lattice, natsAuth: { credsFile: rogue }, timeoutMs: 3000 }), /Authorization Violation/i);
      host = await Host.create({ natsUrl: server.url, lattice, natsAuth: { credsFile }, logger: rec({}), cacheDir: path.join(dir, "cache"), workloads: { providers: providerSupervisor({ firstHealthCheckMs: 100 }) } });
      client = await CtlClient.connect({ natsUrl: server.url, lattice, natsAuth: { credsFile } });
      assert.equal((await client.getHosts()).length, 1);
      await client.startProvider(host.id, { provider_id: "kv", provider_ref: "kv-memory" });
      await waitFor(async () => (await client!.getInventory(host!.id)).providers.some((p) => p.id === "kv" && p.status === "running"), { timeoutMs: 20_000, message: "kv-memory running with the host's JWT" });
      assert.ok(lines.some((l) => l.includes("provider process started")), lines.join("\n"));
      for (const secret of [seed, userJwt]) assert.ok(!lines.join("\n").includes(secret), "no seed or JWT in the logs");
      assert.match(lines.join("\n"), /"nats_auth":"user JWT"/);
      assert.equal(describeNatsAuth(await resolveNatsConnection(server.url, { credsFile })), "user JWT");
    } finally {
      await client?.close();
      await host?.stop();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

