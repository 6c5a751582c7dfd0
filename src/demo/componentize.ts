/**
 * Child-process entry of the example build (./build.ts): runs componentize-js on one JavaScript guest. It runs in
 * its own process because componentize-js needs a process-wide filesystem preopen (preview2-shim `_setPreopens`) and
 * a few hundred MB of memory, neither of which belongs in a host.
 *
 * Usage: `node src/demo/componentize.ts <source.js> <wit dir> <world> <out.wasm>`; prints one JSON line
 * `{ "bytes": n, "ms": n, "debugLogsRemoved": n }` on success, the error on stderr and exit code 1 on failure.
 *
 * Env `TRELLIS_COMPONENTIZE_JS`: directory of another componentize-js package to use instead of the pinned one (to
 * measure a version without installing it; see ./build.ts `componentizeJsDir` and docs/javascript-components.md).
 *
 * The generated bindings lose their `_debugLog(…)` statements before the engine is initialised
 * (docs/adr/0029-guest-bindings-without-debug-log.md): componentize-js 0.23 emits two per import and export call,
 * each building its argument object in SpiderMonkey's interpreter although it logs nothing (`JCO_DEBUG` is never set
 * inside the guest). Env `TRELLIS_COMPONENTIZE_KEEP_DEBUG_LOG=1` keeps them.
 * @module
 */
import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { stripBindingDebugLogs } from "./bindings.ts";

async function main(): Promise<void> {
  const [sourcePath, witPath, worldName, out] = process.argv.slice(2);
  if (!sourcePath || !witPath || !worldName || !out) {
    process.stderr.write("usage: componentize.ts <source.js> <wit dir> <world> <out.wasm>\n");
    process.exit(2);
  }
  const started = Date.now();
  // componentize-js reads the WIT and the source through preview2-shim's filesystem: preopen `/` in the shim *it*
  // resolves (another package directory may resolve its own copy)
  const other = process.env["TRELLIS_COMPONENTIZE_JS"];
  const shim = other ? pathToFileURL(createRequire(path.join(other, "package.json")).resolve("@bytecodealliance/preview2-shim/filesystem")).href : "@bytecodealliance/preview2-shim/filesystem";
  const fs = (await import(shim)) as { _setPreopens(p: Record<string, string>): void };
  fs._setPreopens({ "/": "/" });
  const pkgDir = other || path.dirname(path.dirname(fileURLToPath(import.meta.resolve("@bytecodealliance/componentize-js"))));
  let debugLogsRemoved = 0;
  if (process.env["TRELLIS_COMPONENTIZE_KEEP_DEBUG_LOG"] !== "1") await stripBindingDebugLogs(pkgDir, (n) => (debugLogsRemoved += n));
  const { componentize } = (await import(other ? pathToFileURL(path.join(other, "src", "componentize.js")).href : "@bytecodealliance/componentize-js")) as {
    componentize(o: { sourcePath: string; witPath: string; worldName: string }): Promise<{ component: Uint8Array }>;
  };
  const { component } = await componentize({ sourcePath, witPath, worldName });
  await writeFile(out, component);
  process.stdout.write(`${JSON.stringify({ bytes: component.length, ms: Date.now() - started, debugLogsRemoved })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
