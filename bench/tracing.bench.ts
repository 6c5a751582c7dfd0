/**
 * Benchmark "tracing" (issue 13 item 2, ADR 0025): what tracing costs on the HTTP hello path when no exporter is set.
 * Two hosts in this process, each with its own HTTP server provider and the Rust hello fixture: one with tracing on
 * and no OTLP endpoint (every hop reads and sends W3C trace context, non-recording spans), one with `tracing: false`.
 * They are loaded in turn, several rounds each, in the same run; the figures are the medians of the rounds, and the
 * ratio `off / on` of requests per second is the cost (expected within 1.1×). On a loaded machine throughput is
 * noisy, so each round also measures CPU per request: of this process (host, its component workers and, with the Node
 * load generator, the load) and of the HTTP server provider's process; `cpuPerReqOnOverOff` is their sum's ratio.
 * Last, the tracing code of one request is timed alone (`tracingCodeUsPerRequest`) and set against the CPU a request
 * takes with tracing off (`tracingCodeOverCpuPerReqOff`): the cost without the machine's noise.
 *
 * Env: BENCH_TRACING_SECONDS (default 5), BENCH_TRACING_ROUNDS (default 3), BENCH_HTTP_CONNECTIONS (default 32),
 * BENCH_HTTP_INSTANCES (default 2). Load: wrk when installed, else the Node load generator (bench/http-load.ts).
 *
 * Fixture (../shared/fixtures/components/, read in place): http_hello_world_rust.wasm, Apache-2.0, from
 * wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e).
 */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import { Host } from "../src/host/host.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { uniqueLattice, waitFor } from "../src/testing/index.ts";
import { demoWorkloads } from "../src/demo/stack.ts";
import type { ProviderSupervisor } from "../src/provider/supervisor.ts";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { startTracing } from "../src/tracing/tracer.ts";
import { compileTracingOptions } from "../src/tracing/settings.ts";
import { ProviderTracing } from "../packages/provider-sdk/src/tracing.ts";
import { ratio } from "./harness.ts";
import { load, type LoadResult } from "./http-load.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURE = path.resolve(ROOT, "../shared/fixtures/components/http_hello_world_rust.wasm");
const SECONDS = Number(process.env["BENCH_TRACING_SECONDS"] ?? 5);
const ROUNDS = Number(process.env["BENCH_TRACING_ROUNDS"] ?? 3);
const CONNECTIONS = Number(process.env["BENCH_HTTP_CONNECTIONS"] ?? 32);
const INSTANCES = Number(process.env["BENCH_HTTP_INSTANCES"] ?? 2);

interface Stack {
  url: string;
  /** CPU seconds the HTTP server provider's process has used so far (/proc; NaN when unreadable). */
  providerCpuSeconds(): number;
  stop(): Promise<void>;
}

