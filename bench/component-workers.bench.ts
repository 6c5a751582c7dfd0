/**
 * Benchmark "component-workers" (issue 12 item 2, docs/adr/0023-component-workers.md): one component's instances
 * spread over 1, 2, 3 and 4 worker threads (`policy.componentWorkers`), the same instance count each time, at 32
 * keep-alive connections, all in one run:
 * - the demo's JavaScript hello (examples/hello, componentize-js; the guest's CPU dominates),
 * - the demo's counter (examples/counter; four key-value calls per request: kv-redis and kv-memory),
 * - the Rust hello fixture (a cheap guest: the HTTP provider and NATS dominate).
 * Each worker count gets a fresh host (maxWorkers 4); the apps are deployed as `npm run demo` does, with the
 * component's spreadscaler instances set to BENCH_WORKERS_INSTANCES. CPU during each load phase is read per process
 * (this process — host main thread, component workers and the Node load generator when wrk is missing —, every
 * provider process, nats-server) and per component worker thread (`process.threadCpuUsage` inside each worker).
 *
 * Env: BENCH_HTTP_SECONDS (default 8), BENCH_HTTP_CONNECTIONS (default 32), BENCH_WORKERS_INSTANCES (default 8),
 * BENCH_WORKERS_LIST (default "1,2,3,4"), BENCH_WORKERS_PASSES (default 2; the second pass runs the list backwards).
 *
 * Fixture (../shared/fixtures/components/, read in place): http_hello_world_rust.wasm, Apache-2.0, from
 * wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e).
 */
import { readdir, readFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ComponentRuntime } from "../src/component/index.ts";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { ProviderSupervisor } from "../src/provider/supervisor.ts";
import { startTestRedis, uniqueLattice, waitFor } from "../src/testing/index.ts";
import { deployExample, exampleApps, type ExampleApp } from "../src/demo/apps.ts";
import { buildExamples } from "../src/demo/build.ts";
import { DEMO_ALLOWED_PATHS, startDemoHost } from "../src/demo/stack.ts";
import type { Host } from "../src/host/host.ts";
import { ratio } from "./harness.ts";
import { hasWrk, load, type LoadResult } from "./http-load.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURE = path.resolve(ROOT, "../shared/fixtures/components/http_hello_world_rust.wasm");
const SECONDS = Number(process.env["BENCH_HTTP_SECONDS"] ?? 8);
const CONNECTIONS = Number(process.env["BENCH_HTTP_CONNECTIONS"] ?? 32);
const INSTANCES = Number(process.env["BENCH_WORKERS_INSTANCES"] ?? 8);
const WORKERS = (process.env["BENCH_WORKERS_LIST"] ?? "1,2,3,4").split(",").map(Number);
const PASSES = Number(process.env["BENCH_WORKERS_PASSES"] ?? 2);
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux). */
const TICKS = 100;

/** CPU time of a process (user + system) in ms, from /proc; NaN when it is gone. */
async function procCpuMs(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS;
  } catch {
    return Number.NaN;
  }
}

/**
 * Pid of the nats-server listening on `natsUrl`'s port, or undefined: the one whose ports file
 * (`--ports_file_dir DIR`, `DIR/nats-server_<pid>.ports`, as src/lattice/nats-server.ts starts it) names the port.
 */
async function natsServerPid(natsUrl: string): Promise<number | undefined> {
  const port = new URL(natsUrl).port;
  for (const d of await readdir("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const args = (await readFile(`/proc/${d}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (!args[0]?.endsWith("nats-server")) continue;
    const dir = args[args.indexOf("--ports_file_dir") + 1];
    if (!args.includes("--ports_file_dir") || !dir) continue;
    const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(`_${d}.ports`));
    for (const f of files) if ((await readFile(path.join(dir, f), "utf8").catch(() => "")).includes(`:${port}`)) return Number(d);
  }
  return undefined;
}

