/**
 * Benchmark "security" (issue 8): the cost of TLS + credentials. The same two paths run on the anonymous plain-TCP
 * nats-server of the run and on a nats-server with TLS and an account of nkey users (src/testing/nats-secure.ts;
 * the host, its component workers and its spawned http-server provider connect as the `host` user over TLS; the
 * benchmark's own connection as `admin`):
 * - HTTP hello: the Rust hello-world fixture behind the http-server provider (as bench/http-hello.bench.ts), 32
 *   keep-alive connections;
 * - import call: a WAT guest whose export calls an imported `ping(u32) -> u32` 3,000 times, routed by a link to a
 *   target served by this process (as bench/component-calls.bench.ts); one round trip = the time between two
 *   consecutive arrivals at the target;
 * - raw NATS request/reply, one in flight, between two connections of this process: what TLS costs NATS itself, the
 *   floor under the import-call figure.
 * Order: plain, secure, plain, secure (alternating, so that drifting load on a shared machine hits both alike);
 * ratios are the mean of the secure runs ÷ the mean of the plain runs (≤ 1.3× expected for latencies, ≥ 0.77× for
 * throughput).
 * Env: BENCH_HTTP_SECONDS (default 8), BENCH_HTTP_CONNECTIONS (default 32).
 *
 * Fixture (`TRELLIS_FIXTURES_DIR`, bench/component-support.ts; read in place): http_hello_world_rust.wasm, Apache-2.0, from
 * wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parse } from "@bytecodealliance/jco";
import { CtlClient } from "../src/control/client.ts";
import { connectNats, parseNatsAuth, resolveNatsConnection, type NatsAuthOptions } from "../src/core/connection.ts";
import { silentLogger } from "../src/core/logger.ts";
import { Host } from "../src/host/host.ts";
import { demoWorkloads } from "../src/demo/stack.ts";
import { serveInterfaces, invoke, t } from "../src/invocation/index.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { startSecureTestNats, uniqueLattice, waitFor } from "../src/testing/index.ts";
import { ratio, summarize, type LatencySummary } from "./harness.ts";
import { load, type LoadResult } from "./http-load.ts";
import { FIXTURES, PINGER_WAT, ROOT } from "./component-support.ts";

const SECONDS = Number(process.env["BENCH_HTTP_SECONDS"] ?? 8);
const CONNECTIONS = Number(process.env["BENCH_HTTP_CONNECTIONS"] ?? 32);

interface Scenario {
  http: LoadResult;
  importRoundTrip: LatencySummary;
  /** Raw NATS request/reply (two connections of this process, one in flight): what TLS costs NATS itself. */
  rawNatsSerial: LatencySummary;
}

/** 3,000 requests (after 300 warm-up), 16 bytes each way, one in flight, between two connections with `auth`. */
async function rawSerial(natsUrl: string, auth: NatsAuthOptions, subject: string): Promise<LatencySummary> {
  const data = await resolveNatsConnection(natsUrl, parseNatsAuth(auth));
  const [a, b] = [await connectNats(data), await connectNats(data)];
  try {
    b.subscribe(subject, { callback: (_e, m) => void m.respond(m.data) });
    await b.flush();
    const payload = new Uint8Array(16);
    const samples: number[] = [];
    for (let i = 0; i < 3300; i++) {
      const t0 = performance.now();
      await a.request(subject, payload, { timeout: 5000 });
      if (i >= 300) samples.push((performance.now() - t0) * 1000);
    }
    return summarize(samples);
  } finally {
    await a.close();
    await b.close();
  }
}

/** One full run on one server: a host with `hostAuth`, the HTTP hello path under load, then the import loop. */
async function scenario(natsUrl: string, lattice: string, hostAuth: NatsAuthOptions, clientAuth: NatsAuthOptions, pinger: string): Promise<Scenario> {
  const host = await Host.create({ natsUrl, natsAuth: hostAuth, lattice, logger: silentLogger, cacheDir: path.join(ROOT, ".cache", "bench-host"), workloads: demoWorkloads(), allowedPaths: [FIXTURES, path.dirname(pinger)] });
  const client = await CtlClient.connect({ natsUrl, lattice, natsAuth: clientAuth, timeoutMs: 10_000 });
  const nc = await connectNats(await resolveNatsConnection(natsUrl, parseNatsAuth(clientAuth)));
  try {
    const port = await getFreePort();
    await client.startProvider(host.id, { provider_id: "http", provider_ref: "http-server" });
    await client.putConfig("hello-http", { address: `127.0.0.1:${port}` });
    await client.putLink({ source_id: "http", target: "hello", wit_namespace: "wasi", wit_package: "http", interfaces: ["incoming-handler"], source_config: ["hello-http"] });
    await client.scaleComponent(host.id, { component_ref: path.join(FIXTURES, "http_hello_world_rust.wasm"), component_id: "hello", count: 2 });
    const url = `http://127.0.0.1:${port}/`;
    await waitFor(async () => (await fetch(url).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, intervalMs: 200, message: `${url} to answer` });
    const http = await load(url, { connections: CONNECTIONS, seconds: SECONDS, warmupSeconds: 2 });

    let arrivals: number[] = [];
    serveInterfaces(nc, { lattice, targetId: "pingtarget" }, [
      {
        type: { name: "test:bench/ping@0.1.0", resources: [], functions: { ping: t.func([["x", t.u32]], t.u32) } },
        handlers: {
          ping: (x: number) => {
            arrivals.push(performance.now());
            return x;
          },
        },
      },
    ]);
    await nc.flush();
    await client.putLink({ source_id: "pinger", target: "pingtarget", wit_namespace: "test", wit_package: "bench", interfaces: ["ping"] });
    await client.scaleComponent(host.id, { component_ref: pinger, component_id: "pinger", count: 1 });
    const run = t.func([["n", t.u32]], t.u32);
    const call = { lattice, targetId: "pinger", iface: "test:bench/api", fn: "run", timeoutMs: 60_000 };
    await waitFor(async () => (await invoke(nc, { ...call, timeoutMs: 2000 }, run, [10]).catch(() => undefined)) !== undefined, { timeoutMs: 30_000, message: "pinger to answer" });
    await invoke(nc, call, run, [500]);
    const deltas: number[] = [];
    for (let round = 0; round < 3; round++) {
      arrivals = [];
      await invoke(nc, call, run, [3000]);
      for (let i = 1; i < arrivals.length; i++) deltas.push((arrivals[i]! - arrivals[i - 1]!) * 1000);
    }
    const rawNatsSerial = await rawSerial(natsUrl, clientAuth, `trellis.inv.v1.${lattice}.rawbench.x`);
    return { http, importRoundTrip: summarize(deltas), rawNatsSerial };
  } finally {
    await nc.close();
    await client.close();
    await host.stop();
  }
}

