/**
 * Child-process entry of the example build (./build.ts): runs componentize-js on one JavaScript guest. It runs in
 * its own process because componentize-js needs a process-wide filesystem preopen (preview2-shim `_setPreopens`) and
 * a few hundred MB of memory, neither of which belongs in a host.
 *
 * Usage: `node src/demo/componentize.ts <source.js> <wit dir> <world> <out.wasm>`; prints one JSON line
 * `{ "bytes": n, "ms": n }` on success, the error on stderr and exit code 1 on failure.
 * @module
 */
import { writeFile } from "node:fs/promises";

async function main(): Promise<void> {
  const [sourcePath, witPath, worldName, out] = process.argv.slice(2);
  if (!sourcePath || !witPath || !worldName || !out) {
    process.stderr.write("usage: componentize.ts <source.js> <wit dir> <world> <out.wasm>\n");
    process.exit(2);
  }
  const started = Date.now();
  const fs = (await import("@bytecodealliance/preview2-shim/filesystem")) as { _setPreopens(p: Record<string, string>): void };
  fs._setPreopens({ "/": "/" });
  const { componentize } = (await import("@bytecodealliance/componentize-js")) as {
    componentize(o: { sourcePath: string; witPath: string; worldName: string }): Promise<{ component: Uint8Array }>;
  };
  const { component } = await componentize({ sourcePath, witPath, worldName });
  await writeFile(out, component);
  process.stdout.write(`${JSON.stringify({ bytes: component.length, ms: Date.now() - started })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
