/**
 * Chaos tests of the resident reconciler (ADR 0012, docs/reliability.md): hosts are `trellis up` child processes on a
 * loopback nats-server; a host is killed with SIGKILL and the app must serve again from another host, with nobody
 * re-running `trellis app deploy`.
 *
 * - kill -9 of the host running an app's only component instance: the reconciler notices the loss (liveness beats,
 *   probe), publishes `host_stopped` for it and re-places the instance; the time from the kill to the first good HTTP
 *   answer is reported (test diagnostics; docs/reliability.md);
 * - kill -9 of the reconciler's own host: another host takes the lease over, and a later host failure is still healed.
 *
 * Every process started here (nats-server, hosts, the providers the hosts spawn) is stopped by pid at the end.
 * Fixture (`TRELLIS_FIXTURES_DIR`, test/support/components.ts; read in place, never copied): http_hello_world_rust.wasm, Apache-2.0, from
 * wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e).
 */
import { fixture, needsFixtures } from "./support/components.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { CtlClient } from "../src/control/client.ts";
import type { CloudEvent } from "../src/core/events.ts";
import { eventSubject } from "../src/core/subjects.ts";
import { getAppStatus } from "../src/app/index.ts";
import { readLease } from "../src/app/reconciler/index.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { startTestNats, uniqueLattice, waitFor, type TestNats } from "../src/testing/index.ts";

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin/trellis.mjs");
const HELLO = fixture("http_hello_world_rust.wasm");
/**
 * Environment every host gets: the file-load allow-list (`--allowed-path`'s env twin, policy work) lets hosts load
 * `HELLO` from its directory; a host without that admission policy ignores the variable.
 */
const HOST_POLICY_ENV: Record<string, string> = { TRELLIS_ALLOWED_PATH: path.dirname(HELLO) };

/** A `trellis up` child process. */
interface HostProc {
  name: string;
  id: string;
  proc: ChildProcess;
  pid: number;
  output: string[];
}

function manifest(port: number): string {
  return `apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: chaos
  annotations:
    version: v1
spec:
  components:
    - name: hello
      type: component
      properties:
        image: ${HELLO}
        id: chaos-hello
      traits:
        - type: spreadscaler
          properties:
            instances: 1
            spread:
              - name: workers
                requirements: { role: worker }
    - name: http
      type: capability
      properties:
        image: http-server
        id: chaos-http
      traits:
        - type: spreadscaler
          properties:
            instances: 1
            spread:
              - name: edge
                requirements: { role: edge }
        - type: link
          properties:
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            target:
              name: hello
            source:
              config:
                - name: listen
                  properties:
                    address: 127.0.0.1:${port}
`;
}