function httpRow(r: LoadResult) {
  return { reqPerSec: r.reqPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms, requests: r.requests, errors: r.errors };
}

const mean = (a: number, b: number) => (a + b) / 2;

export default async function security(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(tmpdir(), "trellis-bench-sec-"));
  const pinger = path.join(dir, "pinger.wasm");
  await writeFile(pinger, await parse(PINGER_WAT));
  try {
    // alternate, so that drifting load on a shared machine hits both alike
    const plainRuns: Scenario[] = [];
    const secureRuns: Scenario[] = [];
    for (let round = 0; round < 2; round++) {
      plainRuns.push(await scenario(ctx.natsUrl, uniqueLattice("benchplain"), {}, {}, pinger));
      // a fresh secured server per run: its account holds one lattice
      const lattice = uniqueLattice("benchsec");
      const secure = await startSecureTestNats(lattice);
      try {
        secureRuns.push(await scenario(secure.url, lattice, secure.auth("host"), secure.auth("admin"), pinger));
      } finally {
        await secure.stop();
      }
    }
    const summary = (runs: Scenario[]) => ({
      reqPerSec: mean(runs[0]!.http.reqPerSec, runs[1]!.http.reqPerSec),
      httpP50Ms: mean(runs[0]!.http.p50Ms, runs[1]!.http.p50Ms),
      httpP99Ms: mean(runs[0]!.http.p99Ms, runs[1]!.http.p99Ms),
      importP50Us: mean(runs[0]!.importRoundTrip.p50Us, runs[1]!.importRoundTrip.p50Us),
      importP99Us: mean(runs[0]!.importRoundTrip.p99Us, runs[1]!.importRoundTrip.p99Us),
      rawNatsP50Us: mean(runs[0]!.rawNatsSerial.p50Us, runs[1]!.rawNatsSerial.p50Us),
    });
    const plain = summary(plainRuns);
    const sec = summary(secureRuns);
    const ratios = {
      httpReqPerSecSecureVsPlain: ratio(sec.reqPerSec, plain.reqPerSec),
      httpP50SecureVsPlain: ratio(sec.httpP50Ms, plain.httpP50Ms),
      httpP99SecureVsPlain: ratio(sec.httpP99Ms, plain.httpP99Ms),
      importP50SecureVsPlain: ratio(sec.importP50Us, plain.importP50Us),
      importP99SecureVsPlain: ratio(sec.importP99Us, plain.importP99Us),
      rawNatsP50SecureVsPlain: ratio(sec.rawNatsP50Us, plain.rawNatsP50Us),
    };
    process.stdout.write(
      `security: http ${sec.reqPerSec} req/s secure vs ${plain.reqPerSec} plain (×${ratios.httpReqPerSecSecureVsPlain}), ` +
        `import p50 ${sec.importP50Us} µs vs ${plain.importP50Us} µs (×${ratios.importP50SecureVsPlain})\n`,
    );
    const row = (r: Scenario) => ({ http: httpRow(r.http), importRoundTrip: r.importRoundTrip, rawNatsSerial: r.rawNatsSerial });
    return {
      tool: secureRuns[0]!.http.tool,
      connections: CONNECTIONS,
      seconds: SECONDS,
      loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
      secureSetup: "TLS (server certificate, CA given to every client) + nkey users in a per-lattice account",
      runs: { plain: plainRuns.map(row), secure: secureRuns.map(row) },
      plainMean: plain,
      secureMean: sec,
      ratios,
      goal: {
        httpThroughputWithin1_3x: ratios.httpReqPerSecSecureVsPlain >= 1 / 1.3,
        httpP50Within1_3x: ratios.httpP50SecureVsPlain <= 1.3,
        importP50Within1_3x: ratios.importP50SecureVsPlain <= 1.3,
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
