/**
 * Benchmark "http-hello" — goal P1 (issue 5): the Rust hello-world fixture served through HTTP server provider →
 * lattice → component, at 32 keep-alive connections, against `jco serve` with the same component measured in the same
 * run (and a plain Node `http` hello server as the ceiling of this machine).
 *
 * The same path is measured first with V8's own heap sizing of the component worker (`trellisV8HeapSizing`,
 * `workerInitialHeapMb: 0`) and then with the host's default (ADR 0028), in the same run.
 * CPU per request of every process (`trellis.cpu`: `bench` = the host with its component workers, the http-server
 * provider, nats-server; `jcoServe.cpu`; bench/cpu.ts) is measured over the measured run, the load generator listed apart.
 *
 * Goal: ≥ 5,000 req/s, p99 ≤ 20 ms, ≥ 4× `jco serve`. Load: wrk (`apt-get install -y wrk`), else a Node load generator.
 * Env: BENCH_HTTP_SECONDS (default 10), BENCH_HTTP_CONNECTIONS (default 32), BENCH_HTTP_INSTANCES (default 2).
 *
 * Fixture (`TRELLIS_FIXTURES_DIR`, bench/component-support.ts; read in place): http_hello_world_rust.wasm, Apache-2.0, from
 * wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e).
 */
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { uniqueLattice, waitFor } from "../src/testing/index.ts";
import { startDemoHost } from "../src/demo/stack.ts";
import type { ComponentPolicy } from "../src/component/policy.ts";
import { appliedWorkerInitialHeapMb } from "../src/component/worker-heap.ts";
import { ratio } from "./harness.ts";
import { FIXTURES } from "./component-support.ts";
import { load, type LoadResult } from "./http-load.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURE = path.join(FIXTURES, "http_hello_world_rust.wasm");
const JCO = path.join(ROOT, "node_modules", "@bytecodealliance", "jco", "dist", "jco.js");
const SECONDS = Number(process.env["BENCH_HTTP_SECONDS"] ?? 10);
const CONNECTIONS = Number(process.env["BENCH_HTTP_CONNECTIONS"] ?? 32);
const INSTANCES = Number(process.env["BENCH_HTTP_INSTANCES"] ?? 2);

async function answers(url: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await fetch(url).catch(() => undefined))?.status === 200, { timeoutMs, intervalMs: 200, message: `${url} to answer` });
}

function row(r: LoadResult) {
  return { reqPerSec: r.reqPerSec, p50Ms: r.p50Ms, p90Ms: r.p90Ms, p99Ms: r.p99Ms, requests: r.requests, errors: r.errors, ...(r.cpu ? { cpu: r.cpu } : {}) };
}

/** Serves the fixture with `jco serve` (jco 1.35), loads it, stops it. */
async function jcoServe(): Promise<LoadResult> {
  const port = await getFreePort();
  // its own process group: `jco serve` runs the component in a child (`_run.js`) that must stop with it
  const child = spawn(process.execPath, [JCO, "serve", FIXTURE, "--port", String(port), "--host", "127.0.0.1"], { stdio: "ignore", detached: true });
  try {
    await answers(`http://127.0.0.1:${port}/`);
    return await load(`http://127.0.0.1:${port}/`, { connections: CONNECTIONS, seconds: SECONDS, warmupSeconds: 3, cpu: true });
  } finally {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      child.kill("SIGKILL");
    }
  }
}

/** A plain Node `http` server answering the same body: what this machine can do at all. */
async function plainNode(): Promise<LoadResult> {
  const port = await getFreePort();
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("Hello from Rust!\n");
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  try {
    return await load(`http://127.0.0.1:${port}/`, { connections: CONNECTIONS, seconds: Math.min(SECONDS, 5), warmupSeconds: 1 });
  } finally {
    server.close();
    server.closeAllConnections();
  }
}

/**
 * The P1 path: a host in this process, the http-server provider spawned by it, the fixture with `INSTANCES` instances.
 * @param policy the host's component policy (`workerInitialHeapMb: 0`: V8's own heap sizing, ADR 0028). @default the host's defaults
 */
