/**
 * Benchmark "instance-reuse" (issue 11 J, docs/adr/0019-instance-reuse.md): what a fresh instance per call costs.
 * One componentize-qjs component (QuickJS engine, ≈ 1 MB) exports `wasi:cli/run` — a fresh instance for every call —
 * and an interface function `ping` — served by a reused warm instance. Both are called one after another over the
 * lattice through a host in this process, in the same run; the ratio run/ping is the price of a fresh instance.
 */
import { cp, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentize } from "componentize-qjs";
import { Host } from "../src/host/host.ts";
import { componentRuntime } from "../src/component/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { invokeJson } from "../src/invocation/index.ts";
import { uniqueLattice, waitFor } from "../src/testing/index.ts";
import { timeIterations } from "./harness.ts";
import { ROOT } from "./component-support.ts";

const WIT = `package bench:reuse@0.1.0;

interface api {
  ping: func() -> u32;
}

world reuse {
  import wasi:cli/stdout@0.2.12;
  export api;
  export wasi:cli/run@0.2.12;
}
`;
const JS = `
let n = 0;
export const api = { ping() { return ++n; } };
export const run = { run() { n++; } };
`;

export default async function bench(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(tmpdir(), "trellis-bench-reuse-"));
  const wasi = path.join(ROOT, "node_modules", "@bytecodealliance", "jco", "lib", "wit", "builtin", "0.2.12");
  for (const dep of ["wasi-cli", "wasi-io", "wasi-clocks", "wasi-filesystem", "wasi-random", "wasi-sockets"]) {
    await cp(path.join(wasi, dep), path.join(dir, "wit", "deps", dep), { recursive: true });
  }
  await writeFile(path.join(dir, "wit", "world.wit"), WIT);
  const { component } = await componentize({ witPath: path.join(dir, "wit"), jsSource: JS, sync: true, optSize: true });
  const wasm = path.join(dir, "reuse.wasm");
  await writeFile(wasm, component);
  const lattice = uniqueLattice("bench");
  const host = await Host.create({ natsUrl: ctx.natsUrl, lattice, logger: silentLogger, cacheDir: path.join(dir, "cache"), workloads: { components: componentRuntime() } });
  try {
    const { CtlClient } = await import("../src/control/client.ts");
    const client = await CtlClient.connect({ natsUrl: ctx.natsUrl, lattice, timeoutMs: 5000 });
    await client.scaleComponent(host.id, { component_ref: wasm, component_id: "reuse", count: 1 });
    await waitFor(async () => (await client.getInventory(host.id)).components.some((c) => c.id === "reuse"), { timeoutMs: 60_000 });
    const call = (iface: string, fn: string) => () => invokeJson(client.nc, { lattice, targetId: "reuse", iface, fn, timeoutMs: 30_000 }, []);
    const reused = await timeIterations(200, call("bench:reuse/api", "ping"), { warmup: 20 });
    const fresh = await timeIterations(50, call("wasi:cli/run", "run"), { warmup: 5 });
    await client.close();
    return {
      componentBytes: component.length,
      reusedInstance: reused,
      freshInstance: fresh,
      freshOverReusedP50: Math.round((fresh.p50Us / reused.p50Us) * 10) / 10,
      freshCostP50Ms: Math.round((fresh.p50Us - reused.p50Us) / 100) / 10,
    };
  } finally {
    await host.stop();
  }
}
