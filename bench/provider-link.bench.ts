/**
 * Benchmark "provider-link": link.put → provider callback latency (issue 4 goal: p99 ≤ 20 ms).
 *
 * A host (this process) supervises a spawned provider process; a control client (this process) sends `link.put`
 * requests one after another, each for a new source. The provider writes a conformance trace line with the wall-clock
 * time of its link-put callback (`t`, ms since the epoch, from `performance.timeOrigin + performance.now()`); the
 * latency is that time minus the time just before the request was sent. Both processes read the same clock.
 *
 * Providers measured: kv-memory (TypeScript SDK) and, when python3 is available, providers/python-kv (stdlib only).
 * The baseline is raw NATS request/reply measured in the same run.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import { Host } from "../src/host/host.ts";
import { providerSupervisor } from "../src/provider/supervisor.ts";
import { uniqueLattice } from "../src/testing/index.ts";
import { ratio, summarize } from "./harness.ts";
import { measureRawNats } from "./raw-nats.ts";

const TRACE_PREFIX = "TRELLIS_TRACE ";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PUTS = 300;
const WARMUP = 30;

const now = () => performance.timeOrigin + performance.now();

async function measure(natsUrl: string, providerRef: string): Promise<{ callback: ReturnType<typeof summarize>; putReply: ReturnType<typeof summarize> }> {
  const lattice = uniqueLattice("bench");
  const waiters = new Map<string, (t: number) => void>();
  const host = await Host.create({
    natsUrl,
    lattice,
    logger: silentLogger,
    // the Python provider is started by path: the host may load it from its directory only
    allowedPaths: [path.join(ROOT, "providers", "python-kv")],
    workloads: {
      providers: providerSupervisor({
        firstHealthCheckMs: 200,
        onOutput: (_id, stream, line) => {
          if (stream !== "stdout" || !line.startsWith(TRACE_PREFIX)) return;
          const r = JSON.parse(line.slice(TRACE_PREFIX.length)) as { event: string; source_id?: string; t: number };
          if (r.event === "link_put" && r.source_id) waiters.get(r.source_id)?.(r.t);
          if (r.event === "init") waiters.get("__init")?.(r.t);
        },
      }),
    },
  });
  const client = await CtlClient.connect({ natsUrl, lattice, timeoutMs: 5000 });
  try {
    await client.putConfig("trace", { trellis_conformance_trace: "stdout" });
    const ready = new Promise<number>((r) => waiters.set("__init", r));
    await client.startProvider(host.id, { provider_id: "kv", provider_ref: providerRef, config: ["trace"] });
    await ready;
    await new Promise((r) => setTimeout(r, 300));
    const callback: number[] = [];
    const putReply: number[] = [];
    for (let i = 0; i < WARMUP + PUTS; i++) {
      const source = `s${i}`;
      const seen = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no callback for ${source} within 5 s`)), 5000);
        waiters.set(source, (t) => {
          clearTimeout(timer);
          resolve(t);
        });
      });
      const t0 = now();
      await client.putLink({ source_id: source, target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] });
      const t1 = now();
      const tc = await seen;
      waiters.delete(source);
      if (i >= WARMUP) {
        callback.push((tc - t0) * 1000);
        putReply.push((t1 - t0) * 1000);
      }
    }
    return { callback: summarize(callback), putReply: summarize(putReply) };
  } finally {
    await client.close();
    await host.stop();
  }
}

function hasPython(): boolean {
  return spawnSync("python3", ["--version"]).status === 0;
}

export default async function providerLink(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const raw = await measureRawNats(ctx.natsUrl, { requests: 2000, pipelinedRequests: 2000 });
  const ts = await measure(ctx.natsUrl, "kv-memory");
  const out: Record<string, unknown> = {
    puts: PUTS,
    baselineRawNatsP50Us: raw.serial.p50Us,
    sdkProvider: {
      callbackP50Us: ts.callback.p50Us,
      callbackP90Us: ts.callback.p90Us,
      callbackP99Us: ts.callback.p99Us,
      callbackMaxUs: ts.callback.maxUs,
      putReplyP50Us: ts.putReply.p50Us,
      callbackP50VsRawNats: ratio(ts.callback.p50Us, raw.serial.p50Us),
    },
  };
  const py = path.join(ROOT, "providers", "python-kv", "provider.py");
  if (existsSync(py) && hasPython()) {
    const p = await measure(ctx.natsUrl, py);
    out.pythonProvider = {
      callbackP50Us: p.callback.p50Us,
      callbackP90Us: p.callback.p90Us,
      callbackP99Us: p.callback.p99Us,
      callbackMaxUs: p.callback.maxUs,
      putReplyP50Us: p.putReply.p50Us,
      callbackP50VsRawNats: ratio(p.callback.p50Us, raw.serial.p50Us),
    };
  }
  return out;
}
