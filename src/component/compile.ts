/**
 * Compiling a component to JavaScript glue + core modules with jco's programmatic API, cached on disk by the
 * component's sha256 (issue 3 §2). See docs/adr/0002 for why the glue comes from jco 1.10.2 (`jco-legacy`).
 *
 * Cache layout: `{cacheDir}/{sha256}/{COMPILER_TAG}/` holds `component.js` (ES module exporting
 * `instantiate(getCoreModule, imports)`), `component.core*.wasm` and `meta.json` ({@link CompiledMeta}). Entries are
 * written to a temporary directory and renamed into place, so concurrent starts (or hosts sharing a cache) never see
 * a half-written entry.
 * @module
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generate } from "jco-legacy/component";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { readComponentTypes, type ComponentTypes } from "./component-types.ts";
import { isLocalInterface } from "./routing.ts";

/** Changes whenever the generated output or meta.json changes shape; part of the cache path. */
export const COMPILER_TAG = "jco-1.10.2-jspi-v3";

/** What the cache keeps besides the generated files. */
export interface CompiledMeta {
  sha256: string;
  /** Size of the component in bytes. */
  size: number;
  /** The glue file name (`component.js`). */
  js: string;
  /** Core module file names the glue asks for. */
  coreFiles: string[];
  types: ComponentTypes;
  /** Imports generated as JSPI suspending functions (`iface#fn`). */
  asyncImports: string[];
  /** Exports generated as JSPI promising functions. */
  asyncExports: string[];
  /** Milliseconds the transpile took. */
  compileMs: number;
}

/** A compiled component in the cache. */
export interface CompiledComponent {
  /** Cache directory of this entry (absolute). */
  dir: string;
  meta: CompiledMeta;
  /** True when the entry came from the cache (no transpile this time). */
  cached: boolean;
}

/** The sha256 of bytes, lower-case hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The import functions generated as suspending (JSPI): every function of a routed interface, and wasi:io/poll waits. */
export function asyncImportsOf(types: ComponentTypes): string[] {
  const out: string[] = [];
  for (const [name, iface] of Object.entries(types.imports)) {
    if (/^wasi:io\/poll(@|$)/.test(name)) {
      out.push(`${name}#poll`, `${name}#[method]pollable.block`);
    } else if (!isLocalInterface(name)) {
      for (const fn of Object.keys(iface.functions)) out.push(`${name}#${fn}`);
    }
  }
  // world-level imports are routed over the lattice too (src/component/guest-imports.ts); jco names them `{fn}#{fn}`
  out.push(...Object.keys(types.importedFunctions).map((f) => `${f}#${f}`));
  return out;
}

/** Every exported function, generated as promising (JSPI), so that any import it calls may suspend. */
export function asyncExportsOf(types: ComponentTypes): string[] {
  const out: string[] = [];
  for (const [name, iface] of Object.entries(types.exports)) {
    for (const fn of Object.keys(iface.functions)) out.push(`${name}#${fn}`);
  }
  out.push(...Object.keys(types.exportedFunctions));
  return out;
}

/**
 * Compiles `bytes` or returns the cached result for the same sha256.
 * @param cacheDir cache root (created when missing).
 * @throws TrellisError `COMPONENT_LOAD_FAILED` when the bytes are not a WASI 0.2 component or jco cannot transpile
 *   them (the message includes jco's).
 */
export async function compileComponent(bytes: Uint8Array, cacheDir: string): Promise<CompiledComponent> {
  const hash = sha256(bytes);
  const dir = join(cacheDir, hash, COMPILER_TAG);
  try {
    const meta = JSON.parse(await readFile(join(dir, "meta.json"), "utf8")) as CompiledMeta;
    return { dir, meta, cached: true };
  } catch {
    // not cached yet (or unreadable): compile
  }
  const started = performance.now();
  const types = readComponentTypes(bytes);
  const asyncImports = asyncImportsOf(types);
  const asyncExports = asyncExportsOf(types);
  let generated: { files: [string, Uint8Array][] };
  try {
    generated = await generate(bytes, {
      name: "component",
      instantiation: { tag: "async" },
      noTypescript: true,
      base64Cutoff: 0,
      noNodejsCompat: true,
      map: [],
      asyncMode: { tag: "jspi", val: { imports: asyncImports, exports: asyncExports } },
    });
  } catch (err) {
    const detail = (err as { payload?: unknown }).payload ?? (err as Error).message;
    throw new TrellisError(ErrorCode.ComponentLoad, `jco could not transpile the component: ${String(detail)}`, { cause: err });
  }
  const compileMs = performance.now() - started;
  const meta: CompiledMeta = {
    sha256: hash,
    size: bytes.length,
    js: "component.js",
    coreFiles: generated.files.map(([n]) => n).filter((n) => n.endsWith(".wasm")),
    types,
    asyncImports,
    asyncExports,
    compileMs,
  };
  const files = generated.files.map(([name, content]): [string, Uint8Array | string] =>
    name.endsWith(".js") ? [name, patchGlue(new TextDecoder().decode(content))] : [name, content],
  );
  const tmp = `${dir}.tmp-${randomUUID()}`;
  await mkdir(tmp, { recursive: true });
  try {
    for (const [name, content] of files) await writeFile(join(tmp, name), content);
    await writeFile(join(tmp, "meta.json"), JSON.stringify(meta, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)));
    try {
      await rename(tmp, dir);
    } catch {
      // another start won the race: its entry is identical
      await rm(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new TrellisError(ErrorCode.ComponentLoad, `cannot write the compile cache in ${cacheDir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { dir, meta, cached: false };
}

/**
 * Fixes a known defect of jco 1.10.2's glue: the drop of an owned host resource that was passed into an export
 * (e.g. `incoming-request` given to `wasi:http/incoming-handler.handle`) is generated as
 * `throw new TypeError('unreachable resource trampoline')`, so every such guest traps when it drops the request.
 * The patch releases the host object instead, as jco ≥ 1.11 does.
 */
export function patchGlue(js: string): string {
  return js.replace(
    /const handleEntry = rscTableRemove\(handleTable(\d+), handle\);\n(\s*)if \(handleEntry\.own\) \{\n\s*throw new TypeError\('unreachable resource trampoline'\)\n/g,
    (_m, n: string, indent: string) =>
      `const handleEntry = rscTableRemove(handleTable${n}, handle);\n${indent}if (handleEntry.own) {\n` +
      `${indent}  const rsc = typeof captureTable${n} !== 'undefined' ? captureTable${n}.get(handleEntry.rep) : undefined;\n` +
      `${indent}  if (rsc) { if (rsc[symbolDispose]) rsc[symbolDispose](); captureTable${n}.delete(handleEntry.rep); }\n`,
  );
}
