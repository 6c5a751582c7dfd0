/**
 * Benchmark "provider-call": calls into capability providers, against raw NATS request/reply of the same run.
 *
 * One host (this process) runs the component runtime and the provider supervisor; kv-memory (TypeScript SDK) and,
 * when python3 is available, python-kv run as spawned processes; the counter guest component (test/support/
 * providers.ts, componentize-qjs) is linked to each. Serial calls, one in flight:
 *
 *  - direct: this process → provider (`wasi:keyvalue/atomics.increment`, as a component's host would send it);
 *  - component ping: this process → component export that calls nothing (`test:counter/api.ping`);
 *  - component hit: this process → component, which makes two import calls to the provider (`store.open`, then
 *    `atomics.increment`) and drops the bucket handle (a `[resource-drop]` notification, no reply) → this process;
 *  - one component → provider import call ≈ (hit − ping) / 2 (p50).
 *
 * Ratios divide by the raw NATS p50 (two processes, 16 bytes) measured first in the same run.
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
import { KEYVALUE_ATOMICS } from "../providers/kv-memory/keyvalue.ts";
import { buildCounterGuest } from "../test/support/providers.ts";
import { ratio, timeIterations, type LatencySummary } from "./harness.ts";
import { measureRawNats } from "./raw-nats.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const N = 2000;
const WARMUP = 200;
const handles = { toHandle: (_r: string, v: unknown) => new TextEncoder().encode(String(v)), fromHandle: (_r: string, h: Uint8Array) => new TextDecoder().decode(h) };

function row(s: LatencySummary, rawP50: number) {
  return { p50Us: s.p50Us, p90Us: s.p90Us, p99Us: s.p99Us, reqPerSec: s.reqPerSec, p50VsRawNats: ratio(s.p50Us, rawP50) };
}

export default async function providerCall(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const raw = await measureRawNats(ctx.natsUrl, { requests: N, warmup: WARMUP, pipelinedRequests: N });
  const rawP50 = raw.serial.p50Us;
  const wasm = await buildCounterGuest();
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
  const out: Record<string, unknown> = { calls: N, rawNats: { p50Us: rawP50, p99Us: raw.serial.p99Us } };
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
      const direct = await timeIterations(N, () =>
        invoke(nc, { lattice, targetId: id, iface: KEYVALUE_ATOMICS.name, fn: "increment", sourceId: component, linkName: "default", timeoutMs: 5000 }, KEYVALUE_ATOMICS.functions.increment!, ["b", "k", 1n], handles),
      { warmup: WARMUP });
      const call = (fn: string, args: unknown[]) =>
        invokeRaw(nc, { lattice, targetId: component, iface: "test:counter/api", fn, timeoutMs: 5000 }, new TextEncoder().encode(JSON.stringify(args)), true);
      const ping = await timeIterations(N, () => call("ping", []), { warmup: WARMUP });
      const hit = await timeIterations(N, () => call("hit", ["k"]), { warmup: WARMUP });
      const importP50 = Math.round(((hit.p50Us - ping.p50Us) / 2) * 10) / 10;
      out[ref === "kv-memory" ? "kvMemory" : "pythonKv"] = {
        direct: row(direct, rawP50),
        componentPing: row(ping, rawP50),
        componentHit: row(hit, rawP50),
        importCallP50Us: importP50,
        importCallVsRawNats: ratio(importP50, rawP50),
      };
    }
  } finally {
    await client.close();
    await host.stop();
  }
  return out;
}
