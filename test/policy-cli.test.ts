/**
 * `trellis up` flags and their `TRELLIS_*` twins for what a host may run (docs/security.md): `--allowed-path` /
 * `TRELLIS_ALLOWED_PATH` (a path list; a flag replaces it), `--allow-file-load` / `TRELLIS_ALLOW_FILE_LOAD`,
 * `--policy-topic` / `TRELLIS_POLICY_TOPIC`, `--policy-timeout-ms` / `TRELLIS_POLICY_TIMEOUT_MS`; bad values are refused
 * at start. A real `trellis up` process against a test nats-server.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { CtlClient } from "../src/control/client.ts";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { startTestNats, uniqueLattice, waitFor, type TestNats } from "../src/testing/index.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = path.join(ROOT, "bin/trellis.mjs");
const run = promisify(execFile);

let nats: TestNats;
let base: string;
let a: string;
let b: string;
before(async () => {
  nats = await startTestNats();
  base = await mkdtemp(path.join(tmpdir(), "trellis-policy-cli-"));
  a = path.join(base, "a");
  b = path.join(base, "b");
  for (const d of [a, b]) {
    await mkdir(d);
    await writeFile(path.join(d, "p.sh"), "#!/bin/sh\nexec sleep 30\n");
    await chmod(path.join(d, "p.sh"), 0o755);
  }
});
after(async () => {
  await nats.stop();
  await rm(base, { recursive: true, force: true });
});

/** Runs `trellis up` with `args` and `env` on a fresh lattice; returns a client and the host id; `stop` ends it. */
async function up(args: string[], env: Record<string, string>) {
  const lattice = uniqueLattice("cli");
  const child = spawn(process.execPath, [BIN, "--nats-url", nats.url, "--lattice", lattice, "--output", "json", "up", "--no-nats-autostart", "--log-level", "warn", ...args], {
    env: { ...process.env, TRELLIS_DATA_DIR: path.join(base, "data"), TRELLIS_CACHE_DIR: path.join(base, "cache"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  let hostId: string;
  try {
    hostId = await waitFor(() => /"host_id":\s*"(N[A-Z0-9]+)"/.exec(out)?.[1], { timeoutMs: 20_000, message: "host up" });
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`trellis up did not come up; output: ${out}`, { cause: err });
  }
  const client = await CtlClient.connect({ natsUrl: nats.url, lattice, timeoutMs: 5000 });
  return {
    client,
    hostId,
    stop: async () => {
      await client.close();
      child.kill("SIGTERM");
      await Promise.race([new Promise((r) => child.once("exit", r)), new Promise((r) => setTimeout(r, 5000))]);
      child.kill("SIGKILL");
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<TrellisError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TrellisError, String(err));
    return err;
  }
  assert.fail("expected a refusal");
}

test("TRELLIS_ALLOWED_PATH is a path list; --allowed-path replaces it; TRELLIS_POLICY_TOPIC and TRELLIS_POLICY_TIMEOUT_MS", async () => {
  const nc = (await CtlClient.connect({ natsUrl: nats.url })).nc;
  const asked: string[] = [];
  nc.subscribe("cli.policy", { callback: (_e, m) => void asked.push((m.json<{ kind: string }>()).kind) }); // never answers
  await nc.flush();
  const env = { TRELLIS_ALLOWED_PATH: `${a}${path.delimiter}${b}`, TRELLIS_POLICY_TOPIC: "cli.policy", TRELLIS_POLICY_TIMEOUT_MS: "200" };
  const h1 = await up([], env);
  try {
    // both directories are allowed by the variable; the policy service (env twin) is asked and, silent, denies
    for (const d of [a, b]) {
      const err = await refusal(h1.client.startProvider(h1.hostId, { provider_id: "p", provider_ref: path.join(d, "p.sh") }));
      assert.equal(err.code, ErrorCode.PolicyDenied, err.message);
      assert.match(err.message, /within 200 ms/);
    }
    assert.deepEqual(asked, ["startProvider", "startProvider"]);
  } finally {
    await h1.stop();
  }
  const h2 = await up(["--allowed-path", a], { TRELLIS_ALLOWED_PATH: b });
  try {
    const err = await refusal(h2.client.startProvider(h2.hostId, { provider_id: "p", provider_ref: path.join(b, "p.sh") }));
    assert.equal(err.code, ErrorCode.LoadNotAllowed);
    assert.match(err.message, /--allowed-path/);
    assert.equal(await h2.client.startProvider(h2.hostId, { provider_id: "p", provider_ref: path.join(a, "p.sh") }), "successfully started provider");
    await h2.client.stopProvider(h2.hostId, "p");
  } finally {
    await h2.stop();
  }
  await nc.close();
});

test("TRELLIS_ALLOW_FILE_LOAD=true allows any path; bad values are refused at start naming the variable or flag", async () => {
  const h = await up([], { TRELLIS_ALLOW_FILE_LOAD: "true" });
  try {
    assert.equal(await h.client.startProvider(h.hostId, { provider_id: "p", provider_ref: path.join(b, "p.sh") }), "successfully started provider");
    await h.client.stopProvider(h.hostId, "p");
  } finally {
    await h.stop();
  }
  const bad = async (args: string[], env: Record<string, string>, re: RegExp) => {
    const r = await run(process.execPath, [BIN, "--nats-url", nats.url, "up", "--no-nats-autostart", ...args], { env: { ...process.env, TRELLIS_DATA_DIR: path.join(base, "data"), ...env } }).then(
      () => assert.fail("trellis up should have failed"),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, re);
  };
  await bad([], { TRELLIS_ALLOW_FILE_LOAD: "maybe" }, /TRELLIS_ALLOW_FILE_LOAD must be true or false/);
  await bad(["--policy-topic", "bad topic.>"], {}, /policy topic .* is not a valid NATS subject/);
  await bad(["--policy-changes-topic", "x.changes"], {}, /requires a policy topic/);
});
