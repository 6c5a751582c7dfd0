/**
 * `npm run demo`: one command from a fresh clone to real components answering real HTTP requests through links to
 * real providers (docs/demo.md). `scripts/bootstrap.mjs demo` has installed npm dependencies and nats-server; this
 * program then
 *   1. uses the NATS server at --nats-url or starts one there,
 *   2. uses the Redis at 127.0.0.1:6379, or starts redis-server there when it is installed, else falls back to NATS KV,
 *   3. builds the example components from source with componentize-js (cached in .cache/),
 *   4. starts a host that runs components and providers,
 *   5. deploys examples/hello/app.yaml and examples/counter/app.yaml (or app-nats.yaml) as `trellis app deploy` does,
 *   6. waits for the first answers, prints the URLs and what to try, and on Ctrl-C undeploys and stops everything.
 *
 * Flags (all optional): --nats-url URL, --lattice NAME, --no-redis, --redis-url URL, --hello-port N, --counter-port N,
 * --exit-when-ready (stop after the first answers; for tests), --help.
 * @module
 */
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { CtlClient } from "../control/client.ts";
import { TrellisError } from "../core/errors.ts";
import { createLogger } from "../core/logger.ts";
import type { Host } from "../host/host.ts";
import { pingRedis } from "../testing/redis.ts";
import { deployExample, exampleApps, undeployExamples, type DefaultKv } from "./apps.ts";
import { buildExamples, DEFAULT_CACHE_DIR, REPO_ROOT } from "./build.ts";
import { DEMO_NATS_URL, ensureNats, ensureRedis, startDemoHost, type DemoNats, type DemoRedis } from "./stack.ts";

const out = (s = "") => process.stdout.write(`${s}\n`);
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const step = (n: number, s: string) => out(`${bold(`[${n}/6]`)} ${s}`);

const HELP = `npm run demo [-- flags]

Starts NATS (if needed), Redis (if installed), a Trellis host, and deploys the hello and counter examples.
  --nats-url URL       NATS to use or start (default ${DEMO_NATS_URL})
  --lattice NAME       lattice name (default "default")
  --no-redis           use NATS JetStream KV behind the counter's default link even when Redis is available
  --redis-url URL      use this Redis instead of 127.0.0.1:6379
  --hello-port N       port of the hello app (default 8080)
  --counter-port N     port of the counter app (default 8081)
  --exit-when-ready    stop everything once both apps answered (for tests)
`;

interface Flags {
  natsUrl: string;
  lattice: string;
  redis: boolean;
  redisUrl: string | undefined;
  helloPort: number;
  counterPort: number;
  exitWhenReady: boolean;
}

function flags(): Flags | undefined {
  const { values } = parseArgs({
    options: {
      "nats-url": { type: "string" },
      lattice: { type: "string" },
      "no-redis": { type: "boolean" },
      "redis-url": { type: "string" },
      "hello-port": { type: "string" },
      "counter-port": { type: "string" },
      "exit-when-ready": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    out(HELP);
    return undefined;
  }
  const port = (v: string | undefined, d: number) => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`bad port ${v}`);
    return n;
  };
  return {
    natsUrl: values["nats-url"] ?? DEMO_NATS_URL,
    lattice: values.lattice ?? "default",
    redis: values["no-redis"] !== true,
    redisUrl: values["redis-url"],
    helloPort: port(values["hello-port"], 8080),
    counterPort: port(values["counter-port"], 8081),
    exitWhenReady: values["exit-when-ready"] === true,
  };
}

