/**
 * HTTP load generation for the HTTP benchmarks: `wrk` when installed (`apt-get install -y wrk`), else a Node load
 * generator with keep-alive connections, run in a child process of its own (`node bench/http-load.ts URL CONNECTIONS
 * SECONDS` prints one JSON {@link LoadResult}) so that its CPU is not counted as the host's. Both report requests per
 * second and latency quantiles in milliseconds; with `cpu: true`, also the CPU per request of every process (./cpu.ts).
 */
import { execFile } from "node:child_process";
import { Agent, request } from "node:http";
import { fileURLToPath } from "node:url";
import { cpuPerRequest, cpuSnapshot, type CpuPerRequest } from "./cpu.ts";
import { quantile } from "./harness.ts";

/** Result of one load run. */
export interface LoadResult {
  /** `wrk` or `node`. */
  tool: string;
  connections: number;
  seconds: number;
  requests: number;
  reqPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** Responses with a status other than 2xx/3xx, plus socket errors and timeouts. */
  errors: number;
  /** CPU per answered request of every process during the measured run (with `cpu: true`). */
  cpu?: CpuPerRequest;
}

/** True when `wrk` can be run. */
export function hasWrk(): Promise<boolean> {
  return new Promise((resolve) => execFile("wrk", ["--version"], (err, stdout, stderr) => resolve(!err || /^wrk /m.test(`${stdout}${stderr}`))));
}

function ms(v: string, unit: string): number {
  const n = Number(v);
  return unit === "us" ? n / 1000 : unit === "s" ? n * 1000 : n;
}

/** Parses `wrk --latency` output. */
export function parseWrk(out: string, connections: number, seconds: number): LoadResult {
  const q = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(out);
    return m ? ms(m[1]!, m[2]!) : Number.NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    tool: "wrk",
    connections,
    seconds,
    requests,
    reqPerSec: Math.round(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN)),
    p50Ms: q("50"),
    p90Ms: q("90"),
    p99Ms: q("99"),
    errors: non2xx + sockErrors,
  };
}

function runWrk(url: string, connections: number, seconds: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile("wrk", [`-t${Math.min(2, connections)}`, `-c${connections}`, `-d${seconds}s`, "--latency", "--timeout", "5s", url], { timeout: (seconds + 30) * 1000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(parseWrk(stdout, connections, seconds));
    });
  });
}

/** The Node load generator in a child process (its CPU shows as `http-load`, not as this process's). */
function runNodeChild(url: string, connections: number, seconds: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [fileURLToPath(import.meta.url), url, String(connections), String(seconds)], { timeout: (seconds + 30) * 1000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(JSON.parse(stdout) as LoadResult);
    });
  });
}

async function runNode(url: string, connections: number, seconds: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const samples: number[] = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = request(url, { agent }, (res) => {
        res.resume();
        res.on("end", () => {
          if ((res.statusCode ?? 0) >= 400) errors++;
          samples.push(performance.now() - t0);
          resolve();
        });
      });
      req.on("error", () => {
        errors++;
        resolve();
      });
      req.end();
    });
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (Date.now() < end) await one();
  }));
  const wall = (performance.now() - started) / 1000;
  agent.destroy();
  samples.sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    tool: "node",
    connections,
    seconds: r(wall),
    requests: samples.length,
    reqPerSec: Math.round(samples.length / wall),
    p50Ms: r(quantile(samples, 0.5)),
    p90Ms: r(quantile(samples, 0.9)),
    p99Ms: r(quantile(samples, 0.99)),
    errors,
  };
}

/**
 * Loads `url` with `connections` keep-alive connections for `seconds` (after `warmupSeconds` unmeasured).
 * @param tool `wrk` or `node` (in a child process); default: wrk when installed.
 * @param cpu also measure the CPU per request of this process and every process below it (./cpu.ts) during the
 *   measured run.
 */
export async function load(
  url: string,
  opts: { connections: number; seconds: number; warmupSeconds?: number; tool?: "wrk" | "node"; cpu?: boolean },
): Promise<LoadResult> {
  const tool = opts.tool ?? ((await hasWrk()) ? "wrk" : "node");
  const run = tool === "wrk" ? runWrk : runNodeChild;
  if (opts.warmupSeconds) await run(url, opts.connections, opts.warmupSeconds);
  const before = opts.cpu ? cpuSnapshot() : undefined;
  const r = await run(url, opts.connections, opts.seconds);
  if (before) {
    r.cpu = cpuPerRequest(before, cpuSnapshot(), r.requests);
    // the child load generator has exited by now: it reports its own CPU
    const gen = (r as LoadResult & { generatorCpuMs?: number }).generatorCpuMs;
    if (gen !== undefined) r.cpu.byProcessUs["http-load"] = Math.round(((gen * 1000) / Math.max(1, r.requests)) * 10) / 10;
  }
  delete (r as LoadResult & { generatorCpuMs?: number }).generatorCpuMs;
  return r;
}

if (import.meta.main) {
  const [url, connections, seconds] = process.argv.slice(2);
  if (!url || !connections || !seconds) {
    process.stderr.write("usage: node bench/http-load.ts URL CONNECTIONS SECONDS\n");
    process.exit(2);
  }
  const cpu0 = process.cpuUsage();
  const r = await runNode(url, Number(connections), Number(seconds));
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ ...r, generatorCpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
}