interface Phase {
  load: Omit<LoadResult, "tool" | "connections" | "seconds">;
  /** Each shard of the measured component: requests it served, its thread's CPU in the phase (every component of that worker). */
  shards: { worker: number; served: number; threadCpuMs: number; threadCorePct: number }[];
  /** CPU per request in the phase, in ms, per process (`thisProcess` includes the component workers). */
  cpuMsPerRequest: Record<string, number>;
  /** CPU used in the phase as % of one core, per process. */
  corePct: Record<string, number>;
}

interface Stack {
  host: Host;
  runtime: ComponentRuntime;
  providers: ProviderSupervisor;
  client: CtlClient;
}

/** Runs a load on `url` while reading CPU of this process, the providers, nats-server and the worker threads of `componentId`. */
async function phase(s: Stack, componentId: string, url: string, providerIds: string[], natsPid: number | undefined): Promise<Phase> {
  await load(url, { connections: CONNECTIONS, seconds: 2 }); // warm-up (instances created, JIT warm)
  const pids: Record<string, number | undefined> = { "nats-server": natsPid };
  for (const id of providerIds) pids[`provider:${id}`] = s.providers.snapshot(id)?.pid;
  const cpu0 = process.cpuUsage();
  const proc0 = Object.fromEntries(await Promise.all(Object.entries(pids).map(async ([k, pid]) => [k, pid ? await procCpuMs(pid) : NaN] as const)));
  const shards0 = await s.runtime.shards(componentId);
  const t0 = process.hrtime.bigint();
  const r = await load(url, { connections: CONNECTIONS, seconds: SECONDS });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const shards1 = await s.runtime.shards(componentId);
  const cpu1 = process.cpuUsage(cpu0);
  const proc1 = Object.fromEntries(await Promise.all(Object.entries(pids).map(async ([k, pid]) => [k, pid ? await procCpuMs(pid) : NaN] as const)));
  const used: Record<string, number> = { thisProcess: (cpu1.user + cpu1.system) / 1000 };
  for (const k of Object.keys(pids)) used[k] = proc1[k]! - proc0[k]!;
  const shards = shards1.map((b) => {
    const a = shards0.find((x) => x.threadId === b.threadId);
    const ms = (b.threadCpuUs - (a?.threadCpuUs ?? 0)) / 1000;
    return { worker: b.worker, served: b.served - (a?.served ?? 0), threadCpuMs: Math.round(ms), threadCorePct: Math.round((ms / wallMs) * 100) };
  });
  const workersMs = shards.reduce((n, x) => n + x.threadCpuMs, 0);
  used["componentWorkers"] = workersMs;
  used["thisProcessOutsideWorkers"] = used["thisProcess"]! - workersMs;
  const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
  const { reqPerSec, p50Ms, p90Ms, p99Ms, requests, errors } = r;
  return {
    load: { reqPerSec, p50Ms, p90Ms, p99Ms, requests, errors },
    shards,
    cpuMsPerRequest: Object.fromEntries(Object.entries(used).map(([k, v]) => [k, round(v / Math.max(1, r.requests), 3)])),
    corePct: Object.fromEntries(Object.entries(used).map(([k, v]) => [k, Math.round((v / wallMs) * 100)])),
  };
}

/** The app's manifest with its component's spreadscaler instances (the first `instances:` of the file) set to `n`. */
function withInstances(app: ExampleApp, n: number): ExampleApp {
  return { ...app, text: app.text.replace(/instances: \d+\b/, `instances: ${n}`) };
}