async function trellis(natsUrl: string, policy?: ComponentPolicy): Promise<LoadResult> {
  const lattice = uniqueLattice("p1");
  const host = await startDemoHost({
    natsUrl,
    lattice,
    logger: silentLogger,
    cacheDir: path.join(ROOT, ".cache", "bench-host"),
    allowedPaths: [path.dirname(FIXTURE)],
    ...(policy ? { policy } : {}),
  });
  const client = await CtlClient.connect({ natsUrl, lattice, timeoutMs: 5000 });
  try {
    const port = await getFreePort();
    await client.startProvider(host.id, { provider_id: "http", provider_ref: "http-server" });
    await client.putConfig("hello-http", { address: `127.0.0.1:${port}` });
    await client.putLink({ source_id: "http", target: "hello", wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"], source_config: ["hello-http"] });
    await client.scaleComponent(host.id, { component_ref: FIXTURE, component_id: "hello", count: INSTANCES });
    await answers(`http://127.0.0.1:${port}/`);
    return await load(`http://127.0.0.1:${port}/`, { connections: CONNECTIONS, seconds: SECONDS, warmupSeconds: 3, cpu: true });
  } finally {
    await client.close();
    await host.stop();
  }
}

export default async function httpHello(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const loadBefore = loadavg()[0];
  // ADR 0028 in the same run: first with V8's own sizing of the worker heap — only possible while no worker of this
  // process was created with the initial old-generation size (the V8 flag is process-wide and cannot be unset)
  const v8Sizing = appliedWorkerInitialHeapMb() === undefined ? await trellis(ctx.natsUrl, { workerInitialHeapMb: 0 }) : undefined;
  const t = await trellis(ctx.natsUrl);
  const j = await jcoServe();
  const n = await plainNode();
  const vsJco = ratio(t.reqPerSec, j.reqPerSec);
  const result = {
    tool: t.tool,
    connections: CONNECTIONS,
    seconds: SECONDS,
    instances: INSTANCES,
    loadAverage1m: { before: Math.round((loadBefore ?? 0) * 100) / 100, after: Math.round((loadavg()[0] ?? 0) * 100) / 100 },
    trellis: row(t),
    trellisV8HeapSizing: v8Sizing
      ? row(v8Sizing)
      : { skipped: "a component worker of this process was already created with an initial heap size (run this benchmark alone)" },
    jcoServe: row(j),
    plainNodeHttp: row(n),
    ratios: {
      reqPerSecVsJcoServe: vsJco,
      reqPerSecVsPlainNode: ratio(t.reqPerSec, n.reqPerSec),
      p99VsJcoServe: ratio(t.p99Ms, j.p99Ms),
      cpuPerRequestVsJcoServe: ratio(t.cpu?.totalUs ?? Number.NaN, j.cpu?.totalUs ?? Number.NaN),
      ...(v8Sizing ? { p99VsV8HeapSizing: ratio(t.p99Ms, v8Sizing.p99Ms), reqPerSecVsV8HeapSizing: ratio(t.reqPerSec, v8Sizing.reqPerSec) } : {}),
    },
    goalP1: { reqPerSecAtLeast5000: t.reqPerSec >= 5000, p99AtMost20Ms: t.p99Ms <= 20, atLeast4xJcoServe: vsJco >= 4, noErrors: t.errors === 0 },
    goalIssue12: { p99AtMost8Ms: t.p99Ms <= 8 },
  };
  process.stdout.write(
    `http-hello: trellis ${t.reqPerSec} req/s p50 ${t.p50Ms} ms p99 ${t.p99Ms} ms | jco serve ${j.reqPerSec} req/s p99 ${j.p99Ms} ms | ` +
      `×${vsJco} | plain node ${n.reqPerSec} req/s (${t.tool}, ${CONNECTIONS} connections)` +
      (v8Sizing ? ` | V8's worker heap sizing: ${v8Sizing.reqPerSec} req/s p99 ${v8Sizing.p99Ms} ms` : "") +
      "\n",
  );
  return result;
}
