/**
 * `trellis up`: starts a nats-server (JetStream + WebSocket) when nothing answers at a loopback URL, stops it on
 * exit; `--detached` and `trellis down` (issue 2, item 2).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { getFreePort, isNatsReachable } from "../src/lattice/nats-server.ts";
import { CtlClient } from "../src/control/client.ts";
import { waitFor } from "../src/testing/index.ts";

const run = promisify(execFile);
const ROOT = new URL("..", import.meta.url).pathname;
const BIN = join(ROOT, "bin/trellis.mjs");

test("trellis up starts nats-server with JetStream and WebSocket, and stops it on SIGINT", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "trellis-up-"));
  const port = await getFreePort();
  const url = `nats://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [BIN, "--nats-url", url, "up", "--nats-websocket-port", "0", "--log-level", "warn"], {
    env: { ...process.env, TRELLIS_DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  try {
    await waitFor(() => /is up on lattice default/.test(out), { timeoutMs: 20_000, message: `host up; output: ${out}` });
    assert.match(out, /started nats-server .*JetStream in .*nats.*WebSocket ws:\/\/127\.0\.0\.1:\d+/);
    assert.ok((await readdir(join(dataDir, "nats"))).length > 0, "JetStream store under the data dir");
    const client = await CtlClient.connect({ natsUrl: url });
    assert.equal((await client.getHosts()).length, 1);
    await client.close();
    child.kill("SIGINT");
    await new Promise((r) => child.once("exit", r));
    assert.equal(await isNatsReachable(url, 500), false, "the nats-server it started is stopped");
  } finally {
    child.kill("SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("trellis up --detached runs in the background; trellis down stops it; --output json", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "trellis-up-"));
  const port = await getFreePort();
  const url = `nats://127.0.0.1:${port}`;
  const env = { ...process.env, TRELLIS_DATA_DIR: dataDir, TRELLIS_NATS_URL: url, TRELLIS_NATS_WEBSOCKET_PORT: "0", TRELLIS_LABEL_zone: "test" };
  try {
    const up = await run(process.execPath, [BIN, "--output", "json", "up", "--detached", "--label", "tier=gold"], { env });
    const state = JSON.parse(up.stdout) as { host_id: string };
    assert.match(state.host_id, /^N/);
    const hosts = JSON.parse((await run(process.execPath, [BIN, "--output", "json", "get", "hosts"], { env })).stdout) as { id: string; labels: Record<string, string> }[];
    assert.deepEqual(hosts.map((h) => h.id), [state.host_id]);
    assert.equal(hosts[0]?.labels.zone, "test", "TRELLIS_LABEL_zone");
    assert.equal(hosts[0]?.labels.tier, "gold", "--label");
    const down = await run(process.execPath, [BIN, "down"], { env });
    assert.match(down.stdout, /stopped/);
    await waitFor(async () => !(await isNatsReachable(url, 300)), { timeoutMs: 10_000, message: "nats-server stopped" });
  } finally {
    await run(process.execPath, [BIN, "down"], { env }).catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("trellis up with no nats-server anywhere says how to install it", async () => {
  const port = await getFreePort();
  await assert.rejects(
    run(process.execPath, [BIN, "--nats-url", `nats://127.0.0.1:${port}`, "up"], {
      env: { ...process.env, NATS_SERVER_BIN: "/nonexistent/nats-server", PATH: "/nonexistent" },
    }),
    (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /error: .*nats-server is not installed.*apt-get install nats-server/);
      return true;
    },
  );
});
