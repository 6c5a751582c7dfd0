/**
 * HTTP load generation for the HTTP benchmarks: `wrk` when installed (`apt-get install -y wrk`), else a Node load
 * generator with keep-alive connections. Both report requests per second and latency quantiles in milliseconds.
 */
import { execFile } from "node:child_process";
import { Agent, request } from "node:http";
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
 * @param tool `wrk` or `node`; default: wrk when installed.
 */
export async function load(url: string, opts: { connections: number; seconds: number; warmupSeconds?: number; tool?: "wrk" | "node" }): Promise<LoadResult> {
  const tool = opts.tool ?? ((await hasWrk()) ? "wrk" : "node");
  const run = tool === "wrk" ? runWrk : runNode;
  if (opts.warmupSeconds) await run(url, opts.connections, opts.warmupSeconds);
  return run(url, opts.connections, opts.seconds);
}