async function oneHost(natsUrl: string, redisUrl: string, workers: number, natsPid: number | undefined): Promise<Record<string, unknown>> {
  const lattice = uniqueLattice("cw");
  const host = await startDemoHost({
    natsUrl,
    lattice,
    logger: silentLogger,
    cacheDir: path.join(ROOT, ".cache", "bench-host"),
    policy: { maxWorkers: 4, componentWorkers: workers },
    allowedPaths: [...DEMO_ALLOWED_PATHS, path.dirname(FIXTURE)],
  });
  const client = await CtlClient.connect({ natsUrl, lattice, timeoutMs: 10_000 });
  try {
    if (!(host.components instanceof ComponentRuntime) || !(host.providers instanceof ProviderSupervisor)) throw new Error("the demo host has no component runtime or provider supervisor");
    const s: Stack = { host, runtime: host.components, providers: host.providers, client };
    const apps = await exampleApps({ defaultKv: "redis", redisUrl, helloAddress: `127.0.0.1:${await getFreePort()}`, counterAddress: `127.0.0.1:${await getFreePort()}` });
    const hello = withInstances(apps.find((a) => a.name === "hello")!, INSTANCES);
    const counter = withInstances(apps.find((a) => a.name === "counter")!, INSTANCES);
    for (const app of [hello, counter]) {
      await deployExample(client, app);
      await waitFor(async () => (await fetch(app.url).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, intervalMs: 200 });
    }
    const rustPort = await getFreePort();
    await client.startProvider(host.id, { provider_id: "rust-http", provider_ref: "http-server" });
    await client.putConfig("rust-http", { address: `127.0.0.1:${rustPort}` });
    await client.putLink({ source_id: "rust-http", target: "rusthello", wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"], source_config: ["rust-http"] });
    await client.scaleComponent(host.id, { component_ref: FIXTURE, component_id: "rusthello", count: INSTANCES });
    const rustUrl = `http://127.0.0.1:${rustPort}/`;
    await waitFor(async () => (await fetch(rustUrl).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, intervalMs: 200 });
    const placement = Object.fromEntries(["hello", "counter", "rusthello"].map((id) => [id, s.runtime.workersOf(id).length]));
    const inv = s.runtime.inventory();
    return {
      componentWorkers: workers,
      shardsPerComponent: placement,
      maxInstances: Object.fromEntries(inv.map((c) => [c.id, c.max_instances])),
      jsHello: await phase(s, "hello", hello.url, ["hello-http"], natsPid),
      counter: await phase(s, "counter", counter.url, ["counter-http", "kv-redis", "kv-memory"], natsPid),
      rustHello: await phase(s, "rusthello", rustUrl, ["rust-http"], natsPid),
    };
  } finally {
    await client.close();
    await host.stop();
  }
}

export default async function componentWorkers(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const loadBefore = loadavg();
  await buildExamples(["counter", "hello"]);
  const redis = await startTestRedis({ private: true });
  const natsPid = await natsServerPid(ctx.natsUrl);
  const runs: Record<string, unknown>[] = [];
  try {
    for (let pass = 0; pass < PASSES; pass++) {
      for (const w of pass % 2 === 0 ? WORKERS : [...WORKERS].reverse()) {
        const r = await oneHost(ctx.natsUrl, redis.url, w, natsPid);
        runs.push({ pass: pass + 1, loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100, ...r });
        const f = (k: string) => (r[k] as Phase).load.reqPerSec;
        process.stdout.write(`component-workers: pass ${pass + 1}, ${w} worker(s): JS hello ${f("jsHello")} req/s, counter ${f("counter")} req/s, Rust hello ${f("rustHello")} req/s\n`);
      }
    }
  } finally {
    await redis.stop();
  }
  // best of the passes per worker count (other engineers load the machine: the best run is the least disturbed)
  const best = (key: string) =>
    Object.fromEntries(WORKERS.map((w) => [w, Math.max(...runs.filter((r) => r["componentWorkers"] === w).map((r) => (r[key] as Phase).load.reqPerSec))]));
  const summary = { jsHello: best("jsHello"), counter: best("counter"), rustHello: best("rustHello") };
  const vsOne = Object.fromEntries(
    Object.entries(summary).map(([k, v]) => [k, Object.fromEntries(WORKERS.map((w) => [w, ratio(v[w]!, v[WORKERS[0]!]!)]))]),
  );
  return {
    tool: (await hasWrk()) ? "wrk" : "node",
    connections: CONNECTIONS,
    seconds: SECONDS,
    instances: INSTANCES,
    cpus: availableParallelism(),
    loadAverage: { before: loadBefore.map((x) => Math.round(x * 100) / 100), after: loadavg().map((x) => Math.round(x * 100) / 100) },
    bestReqPerSec: summary,
    bestVsFirst: vsOne,
    runs,
  };
}
