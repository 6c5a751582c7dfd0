/**
 * Benchmark "provider-call": calls into capability providers, against raw NATS request/reply of the same run.
 *
 * One host (this process) runs the component runtime and the provider supervisor; kv-memory (TypeScript SDK) and,
 * when python3 is available, python-kv run as spawned processes; a key-value guest component (componentize-qjs, built
 * here) is linked to each. Serial calls, one in flight:
 *
 *  - direct: this process → provider (`wasi:keyvalue/atomics.increment`, as a component's host would send it);
 *  - component ping: this process → component export that calls nothing (`test:counter/api.ping`);
 *  - component hit: this process → component, which opens the bucket (`store.open`: a round trip the first time, then
 *    answered from the host's handle cache, ADR 0024), increments (`atomics.increment`) and drops the handle;
 *  - component hits(n): the same with n increments on one opened bucket; **one component → provider import call** =
 *    (hits(11) − hits(1)) / 10, for the p50 and for the CPU of every process (whatever `open` costs cancels out).
 *
 * CPU per request per process (`cpu`, bench/cpu.ts: this process = `bench` holds the host and its component worker;
 * the providers; nats-server) is measured for every phase, and for the raw round trip, so the import call's CPU is
 * compared with a raw round trip's of the same run. Ratios divide by the raw NATS p50 (two processes, 16 bytes)
 * measured first in the same run.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import { componentRuntime } from "../src/component/index.ts";
import { Host } from "../src/host/host.ts";
import { invoke, invokeRaw } from "../src/invocation/index.ts";
import { providerSupervisor } from "../src/provider/supervisor.ts";
import { uniqueLattice, waitFor } from "../src/testing/index.ts";
import { KEYVALUE_ATOMICS } from "trellis/provider-sdk";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { componentize } from "componentize-qjs";
import { COUNTER_WIT } from "../test/support/providers.ts";
import { cpuPerRequest, cpuSnapshot, type CpuPerRequest } from "./cpu.ts";
import { ratio, timeIterations, type LatencySummary } from "./harness.ts";
import { measureRawNats } from "./raw-nats.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const N = 2000;
const WARMUP = 200;
const handles = { toHandle: (_r: string, v: unknown) => new TextEncoder().encode(String(v)), fromHandle: (_r: string, h: Uint8Array) => new TextDecoder().decode(h) };

function row(s: LatencySummary, rawP50: number, cpu?: CpuPerRequest) {
  return { p50Us: s.p50Us, p90Us: s.p90Us, p99Us: s.p99Us, reqPerSec: s.reqPerSec, p50VsRawNats: ratio(s.p50Us, rawP50), ...(cpu ? { cpu } : {}) };
}

/** The key-value guest of the benchmark: `hit` opens, increments once and drops; `hits(key, n)` increments n times. */
const GUEST_JS = `
import { open } from "wasi:keyvalue/store@0.2.0-draft";
import { increment } from "wasi:keyvalue/atomics@0.2.0-draft";
export const api = {
  ping() { return 1; },
  hit(key) {
    const b = open("counters");
    try { return increment(b, key, 1); } finally { b[Symbol.dispose]?.(); }
  },
  put(key, value) {},
  fetch(key) { return undefined; },
  hits(key, n) {
    const b = open("counters");
    let v = 0;
    try { for (let i = 0; i < n; i++) v = increment(b, key, 1); } finally { b[Symbol.dispose]?.(); }
    return v;
  },
};
`;

async function buildGuest(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "trellis-bench-kv-"));
  await writeFile(path.join(dir, "world.wit"), COUNTER_WIT.replace("fetch: func(key: string) -> option<string>;", "fetch: func(key: string) -> option<string>;\n  hits: func(key: string, n: u32) -> u64;"));
  const { component } = await componentize({ witPath: path.join(dir, "world.wit"), jsSource: GUEST_JS, sync: true, optSize: true });
  const file = path.join(dir, "kvbench.wasm");
  await writeFile(file, component);
  return file;
}

/** `timeIterations` with the CPU per call of every process. */
async function timed(n: number, fn: () => Promise<unknown>): Promise<{ s: LatencySummary; cpu: CpuPerRequest }> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const before = cpuSnapshot();
  const s = await timeIterations(n, fn);
  return { s, cpu: cpuPerRequest(before, cpuSnapshot(), n) };
}