/** utime + stime of a process, seconds (Linux /proc; clock ticks of 10 ms). */
function procCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** A host (tracing on or off, no exporter either way) serving the fixture behind its own HTTP server provider. */
async function stack(natsUrl: string, tracing: boolean): Promise<Stack> {
  const lattice = uniqueLattice(tracing ? "trace-on" : "trace-off");
  const host = await Host.create({
    natsUrl,
    lattice,
    logger: silentLogger,
    cacheDir: path.join(ROOT, ".cache", "bench-host"),
    workloads: demoWorkloads(),
    allowedPaths: [path.dirname(FIXTURE)],
    tracing,
  });
  const client = await CtlClient.connect({ natsUrl, lattice, timeoutMs: 5000 });
  const port = await getFreePort();
  await client.startProvider(host.id, { provider_id: "http", provider_ref: "http-server" });
  await client.putConfig("hello-http", { address: `127.0.0.1:${port}` });
  await client.putLink({ source_id: "http", target: "hello", wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"], source_config: ["hello-http"] });
  await client.scaleComponent(host.id, { component_ref: FIXTURE, component_id: "hello", count: INSTANCES });
  const url = `http://127.0.0.1:${port}/`;
  await waitFor(async () => (await fetch(url).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, intervalMs: 200, message: `${url} to answer` });
  const supervisor = host.providers as ProviderSupervisor;
  return {
    url,
    providerCpuSeconds: () => procCpuSeconds(supervisor.snapshot("http")?.pid),
    stop: async () => {
      await client.close();
      await host.stop();
    },
  };
}

/** One loaded round: the load result and the CPU it took (this process: host, its workers and the load generator; the provider's process). */
interface Round {
  r: LoadResult;
  hostCpuUsPerReq: number;
  providerCpuUsPerReq: number;
}

async function round(st: Stack): Promise<Round> {
  const cpu0 = process.cpuUsage();
  const p0 = st.providerCpuSeconds();
  const r = await load(st.url, { connections: CONNECTIONS, seconds: SECONDS, warmupSeconds: 2 });
  const cpu = process.cpuUsage(cpu0);
  const p = st.providerCpuSeconds() - p0;
  // the warm-up's requests are not counted in r.requests but their CPU is: count them at the measured rate
  const reqs = r.requests * ((SECONDS + 2) / SECONDS);
  return { r, hostCpuUsPerReq: Math.round((cpu.user + cpu.system) / reqs), providerCpuUsPerReq: Math.round((p * 1e6) / reqs) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

function summary(rounds: Round[]) {
  const rs = rounds.map((x) => x.r);
  return {
    reqPerSec: median(rs.map((r) => r.reqPerSec)),
    p50Ms: median(rs.map((r) => r.p50Ms)),
    p99Ms: median(rs.map((r) => r.p99Ms)),
    hostCpuUsPerReq: median(rounds.map((x) => x.hostCpuUsPerReq)),
    providerCpuUsPerReq: median(rounds.map((x) => x.providerCpuUsPerReq)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    rounds: rs.map((r) => r.reqPerSec),
  };
}

/**
 * The tracing code of one HTTP request without an exporter, timed alone in this process (µs per request, 200,000
 * iterations): the worker's server span and one import's client span with its headers (host), the HTTP server
 * provider's request span and component-call span with headers (SDK), and the extra `traceparent` header in a NATS
 * message's header encoding.
 */
function hopCosts(): { hostUs: number; sdkUs: number; headerUs: number } {
  const N = 200_000;
  const t = startTracing(compileTracingOptions({}), { lattice: "bench", hostId: "host" });
  const p = new ProviderTracing({ enabled: true, serviceName: "http", lattice: "bench", hostId: "host", providerId: "http", instanceId: "i" });
  const h = natsHeaders();
  h.set("source-id", "http");
  h.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
  const time = (f: () => void) => {
    for (let i = 0; i < 10_000; i++) f();
    const t0 = performance.now();
    for (let i = 0; i < N; i++) f();
    return Math.round(((performance.now() - t0) * 1000 * 100) / N) / 100;
  };
  const hostUs = time(() => {
    const s = t.server(h, { sourceId: "http", target: "hello", iface: "wasi:http/incoming-handler", fn: "handle", linkName: "default" });
    const c = t.client(s, { sourceId: "hello", target: "kv", iface: "wasi:keyvalue/store", fn: "open", linkName: "default" });
    void c.headers;
    c.end();
    s.end();
  });
  const sdkUs = time(() => {
    const s = p.server({ get: () => undefined }, { target: "http", iface: "http", fn: "GET" }, "HTTP GET");
    const c = p.client({ sourceId: "http", target: "hello", iface: "wasi:http/incoming-handler", fn: "handle", linkName: "default" }, s);
    void c.headers;
    c.end();
    s.end();
  });
  const enc = (tp: boolean) => () => {
    const x = natsHeaders();
    x.set("source-id", "http");
    x.set("target-id", "hello");
    x.set("link-name", "default");
    x.set("trellis-timeout-ms", "10000");
    if (tp) x.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    (x as unknown as { encode(): Uint8Array }).encode();
  };
  const headerUs = Math.max(0, Math.round((time(enc(true)) - time(enc(false))) * 100) / 100);
  void t.shutdown();
  return { hostUs, sdkUs, headerUs };
}

export default async function tracingBench(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const loadBefore = loadavg()[0];
  // BENCH_TRACING_FIRST=off creates the tracing-off stack first (to see whether creation order matters)
  const offFirst = process.env["BENCH_TRACING_FIRST"] === "off";
  const first = await stack(ctx.natsUrl, !offFirst);
  const second = await stack(ctx.natsUrl, offFirst);
  const [on, off] = offFirst ? [second, first] : [first, second];
  const runs: { on: Round[]; off: Round[] } = { on: [], off: [] };
  let tool = "";
  try {
    for (let i = 0; i < ROUNDS; i++) {
      // alternate which goes first, so that drift in the machine's load falls on both
      for (const which of i % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const)) {
        const x = await round(which === "on" ? on : off);
        tool = x.r.tool;
        runs[which].push(x);
      }
    }
  } finally {
    await on.stop();
    await off.stop();
  }
  const hop = hopCosts();
  const a = summary(runs.on);
  const b = summary(runs.off);
  const result = {
    tool,
    connections: CONNECTIONS,
    seconds: SECONDS,
    rounds: ROUNDS,
    instances: INSTANCES,
    loadAverage1m: { before: Math.round((loadBefore ?? 0) * 100) / 100, after: Math.round((loadavg()[0] ?? 0) * 100) / 100 },
    tracingOnNoExporter: a,
    tracingOff: b,
    /** The tracing code alone, µs per request (see hopCosts), and its share of the CPU a request takes with tracing off. */
    tracingCodeUsPerRequest: { ...hop, total: Math.round((hop.hostUs + hop.sdkUs + hop.headerUs) * 100) / 100 },
    ratios: {
      tracingCodeOverCpuPerReqOff: ratio(b.hostCpuUsPerReq + b.providerCpuUsPerReq + hop.hostUs + hop.sdkUs + hop.headerUs, b.hostCpuUsPerReq + b.providerCpuUsPerReq),
      reqPerSecOffOverOn: ratio(b.reqPerSec, a.reqPerSec),
      p50OnOverOff: ratio(a.p50Ms, b.p50Ms),
      p99OnOverOff: ratio(a.p99Ms, b.p99Ms),
      hostCpuPerReqOnOverOff: ratio(a.hostCpuUsPerReq, b.hostCpuUsPerReq),
      providerCpuPerReqOnOverOff: ratio(a.providerCpuUsPerReq, b.providerCpuUsPerReq),
      cpuPerReqOnOverOff: ratio(a.hostCpuUsPerReq + a.providerCpuUsPerReq, b.hostCpuUsPerReq + b.providerCpuUsPerReq),
    },
    goal: {
      within1_1x: ratio(b.reqPerSec, a.reqPerSec) <= 1.1,
      cpuWithin1_1x: ratio(a.hostCpuUsPerReq + a.providerCpuUsPerReq, b.hostCpuUsPerReq + b.providerCpuUsPerReq) <= 1.1,
      noErrors: a.errors + b.errors === 0,
    },
  };
  process.stdout.write(
    `tracing: on (no exporter) ${a.reqPerSec} req/s p50 ${a.p50Ms} ms p99 ${a.p99Ms} ms | off ${b.reqPerSec} req/s p50 ${b.p50Ms} ms p99 ${b.p99Ms} ms | ` +
      `off/on ×${result.ratios.reqPerSecOffOverOn}, CPU per request on/off ×${result.ratios.cpuPerReqOnOverOff}, tracing code ${result.tracingCodeUsPerRequest.total} µs/request ` +
      `(×${result.ratios.tracingCodeOverCpuPerReqOff}) (${tool}, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s)\n`,
  );
  return result;
}
