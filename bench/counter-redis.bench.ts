/**
 * Benchmark "counter-redis": the demo's counter path — HTTP → http-server provider → lattice → counter component
 * (examples/counter, componentize-js) → kv-redis → Redis for the `default` link, and → kv-memory for the `cache` link —
 * deployed from examples/counter/app.yaml exactly as `npm run demo` does, at 32 keep-alive connections.
 *
 * Baseline in the same run: a plain Node `http` server doing the same work without Trellis (Redis `INCR` through
 * ioredis plus an in-memory increment, the same JSON answer). The Redis count must cover every 200 answer.
 * Also measured: one connection (the unloaded latency of the path), and the hello example (the same JavaScript
 * engine, no import calls) to tell the engine's cost from the cost of the key-value calls per request, deployed at the
 * counter's instance count (like for like: examples/hello/app.yaml asks for fewer).
 * CPU per request of every process (`cpu`: `bench` = the host with its component workers, the providers, nats-server,
 * redis-server; bench/cpu.ts) for each Trellis phase. The Redis count is read right before and after the measured
 * phase, so "covers every 200" is checked over that phase alone.
 * Env: BENCH_HTTP_SECONDS (default 10), BENCH_HTTP_CONNECTIONS (default 32).
 */
import { createServer } from "node:http";
import { loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { startTestRedis, uniqueLattice, waitFor } from "../src/testing/index.ts";
import { deployExample, exampleApps, type ExampleApp } from "../src/demo/apps.ts";
import { parse as parseYaml } from "yaml";
import { buildExamples } from "../src/demo/build.ts";
import { startDemoHost } from "../src/demo/stack.ts";
import { ratio } from "./harness.ts";
import { load, type LoadResult } from "./http-load.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SECONDS = Number(process.env["BENCH_HTTP_SECONDS"] ?? 10);
const CONNECTIONS = Number(process.env["BENCH_HTTP_CONNECTIONS"] ?? 32);

/** Instances of the first component of an app manifest (its spreadscaler or daemonscaler). */
function componentInstances(text: string): number {
  const m = parseYaml(text) as { spec: { components: { type: string; traits?: { type: string; properties?: { instances?: number; replicas?: number } }[] }[] } };
  const c = m.spec.components.find((x) => x.type === "component");
  const scaler = c?.traits?.find((tr) => tr.type === "spreadscaler" || tr.type === "daemonscaler");
  const n = scaler?.properties?.instances ?? scaler?.properties?.replicas;
  if (typeof n !== "number") throw new Error("the manifest's component has no instance count");
  return n;
}

/** The hello app with its component at `instances` instances: the JS hello is compared like for like with the counter. */
function sameInstances(app: ExampleApp, instances: number): ExampleApp {
  if (componentInstances(app.text) === instances) return app;
  const text = app.text.replace(/^(\s*instances:\s*)\d+\s*$/m, `$1${instances}`);
  if (componentInstances(text) !== instances) throw new Error(`could not set the hello component's instances to ${instances}`);
  return { ...app, text };
}

function row(r: LoadResult) {
  return { reqPerSec: r.reqPerSec, p50Ms: r.p50Ms, p90Ms: r.p90Ms, p99Ms: r.p99Ms, requests: r.requests, errors: r.errors, ...(r.cpu ? { cpu: r.cpu } : {}) };
}

async function baseline(redisUrl: string): Promise<{ r: LoadResult; serial: LoadResult; countOk: boolean }> {
  const redis = new Redis(redisUrl);
  await redis.del("baseline:hits");
  let cache = 0;
  const port = await getFreePort();
  const server = createServer((_req, res) => {
    redis.incr("baseline:hits").then(
      (n) => {
        const body = `${JSON.stringify({ default: n, cache: ++cache })}\n`;
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      },
      (err: Error) => {
        res.writeHead(500);
        res.end(err.message);
      },
    );
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  try {
    const r = await load(`http://127.0.0.1:${port}/`, { connections: CONNECTIONS, seconds: SECONDS, warmupSeconds: 2 });
    const count = Number(await redis.get("baseline:hits"));
    const serial = await load(`http://127.0.0.1:${port}/`, { connections: 1, seconds: 5 });
    return { r, serial, countOk: count >= r.requests };
  } finally {
    server.close();
    server.closeAllConnections();
    redis.disconnect();
  }
}

export default async function counterRedis(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const loadBefore = loadavg()[0];
  await buildExamples(["counter", "hello"]);
  const redis = await startTestRedis({ private: true });
  const lattice = uniqueLattice("counter");
  const host = await startDemoHost({ natsUrl: ctx.natsUrl, lattice, logger: silentLogger, cacheDir: path.join(ROOT, ".cache", "bench-host") });
  const client = await CtlClient.connect({ natsUrl: ctx.natsUrl, lattice, timeoutMs: 5000 });
  let t: LoadResult;
  let serial: LoadResult;
  let jsHello: LoadResult;
  let inRedis: number;
  let instances: number;
  try {
    const apps = await exampleApps({ defaultKv: "redis", redisUrl: redis.url, helloAddress: `127.0.0.1:${await getFreePort()}`, counterAddress: `127.0.0.1:${await getFreePort()}` });
    const counter = apps.find((a) => a.name === "counter")!;
    instances = componentInstances(counter.text);
    const hello = sameInstances(apps.find((a) => a.name === "hello")!, instances);
    for (const app of [hello, counter]) {
      await deployExample(client, app);
      await waitFor(async () => (await fetch(app.url).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, intervalMs: 200 });
    }
    // the Redis count over the measured phase only: read before and after it
    const r = new Redis(redis.url);
    await load(counter.url, { connections: CONNECTIONS, seconds: 3 });
    const countBefore = Number(await r.get("counter:hits"));
    t = await load(counter.url, { connections: CONNECTIONS, seconds: SECONDS, cpu: true });
    inRedis = Number(await r.get("counter:hits")) - countBefore;
    r.disconnect();
    serial = await load(counter.url, { connections: 1, seconds: 5, cpu: true });
    jsHello = await load(hello.url, { connections: CONNECTIONS, seconds: 5, warmupSeconds: 2, cpu: true });
  } finally {
    await client.close();
    await host.stop();
  }
  const b = await baseline(redis.url);
  await redis.stop();
  const result = {
    tool: t.tool,
    connections: CONNECTIONS,
    instances,
    seconds: SECONDS,
    loadAverage1m: { before: Math.round((loadBefore ?? 0) * 100) / 100, after: Math.round((loadavg()[0] ?? 0) * 100) / 100 },
    trellis: { ...row(t), redisCountInMeasuredPhase: inRedis, redisCountCoversAnswers: inRedis >= t.requests },
    trellisOneConnection: row(serial),
    jsHelloSameEngine: row(jsHello),
    plainNodeRedis: { ...row(b.r), redisCountCoversAnswers: b.countOk },
    plainNodeRedisOneConnection: row(b.serial),
    ratios: {
      reqPerSecVsPlainNode: ratio(t.reqPerSec, b.r.reqPerSec),
      p50VsPlainNode: ratio(t.p50Ms, b.r.p50Ms),
      p99VsPlainNode: ratio(t.p99Ms, b.r.p99Ms),
      oneConnectionP50VsPlainNode: ratio(serial.p50Ms, b.serial.p50Ms),
      reqPerSecVsJsHello: ratio(t.reqPerSec, jsHello.reqPerSec),
      cpuPerRequestVsJsHello: ratio(t.cpu?.totalUs ?? Number.NaN, jsHello.cpu?.totalUs ?? Number.NaN),
    },
  };
  process.stdout.write(
    `counter-redis: trellis ${t.reqPerSec} req/s p50 ${t.p50Ms} ms p99 ${t.p99Ms} ms | plain node+redis ${b.r.reqPerSec} req/s p99 ${b.r.p99Ms} ms | ` +
      `×${result.ratios.reqPerSecVsPlainNode} (${t.tool}, ${CONNECTIONS} connections); one connection p50 ${serial.p50Ms} ms vs ${b.serial.p50Ms} ms; ` +
      `JS hello ${jsHello.reqPerSec} req/s\n`,
  );
  return result;
}