async function portFree(port: number): Promise<boolean> {
  const net = await import("node:net");
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** Polls `url` until it answers 200; reports progress every few seconds. */
async function firstAnswer(url: string, timeoutMs: number, onWait: (s: number) => void): Promise<string> {
  const started = Date.now();
  let lastReport = started;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      if (res.status === 200) return text.trim();
    } catch {
      // not yet
    }
    if (Date.now() - started > timeoutMs) throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s (see the log)`);
    if (Date.now() - lastReport > 4000) {
      lastReport = Date.now();
      onWait(Math.round((Date.now() - started) / 1000));
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main(): Promise<number> {
  const f = flags();
  if (!f) return 0;
  const demoDir = path.join(DEFAULT_CACHE_DIR, "demo");
  await mkdir(demoDir, { recursive: true });
  const logFile = path.join(demoDir, "trellis.log");
  const logStream = createWriteStream(logFile, { flags: "w" });
  const logger = createLogger({ level: "info", json: false, destination: logStream });
  const rel = (p: string) => path.relative(process.cwd(), p) || ".";

  let nats: DemoNats | undefined;
  let redis: DemoRedis | undefined;
  let host: Host | undefined;
  let client: CtlClient | undefined;
  const deployed: string[] = [];
  let stopping: Promise<void> | undefined;

  const shutdown = (why: string): Promise<void> =>
    (stopping ??= (async () => {
      out();
      out(`${bold("Stopping")} (${why}) …`);
      if (client && deployed.length > 0) {
        const problems = await Promise.race([
          undeployExamples(client, deployed),
          new Promise<string[]>((r) => setTimeout(() => r(["timed out"]), 5000).unref()),
        ]);
        out(problems.length ? `  undeploy: ${problems.join("; ")}` : `  undeployed ${deployed.join(", ")}`);
      }
      await client?.close().catch(() => undefined);
      if (host) {
        await host.stop(5000);
        out("  host stopped (its providers with it)");
      }
      if (redis?.started) {
        await redis.stop();
        out("  redis-server stopped");
      }
      if (nats?.started) {
        await nats.stop();
        out("  nats-server stopped");
      }
      await new Promise<void>((r) => logStream.end(() => r()));
      out("Bye.");
    })());

  let firstSignal = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    const now = Date.now();
    // npm and scripts/bootstrap.mjs forward the terminal's SIGINT too: a second one within 2 s is the same Ctrl-C.
    if (firstSignal && now - firstSignal > 2000) {
      out("Forced exit.");
      process.exit(130);
    }
    if (!firstSignal) {
      firstSignal = now;
      void shutdown(sig === "SIGINT" ? "Ctrl-C" : sig).then(() => process.exit(130));
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  out(bold("Trellis demo") + dim(` — logs: ${rel(logFile)}`));
  try {
    step(1, `NATS at ${f.natsUrl} …`);
    nats = await ensureNats(f.natsUrl);
    out(`      ${nats.started ? `started nats-server at ${nats.url} (JetStream)` : `using the NATS server already running at ${nats.url}`}`);

    step(2, "Redis …");
    let defaultKv: DefaultKv = "nats";
    let redisUrl: string | undefined;
    if (f.redisUrl) {
      const u = new URL(f.redisUrl);
      if (!(await pingRedis(u.hostname, Number(u.port || 6379), 1000))) throw new Error(`no Redis answers at ${f.redisUrl}`);
      defaultKv = "redis";
      redisUrl = f.redisUrl;
      out(`      using ${f.redisUrl}`);
    } else if (f.redis) {
      redis = await ensureRedis(path.join(demoDir, "redis"));
      if (redis) {
        defaultKv = "redis";
        redisUrl = redis.url;
        out(`      ${redis.started ? `started redis-server at ${redis.url}` : `using the Redis already running at ${redis.url}`}`);
      } else {
        out("      no Redis at 127.0.0.1:6379 and redis-server is not installed: the counter's default link uses NATS JetStream KV");
        out(dim("      (to see the Redis path: sudo apt-get install -y redis-server, then run the demo again)"));
      }
    } else {
      out("      --no-redis: the counter's default link uses NATS JetStream KV");
    }

    step(3, "Building the example components from examples/ with componentize-js (cached in .cache/) …");
    const builds = await buildExamples(["hello", "counter"], {
      onProgress: (p) => {
        if (p.phase === "cached") out(`      ${p.name}: cached`);
        else if (p.phase === "start") out(`      ${p.name}: building (the first build takes 10–40 s) …`);
        else if (p.phase === "tick" && p.elapsedMs % 10_000 < 2_000) out(dim(`      ${p.name}: still building, ${Math.round(p.elapsedMs / 1000)} s`));
        else if (p.phase === "done") out(`      ${p.name}: built in ${(p.elapsedMs / 1000).toFixed(1)} s`);
      },
      tickMs: 2_000,
    });
    for (const b of builds) out(dim(`      ${rel(b.stableFile)} (${(b.bytes / 1e6).toFixed(1)} MB)`));

    for (const [port, what] of [[f.helloPort, "hello"], [f.counterPort, "counter"]] as const) {
      if (!(await portFree(port))) throw new Error(`port ${port} (the ${what} app) is in use; free it or pass --${what}-port N`);
    }

    step(4, `Starting a host on lattice "${f.lattice}" …`);
    host = await startDemoHost({ natsUrl: nats.url, lattice: f.lattice, logger, cacheDir: path.join(DEFAULT_CACHE_DIR, "host") });
    out(`      host ${host.friendlyName} (${host.id.slice(0, 12)}…) runs components and capability providers`);
    client = await CtlClient.connect({ natsUrl: nats.url, lattice: f.lattice, timeoutMs: 5000 });

    const apps = await exampleApps({
      defaultKv,
      helloAddress: `127.0.0.1:${f.helloPort}`,
      counterAddress: `127.0.0.1:${f.counterPort}`,
      ...(redisUrl ? { redisUrl } : {}),
    });
    step(5, "Deploying the example apps …");
    for (const app of apps) {
      out(`      $ trellis app deploy ${app.file} --wait`);
      deployed.push(app.name);
      const r = await deployExample(client, app);
      out(dim(`        ${r.outcome}: ${r.actions.length} request(s), status ${r.status.status}`));
    }

    step(6, "Waiting for the first answers (the host compiles each component once) …");
    const answers: string[] = [];
    for (const app of apps) {
      const a = await firstAnswer(app.url, 120_000, (s) => out(dim(`      ${app.name}: waiting, ${s} s`)));
      answers.push(a);
      out(`      ${app.url} → ${a}`);
    }

    const lat = f.lattice === "default" ? "" : ` --lattice ${f.lattice}`;
    const nurl = nats.url === DEMO_NATS_URL ? "" : ` --nats-url ${nats.url}`;
    const g = `${lat}${nurl}`;
    const [hello, counter] = apps as [(typeof apps)[0], (typeof apps)[0]];
    const target = defaultKv === "redis" ? "kv-redis" : "kv-nats";
    const cfg = defaultKv === "redis" ? "counter-redis" : "counter-bucket";
    out();
    out(bold("Ready."));
    out(`  hello    ${hello.url}        (examples/hello: a JavaScript component behind the http-server provider)`);
    out(`  counter  ${counter.url}        (examples/counter: links default → ${target}, cache → kv-memory)`);
    out();
    out(bold("Try, in another terminal (from this folder):"));
    out(`  curl ${hello.url}hi`);
    out(`  while sleep 0.3; do curl -s ${counter.url}; done          # keep this running …`);
    out(`  npx trellis link replace counter ${target} wasi keyvalue --link-name cache --interface store --interface atomics --target-config ${cfg}${g}`);
    out(dim(`      … and watch "cache" jump to the ${defaultKv === "redis" ? "Redis" : "NATS KV"} count: one KV update re-pointed the link, nothing restarted`));
    out(`  npx trellis link get${g}`);
    out(`  npx trellis get inventory${g}`);
    out(`  npx trellis app status counter${g}`);
    out();
    out(`Ctrl-C stops everything. ${dim(`(log: ${rel(logFile)})`)}`);
    if (f.exitWhenReady) {
      await shutdown("--exit-when-ready");
      return 0;
    }
    await host.stopped;
    if (!stopping) await shutdown("the host stopped");
    return 0;
  } catch (err) {
    const e = TrellisError.from(err);
    out();
    out(`${bold("The demo could not start:")} ${e.message}`);
    out(dim(`(details in ${rel(logFile)}; cwd ${rel(REPO_ROOT)})`));
    await shutdown("error");
    return 1;
  }
}

process.exitCode = await main();
