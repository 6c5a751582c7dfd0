/**
 * Benchmark helpers: time iterations, summarise latencies (microseconds), measure pipelined
 * throughput, compute ratios to a baseline and write results to bench/results/<name>.json.
 *
 * Every benchmark reports its figures next to a baseline measured in the same run
 * (usually {@link import("./raw-nats.ts").measureRawNats}) so results are comparable across
 * machines: compare ratios, not absolute numbers.
 */
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Latency distribution of serial (one in flight) operations. All times in microseconds. */
export interface LatencySummary {
  /** Number of measured operations (warm-up excluded). */
  n: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  minUs: number;
  maxUs: number;
  /** Operations per second over the measured wall-clock time. */
  reqPerSec: number;
}

/** Throughput with several operations in flight. */
export interface ThroughputSummary {
  /** Number of measured operations. */
  n: number;
  /** Operations kept in flight concurrently. */
  inFlight: number;
  /** Wall-clock seconds for all `n` operations. */
  seconds: number;
  /** Operations per second. */
  reqPerSec: number;
}

const round = (x: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Value at quantile `q` (0..1) of an ascending-sorted array (nearest-rank). */
export function quantile(sortedAsc: readonly number[], q: number): number {
  if (sortedAsc.length === 0) return Number.NaN;
  const idx = Math.min(sortedAsc.length - 1, Math.max(0, Math.ceil(q * sortedAsc.length) - 1));
  return sortedAsc[idx] ?? Number.NaN;
}

/**
 * Summarise per-operation samples.
 *
 * @param samplesUs per-operation latencies in microseconds.
 * @param wallSeconds total wall-clock time of the measured loop; default: sum of samples.
 */
export function summarize(samplesUs: readonly number[], wallSeconds?: number): LatencySummary {
  const sorted = [...samplesUs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  const seconds = wallSeconds ?? sum / 1e6;
  return {
    n: sorted.length,
    meanUs: round(sum / Math.max(1, sorted.length)),
    p50Us: round(quantile(sorted, 0.5)),
    p90Us: round(quantile(sorted, 0.9)),
    p99Us: round(quantile(sorted, 0.99)),
    minUs: round(sorted[0] ?? Number.NaN),
    maxUs: round(sorted[sorted.length - 1] ?? Number.NaN),
    reqPerSec: round(sorted.length / seconds, 0),
  };
}

/**
 * Run `fn` `warmup` times unmeasured, then `iterations` times one after another, timing each call.
 *
 * @returns latency summary in microseconds (see {@link LatencySummary}).
 */
export async function timeIterations(
  iterations: number,
  fn: (i: number) => Promise<unknown> | unknown,
  opts: { warmup?: number } = {},
): Promise<LatencySummary> {
  const warmup = opts.warmup ?? 0;
  for (let i = 0; i < warmup; i++) await fn(i);
  const samples = new Array<number>(iterations);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  return summarize(samples, wall);
}

/**
 * Run `fn` `total` times with `inFlight` calls outstanding at any moment (after `warmup` calls
 * with the same concurrency), and report throughput.
 */
export async function measureThroughput(
  total: number,
  inFlight: number,
  fn: (i: number) => Promise<unknown>,
  opts: { warmup?: number } = {},
): Promise<ThroughputSummary> {
  const runWindow = async (count: number): Promise<number> => {
    let next = 0;
    const start = process.hrtime.bigint();
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        await fn(i);
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, count) }, () => worker()));
    return Number(process.hrtime.bigint() - start) / 1e9;
  };
  if ((opts.warmup ?? 0) > 0) await runWindow(opts.warmup ?? 0);
  const seconds = await runWindow(total);
  return { n: total, inFlight, seconds: round(seconds, 3), reqPerSec: round(total / seconds, 0) };
}

/**
 * Ratio of a candidate figure to the baseline figure of the same kind, rounded to 2 decimals.
 * For latencies > 1 means slower than the baseline; for throughput < 1 means slower.
 */
export function ratio(candidate: number, baseline: number): number {
  if (!Number.isFinite(candidate) || !Number.isFinite(baseline) || baseline === 0) return Number.NaN;
  return round(candidate / baseline, 2);
}

/** Description of the machine, stored with every result. */
export function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

/** Flatten nested objects into `a.b.c → value` rows for printing. */
function flatten(obj: unknown, prefix = "", out: Array<[string, unknown]> = []): Array<[string, unknown]> {
  if (obj !== null && typeof obj === "object" && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix === "" ? k : `${prefix}.${k}`, out);
  } else {
    out.push([prefix, obj]);
  }
  return out;
}

/** Print `obj` as a two-column table (nested keys joined with "."). */
export function printTable(title: string, obj: Record<string, unknown>): void {
  const rows = flatten(obj).map(([k, v]) => [k, typeof v === "number" ? v.toLocaleString("en-US") : String(v)] as const);
  const w = Math.max(10, ...rows.map(([k]) => k.length));
  console.log(`\n${title}`);
  console.log("-".repeat(w + 20));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v.padStart(16)}`);
}

/** Directory for result files: bench/results. */
export const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "results");

/**
 * Write `bench/results/<name>.json` (`{ name, date, machine, results }`) and print a table.
 *
 * @returns the path of the written file.
 */
export async function writeResult(name: string, results: Record<string, unknown>): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.json`);
  const doc = { name, date: new Date().toISOString(), machine: machineInfo(), results };
  await writeFile(file, JSON.stringify(doc, null, 2) + "\n", "utf8");
  printTable(`${name}  (${path.relative(process.cwd(), file)})`, results);
  return file;
}