/** Pids of every live descendant of `pid` (from /proc). */
async function descendants(pid: number): Promise<number[]> {
  const parent = new Map<number, number>();
  for (const d of await readdir("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = await readFile(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(d), ppid);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) if (pp === p) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function hello(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return r.status === 200 && (await r.text()) === "Hello from Rust!\n";
  } catch {
    return false;
  }
}

void describe("chaos: the resident reconciler heals the lattice", { timeout: 240_000, skip: needsFixtures("http_hello_world_rust.wasm") }, () => {
  let nats: TestNats;
  let dataDir: string;
  let cacheDir: string;
  let nc: NatsConnection;
  const hosts: HostProc[] = [];
  /** Every pid seen under a host, stopped at the end. */
  const spawned = new Set<number>();

  const startHost = async (lattice: string, name: string, labels: Record<string, string>, extra: { args?: string[]; env?: Record<string, string> } = {}): Promise<HostProc> => {
    const args = [BIN, "--nats-url", nats.url, "--lattice", lattice, "up", "--no-nats-autostart", "--friendly-name", name, "--cache-dir", cacheDir, ...(extra.args ?? [])];
    args.push("--log-level", "warn", "--component-max-workers", "1", "--heartbeat-interval-ms", "30000");
    for (const [k, v] of Object.entries(labels)) args.push("--label", `${k}=${v}`);
    const proc = spawn(process.execPath, args, { env: { ...process.env, TRELLIS_DATA_DIR: dataDir, ...HOST_POLICY_ENV, ...extra.env }, stdio: ["ignore", "pipe", "pipe"] });
    const output: string[] = [];
    const keep = (d: Buffer) => {
      output.push(...d.toString().split("\n").filter(Boolean));
      if (output.length > 200) output.splice(0, output.length - 200);
    };
    proc.stdout.on("data", keep);
    proc.stderr.on("data", keep);
    const pid = proc.pid;
    assert.ok(pid, "host spawned");
    spawned.add(pid);
    const h: HostProc = { name, id: "", proc, pid, output };
    hosts.push(h);
    const line = await waitFor(() => output.find((l) => / is up on lattice /.test(l)), { timeoutMs: 60_000, intervalMs: 50, message: `host ${name} up; output: ${output.join("\n")}` });
    h.id = /host (N[A-Z0-9]+) /.exec(line)?.[1] ?? "";
    assert.match(h.id, /^N/);
    return h;
  };

  const kill9 = async (h: HostProc): Promise<number> => {
    for (const c of await descendants(h.pid)) spawned.add(c);
    const exited = new Promise((r) => h.proc.once("exit", r));
    h.proc.kill("SIGKILL");
    const t0 = performance.now();
    await exited;
    return t0;
  };

  const deploy = async (lattice: string, port: number) => {
    const dir = await mkdtemp(path.join(tmpdir(), "chaos-app-"));
    const file = path.join(dir, "app.yaml");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(file, manifest(port));
    try {
      const r = await run(process.execPath, [BIN, "--nats-url", nats.url, "--lattice", lattice, "--output", "json", "app", "deploy", file, "--wait", "--wait-timeout-ms", "60000"]);
      const out = JSON.parse(r.stdout) as { success: boolean; applied_by: string; status: { status: string } };
      assert.equal(out.applied_by, "reconciler", "deploy left the work to the reconciler");
      assert.equal(out.status.status, "deployed", r.stdout);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  const runningHello = async (client: CtlClient, candidates: HostProc[]) => {
    for (const h of candidates) {
      if (h.proc.exitCode !== null || h.proc.signalCode !== null) continue;
      try {
        if ((await client.getInventory(h.id)).components.some((c) => c.id === "chaos-hello")) return h;
      } catch {
        // not answering
      }
    }
    return undefined;
  };

  const lostEvents = (lattice: string) => {
    const seen: { ev: CloudEvent; at: number }[] = [];
    const sub = nc.subscribe(eventSubject(lattice, "host_stopped"), {
      callback: (_e, m) => {
        seen.push({ ev: m.json<CloudEvent>(), at: performance.now() });
      },
    });
    return { seen, stop: () => sub.unsubscribe() };
  };

  before(async () => {
    nats = await startTestNats({ private: true, websocket: false });
    nc = await connect({ servers: nats.url });
    dataDir = await mkdtemp(path.join(tmpdir(), "chaos-data-"));
    cacheDir = await mkdtemp(path.join(tmpdir(), "chaos-cache-"));
  });

  after(async () => {
    for (const h of hosts) for (const c of alive(h.pid) ? await descendants(h.pid) : []) spawned.add(c);
    for (const h of hosts) if (alive(h.pid)) h.proc.kill("SIGTERM");
    await waitFor(() => hosts.every((h) => !alive(h.pid)), { timeoutMs: 15_000, message: "hosts stopped" }).catch(() => undefined);
    for (const pid of spawned) if (alive(pid)) process.kill(pid, "SIGKILL");
    await nc.close();
    await nats.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  });

  void test("kill -9 of the host running the only component instance: the app serves again from another host", async (t) => {
    const lattice = uniqueLattice("chaos");
    const port = await getFreePort();
    const url = `http://127.0.0.1:${port}/`;
    const edge = await startHost(lattice, "edge", { role: "edge" });
    const workers = await Promise.all([startHost(lattice, "w1", { role: "worker" }), startHost(lattice, "w2", { role: "worker" })]);
    await waitFor(async () => (await readLease(nc, lattice))?.holder === edge.id, { timeoutMs: 10_000, message: "the first host holds the lease" });
    await deploy(lattice, port);
    await waitFor(() => hello(url), { timeoutMs: 30_000, intervalMs: 100, message: "the app serves" });
    const client = await CtlClient.connect({ nc, lattice });
    const victim = await waitFor(() => runningHello(client, workers), { timeoutMs: 10_000, message: "a worker runs the component" });
    const events = lostEvents(lattice);
    try {
      const t0 = await kill9(victim);
      await waitFor(() => hello(url), { timeoutMs: 30_000, intervalMs: 25, message: "the app serves again" });
      const healMs = performance.now() - t0;
      const lost = await waitFor(() => events.seen.find((e) => e.ev.source === victim.id), { timeoutMs: 10_000, message: "host_stopped for the killed host" });
      const detectMs = lost.at - t0;
      t.diagnostic(`kill -9 → host_stopped (lost): ${Math.round(detectMs)} ms; kill -9 → first 200: ${Math.round(healMs)} ms`);
      assert.equal(lost.ev.data.reason, "lost");
      assert.equal(lost.ev.data.detection, "no_responders", "noticed by the probe after 1.5 missed beats");
      assert.equal(lost.ev.data.detected_by, edge.id);
      const now = await waitFor(() => runningHello(client, workers), { timeoutMs: 10_000, message: "a worker runs the component" });
      assert.notEqual(now, victim, "another worker runs it");
      assert.ok(!(await client.getHosts()).some((h) => h.id === victim.id), "the dead host is not in the host list");
      assert.equal((await getAppStatus(client, "chaos")).status, "deployed");
    } finally {
      events.stop();
    }
  });

  void test("kill -9 of the reconciler's host: another host takes over, and a later host failure is still healed", async (t) => {
    const lattice = uniqueLattice("chaos");
    const port = await getFreePort();
    const url = `http://127.0.0.1:${port}/`;
    const first = await startHost(lattice, "spare", { role: "spare" });
    await waitFor(async () => (await readLease(nc, lattice))?.holder === first.id, { timeoutMs: 10_000, message: "the first host holds the lease" });
    // The workers opt out (flag and env twin), so that the edge host is the only one left to take over, and the
    // later failure is healed by the new holder, not by a takeover.
    const [edge, ...workers] = await Promise.all([
      startHost(lattice, "edge2", { role: "edge" }),
      startHost(lattice, "w3", { role: "worker" }, { args: ["--no-reconciler"] }),
      startHost(lattice, "w4", { role: "worker" }, { env: { TRELLIS_NO_RECONCILER: "1" } }),
    ]);
    assert.ok(edge);
    await deploy(lattice, port);
    await waitFor(() => hello(url), { timeoutMs: 30_000, intervalMs: 100, message: "the app serves" });
    const t0 = await kill9(first);
    const lease = await waitFor(
      async () => {
        const l = await readLease(nc, lattice);
        return l && l.holder !== first.id ? l : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 25, message: "another host takes the lease" },
    );
    const takeoverMs = performance.now() - t0;
    assert.equal(lease.holder, edge.id, "the only other contender holds it");
    assert.equal(lease.term, 2);
    const client = await CtlClient.connect({ nc, lattice });
    // Let the new holder's first full reconcile pass, so that what heals the next failure is its reaction to it.
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await getAppStatus(client, "chaos")).status, "deployed");
    const victim = await waitFor(() => runningHello(client, workers), { timeoutMs: 10_000, message: "a worker runs the component" });
    const t1 = await kill9(victim);
    await waitFor(() => hello(url), { timeoutMs: 30_000, intervalMs: 25, message: "the app serves again" });
    const healMs = performance.now() - t1;
    t.diagnostic(`kill -9 of the lease holder → new holder: ${Math.round(takeoverMs)} ms; then kill -9 of the component's host → first 200: ${Math.round(healMs)} ms`);
    const now = await waitFor(() => runningHello(client, workers), { timeoutMs: 10_000, message: "a worker runs the component" });
    assert.notEqual(now, victim, "the other worker runs it");
  });
});
