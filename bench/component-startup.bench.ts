/**
 * Benchmark "component-startup" (issue 3): cold start to first answer, and resident memory per idle component,
 * with the runtime in its own process (bench/component-host.ts), against raw NATS measured in the same run.
 *
 * Cold start = from sending the start command to the host process until the first successful HTTP answer of
 * http_hello_world_rust.wasm (1.7 MB) over the lattice, measured in this process. Cases: uncached compile and cached
 * compile in a host started just before (the start waits for the worker thread the runtime spawns at creation);
 * the same in a host that has been up for a second (its first worker thread is ready: the usual case); cached
 * compile in a host whose workers already run other components.
 * RSS per idle component: host RSS after starting N idle components minus RSS before, divided by N (adder.wasm and
 * hello world, each id its own component with one warm instance).
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { invokeHttp } from "../src/invocation/index.ts";
import { uniqueLattice } from "../src/testing/index.ts";
import { measureRawNats } from "./raw-nats.ts";
import { ComponentHostProcess, FIXTURES } from "./component-support.ts";

const HELLO = path.join(FIXTURES, "http_hello_world_rust.wasm");
const ADDER = path.join(FIXTURES, "adder.wasm");
const req = { method: "GET", pathWithQuery: "/", headers: [], body: new Uint8Array(0) };
const round = (x: number) => Math.round(x * 10) / 10;

async function coldStart(nc: NatsConnection, host: ComponentHostProcess, lattice: string, id: string): Promise<{ totalMs: number; startMs: number }> {
  const t0 = performance.now();
  const r = await host.cmd<{ ms: number }>({ op: "start", ref: HELLO, id });
  const res = await invokeHttp(nc, lattice, id, req, { timeoutMs: 10_000 });
  if (res.status !== 200) throw new Error(`unexpected status ${res.status}`);
  return { totalMs: round(performance.now() - t0), startMs: round(r.ms) };
}

async function rssPerComponent(natsUrl: string, ref: string, n: number): Promise<Record<string, number>> {
  const lattice = uniqueLattice("bench");
  const dir = await mkdtemp(path.join(tmpdir(), "trellis-bench-rss-"));
  const host = await ComponentHostProcess.start(natsUrl, lattice, path.join(dir, "cache"));
  try {
    await host.cmd({ op: "start", ref, id: "warm" }); // workers and compile cache warm
    const before = (await host.cmd<{ rss: number }>({ op: "rss" })).rss;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await host.cmd({ op: "start", ref, id: `c${i}` });
    const startAllMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
    const after = (await host.cmd<{ rss: number }>({ op: "rss" })).rss;
    const perMiB = (after - before) / n / 1048576;
    return {
      components: n + 1,
      rssBeforeMiB: round(before / 1048576),
      rssAfterMiB: round(after / 1048576),
      perComponentMiB: round(perMiB),
      componentsPer4GiB: Math.floor(4096 / perMiB),
      startEachMs: round(startAllMs / n),
    };
  } finally {
    await host.stop();
  }
}

export default async function componentStartup(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const raw = await measureRawNats(ctx.natsUrl, { requests: 2000, pipelinedRequests: 2000 });
  const nc = await connect({ servers: ctx.natsUrl });
  const results: Record<string, unknown> = { rawSerialP50Us: raw.serial.p50Us };
  try {
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-bench-cold-"));
    const cache = path.join(dir, "cache");
    const once = async (cacheDir: string, idleMs: number) => {
      const lattice = uniqueLattice("bench");
      const h = await ComponentHostProcess.start(ctx.natsUrl, lattice, cacheDir);
      await new Promise((r) => setTimeout(r, idleMs));
      try {
        return await coldStart(nc, h, lattice, "hello");
      } finally {
        await h.stop();
      }
    };
    results["uncachedJustStartedHost"] = await once(cache, 0);
    results["uncachedIdleHost"] = await once(path.join(dir, "cache2"), 1000);
    const fresh: { totalMs: number; startMs: number }[] = [];
    const idle: { totalMs: number; startMs: number }[] = [];
    for (let i = 0; i < 5; i++) {
      fresh.push(await once(cache, 0));
      idle.push(await once(cache, 1000));
    }
    const lattice2 = uniqueLattice("bench");
    const host = await ComponentHostProcess.start(ctx.natsUrl, lattice2, cache);
    await coldStart(nc, host, lattice2, "w0");
    await coldStart(nc, host, lattice2, "w1");
    const warm: { totalMs: number; startMs: number }[] = [];
    for (let i = 0; i < 5; i++) warm.push(await coldStart(nc, host, lattice2, `hello${i}`));
    await host.stop();
    const median = (xs: { totalMs: number }[]) => [...xs].sort((a, b) => a.totalMs - b.totalMs)[Math.floor(xs.length / 2)]!.totalMs;
    results["cachedJustStartedHost"] = { runs: fresh, medianMs: median(fresh) };
    results["cachedIdleHost"] = { runs: idle, medianMs: median(idle) };
    results["cachedWarmWorkers"] = { runs: warm, medianMs: median(warm) };

    results["rssAdder"] = await rssPerComponent(ctx.natsUrl, ADDER, 200);
    results["rssHello"] = await rssPerComponent(ctx.natsUrl, HELLO, 500);
  } finally {
    await nc.close();
  }
  return results;
}