/** (b − a) / k for every process of two CPU figures: the CPU of the k calls that make b longer than a. */
function cpuDiff(a: CpuPerRequest, b: CpuPerRequest, k: number): { totalUs: number; byProcessUs: Record<string, number> } {
  const r = (x: number) => Math.round(x * 10) / 10;
  const byProcessUs: Record<string, number> = {};
  for (const label of new Set([...Object.keys(a.byProcessUs), ...Object.keys(b.byProcessUs)])) {
    byProcessUs[label] = r(((b.byProcessUs[label] ?? 0) - (a.byProcessUs[label] ?? 0)) / k);
  }
  return { totalUs: r((b.totalUs - a.totalUs) / k), byProcessUs };
}

export default async function providerCall(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const raw = await measureRawNats(ctx.natsUrl, { requests: N, warmup: WARMUP, pipelinedRequests: N });
  const rawP50 = raw.serial.p50Us;
  const wasm = await buildGuest();
  const lattice = uniqueLattice("bench");
  const host = await Host.create({
    natsUrl: ctx.natsUrl,
    lattice,
    logger: silentLogger,
    // the counter guest is built in a temporary directory; the Python provider is started by path
    allowedPaths: [path.dirname(wasm), path.join(ROOT, "providers", "python-kv")],
    workloads: { components: componentRuntime(), providers: providerSupervisor({ firstHealthCheckMs: 200 }) },
  });
  const client = await CtlClient.connect({ natsUrl: ctx.natsUrl, lattice, timeoutMs: 10_000 });
  const nc = client.nc;
  const providers: [string, string][] = [["kvts", "kv-memory"]];
  if (spawnSync("python3", ["--version"]).status === 0) providers.push(["kvpy", path.join(ROOT, "providers", "python-kv", "provider.py")]);
  const out: Record<string, unknown> = { calls: N, rawNats: { p50Us: rawP50, p99Us: raw.serial.p99Us, cpu: raw.serialCpu } };
  try {
    for (const [id, ref] of providers) {
      const component = `counter-${id}`;
      await client.startProvider(host.id, { provider_id: id, provider_ref: ref });
      await client.putLink({ source_id: component, target: id, wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"] });
      await client.scaleComponent(host.id, { component_ref: wasm, component_id: component, count: 1 });
      await waitFor(async () => {
        const inv = await client.getInventory(host.id);
        return inv.components.some((c) => c.id === component) && inv.providers.find((p) => p.id === id)?.status === "running";
      }, { timeoutMs: 30_000, message: `${component} and ${id} running` });
      const direct = await timed(N, () =>
        invoke(nc, { lattice, targetId: id, iface: KEYVALUE_ATOMICS.name, fn: "increment", sourceId: component, linkName: "default", timeoutMs: 5000 }, KEYVALUE_ATOMICS.functions.increment!, ["b", "k", 1n], handles),
      );
      const call = (fn: string, args: unknown[]) =>
        invokeRaw(nc, { lattice, targetId: component, iface: "test:counter/api", fn, timeoutMs: 5000 }, new TextEncoder().encode(JSON.stringify(args)), true);
      const ping = await timed(N, () => call("ping", []));
      const hit = await timed(N, () => call("hit", ["k"]));
      const hits1 = await timed(N, () => call("hits", ["k", 1]));
      const hits11 = await timed(N / 4, () => call("hits", ["k", 11]));
      const importP50 = Math.round(((hits11.s.p50Us - hits1.s.p50Us) / 10) * 10) / 10;
      const importCpu = cpuDiff(hits1.cpu, hits11.cpu, 10);
      out[ref === "kv-memory" ? "kvMemory" : "pythonKv"] = {
        direct: row(direct.s, rawP50, direct.cpu),
        componentPing: row(ping.s, rawP50, ping.cpu),
        componentHit: row(hit.s, rawP50, hit.cpu),
        componentHits1: row(hits1.s, rawP50, hits1.cpu),
        componentHits11: row(hits11.s, rawP50, hits11.cpu),
        importCallP50Us: importP50,
        importCallVsRawNats: ratio(importP50, rawP50),
        importCallCpu: importCpu,
        importCallCpuVsRawRoundTrip: ratio(importCpu.totalUs, raw.serialCpu.totalUs),
      };
    }
  } finally {
    await client.close();
    await host.stop();
  }
  return out;
}
