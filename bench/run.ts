/**
 * Benchmark runner: `npm run bench [-- name…]` (= `node bench/run.ts [name…]`, Node 24).
 *
 * Runs every module bench/<name>.bench.ts (raw-nats first, then alphabetically), or only the
 * named ones. Each module's default export is
 *   `async (ctx: { natsUrl: string }) => Record<string, unknown>`
 * and its result is written to bench/results/<name>.json. A private nats-server (JetStream)
 * is started unless env NATS_URL is set.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startNatsServer } from "../src/lattice/nats-server.ts";
import { machineInfo, writeResult } from "./harness.ts";

/** Context handed to every benchmark module. */
export interface BenchContext {
  natsUrl: string;
}

type BenchFn = (ctx: BenchContext) => Promise<Record<string, unknown>>;

const here = path.dirname(fileURLToPath(import.meta.url));
const SUFFIX = ".bench.ts";

const available = (await readdir(here))
  .filter((f) => f.endsWith(SUFFIX))
  .map((f) => f.slice(0, -SUFFIX.length))
  .sort((a, b) => (a === "raw-nats" ? -1 : b === "raw-nats" ? 1 : a.localeCompare(b)));

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; available: ${available.join(", ")}`);
  process.exit(2);
}
const selected = wanted.length > 0 ? available.filter((n) => wanted.includes(n)) : available;

const envUrl = process.env["NATS_URL"];
const server = envUrl === undefined || envUrl === "" ? await startNatsServer() : undefined;
const natsUrl = server?.url ?? (envUrl as string);
console.log(`benchmarks: ${selected.join(", ")}`);
console.log(`nats: ${natsUrl}${server === undefined ? " (from NATS_URL)" : " (private nats-server)"}`);
console.log(`machine: ${JSON.stringify(machineInfo())}`);

let failed = 0;
try {
  for (const name of selected) {
    const mod = (await import(pathToFileURL(path.join(here, name + SUFFIX)).href)) as { default?: BenchFn };
    if (typeof mod.default !== "function") {
      console.error(`${name}: no default export function; skipped`);
      failed++;
      continue;
    }
    const t0 = Date.now();
    try {
      const result = await mod.default({ natsUrl });
      await writeResult(name, result);
      console.log(`(${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (err) {
      failed++;
      console.error(`${name}: FAILED`, err);
    }
  }
} finally {
  await server?.stop();
}
process.exitCode = failed > 0 ? 1 : 0;
