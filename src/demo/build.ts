/**
 * Builds the example components of `examples/` from source with componentize-js, cached on disk by a hash of
 * everything that goes into the build (docs/demo.md, "How the examples are built").
 *
 * An example is a folder `examples/<name>/` with `component.js` (the guest) and `wit/world.wit` (its world). The WIT
 * it is built against is assembled at build time in a temporary folder: the example's `wit/`, the hand-written
 * packages of `examples/wit/` (`wasi:keyvalue@0.2.0-draft`, `wasmcloud:bus@1.0.0`), and the WASI 0.2.12 packages jco
 * ships (`node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12`), so no WASI WIT is vendored.
 *
 * Cache: `<cacheDir>/components/<name>-<hash>.wasm` (the hash covers the example's files, `examples/wit/`, the
 * WASI WIT and the componentize-js version), and a stable copy `<cacheDir>/examples/<name>.wasm` that the example
 * manifests reference (`image: ./.cache/examples/<name>.wasm`, relative to the repository root).
 * @module
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode, NotFoundError, TrellisError } from "../core/errors.ts";

/** The repository root (two levels above this file). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where the examples live. */
export const EXAMPLES_DIR = path.join(REPO_ROOT, "examples");
/** Default cache directory: `.cache/` at the repository root (gitignored). */
export const DEFAULT_CACHE_DIR = path.join(REPO_ROOT, ".cache");
/** WASI WIT shipped by jco, used for every build. */
export const WASI_WIT_DIR = path.join(REPO_ROOT, "node_modules", "@bytecodealliance", "jco", "lib", "wit", "builtin", "0.2.12");
/**
 * Bumped when the build recipe changes, so that old cache entries are not reused. 2: bindings without `_debugLog`
 * statements (./bindings.ts), unless `TRELLIS_COMPONENTIZE_KEEP_DEBUG_LOG=1`.
 */
const RECIPE = `trellis-example-build-2${process.env["TRELLIS_COMPONENTIZE_KEEP_DEBUG_LOG"] === "1" ? "-debug-log" : ""}`;
/** Longest time one componentize-js run may take, in milliseconds. */
export const BUILD_TIMEOUT_MS = 240_000;

/** What {@link buildExample} reports while it works. */
export interface BuildProgress {
  name: string;
  /** `cached`: nothing to do; `start`: componentize-js started; `tick`: still building; `done`: built. */
  phase: "cached" | "start" | "tick" | "done";
  /** Milliseconds since the build started (0 for `cached` and `start`). */
  elapsedMs: number;
}

/** Options of {@link buildExample}. */
export interface BuildOptions {
  /** Cache root. @default {@link DEFAULT_CACHE_DIR} */
  cacheDir?: string;
  /** Called on start, every `tickMs` while building, and at the end. */
  onProgress?: (p: BuildProgress) => void;
  /** Interval of `tick` progress calls, in milliseconds. @default 2000 */
  tickMs?: number;
  /** Rebuild even when the cache has the component. @default false */
  force?: boolean;
}

/** The result of {@link buildExample}. */
export interface BuiltExample {
  name: string;
  /** The hash-keyed cache file. */
  file: string;
  /** The stable copy the manifests reference: `<cacheDir>/examples/<name>.wasm`. */
  stableFile: string;
  /** Hex SHA-256 of the build inputs. */
  hash: string;
  /** True when the cache already had it. */
  cached: boolean;
  /** Size of the component, in bytes. */
  bytes: number;
  /** Time spent, in milliseconds. */
  ms: number;
}

/** Names of the examples that have a component (`examples/<name>/component.js`), sorted. */
export async function listExamples(): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(EXAMPLES_DIR, { withFileTypes: true })) {
    if (e.isDirectory() && (await exists(path.join(EXAMPLES_DIR, e.name, "component.js")))) out.push(e.name);
  }
  return out.sort();
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  }
  return out.sort();
}

/**
 * The componentize-js package the examples are built with: env `TRELLIS_COMPONENTIZE_JS` (a package directory, e.g.
 * of another version installed elsewhere to measure it), else the version pinned in package.json.
 */
export function componentizeJsDir(): string {
  return process.env["TRELLIS_COMPONENTIZE_JS"] || path.join(REPO_ROOT, "node_modules", "@bytecodealliance", "componentize-js");
}

/** The version of {@link componentizeJsDir}'s componentize-js (part of the cache key). */
export async function componentizeVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(componentizeJsDir(), "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

/**
 * The hex SHA-256 of everything a build of `name` reads: the recipe, the componentize-js version, the example's files,
 * `examples/wit/` and the WASI WIT.
 * @throws NotFoundError when the example does not exist.
 */
export async function exampleHash(name: string): Promise<string> {
  const dir = path.join(EXAMPLES_DIR, name);
  if (!(await exists(path.join(dir, "component.js")))) throw new NotFoundError(`no example named ${name} (looked for ${dir}/component.js)`);
  const h = createHash("sha256");
  h.update(`${RECIPE}\0${await componentizeVersion()}\0`);
  const inputs = [
    ...(await filesUnder(dir)).filter((f) => f.endsWith(".js") || f.endsWith(".wit")),
    ...(await filesUnder(path.join(EXAMPLES_DIR, "wit"))),
    ...(await filesUnder(WASI_WIT_DIR)),
  ];
  for (const f of inputs) {
    h.update(`${path.relative(REPO_ROOT, f)}\0`);
    h.update(await readFile(f));
    h.update("\0");
  }
  return h.digest("hex");
}

/** Assembles the WIT folder of one build: the example's world, `examples/wit/*` and the WASI packages as deps. */
async function assembleWit(name: string, into: string): Promise<string> {
  const wit = path.join(into, "wit");
  await cp(path.join(EXAMPLES_DIR, name, "wit"), wit, { recursive: true });
  const deps = path.join(wit, "deps");
  await mkdir(deps, { recursive: true });
  for (const e of await readdir(WASI_WIT_DIR, { withFileTypes: true })) {
    if (e.isDirectory()) await cp(path.join(WASI_WIT_DIR, e.name), path.join(deps, e.name), { recursive: true });
  }
  for (const e of await readdir(path.join(EXAMPLES_DIR, "wit"), { withFileTypes: true })) {
    if (e.isDirectory()) await cp(path.join(EXAMPLES_DIR, "wit", e.name), path.join(deps, e.name), { recursive: true });
  }
  const world = /^\s*world\s+([a-z][a-z0-9-]*)/m.exec(await readFile(path.join(wit, "world.wit"), "utf8"))?.[1];
  if (!world) throw new TrellisError(ErrorCode.InvalidArgument, `examples/${name}/wit/world.wit declares no world`);
  return world;
}

function runComponentize(args: string[], onTick: () => void, tickMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, "src", "demo", "componentize.ts"), ...args], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-8000);
    });
    child.stdout.resume();
    const tick = setInterval(onTick, tickMs);
    const kill = setTimeout(() => child.kill("SIGKILL"), BUILD_TIMEOUT_MS);
    child.on("error", (err) => {
      clearInterval(tick);
      clearTimeout(kill);
      reject(err);
    });
    child.on("exit", (code, signal) => {
      clearInterval(tick);
      clearTimeout(kill);
      if (code === 0) resolve();
      else reject(new Error(`componentize-js ${signal ? `was killed (${signal})` : `exited with ${code}`}: ${stderr.trim().split("\n").slice(0, 12).join("\n")}`));
    });
  });
}

/**
 * Builds one example (or finds it in the cache) and refreshes its stable copy.
 * @throws NotFoundError for an unknown example; TrellisError `COMPONENT_LOAD_FAILED` when componentize-js fails (the
 *   message carries its first error lines) or runs longer than {@link BUILD_TIMEOUT_MS}.
 */
export async function buildExample(name: string, opts: BuildOptions = {}): Promise<BuiltExample> {
  const started = Date.now();
  const cacheDir = opts.cacheDir ?? DEFAULT_CACHE_DIR;
  const hash = await exampleHash(name);
  const file = path.join(cacheDir, "components", `${name}-${hash.slice(0, 16)}.wasm`);
  const stableFile = path.join(cacheDir, "examples", `${name}.wasm`);
  await mkdir(path.dirname(file), { recursive: true });
  await mkdir(path.dirname(stableFile), { recursive: true });
  let cached = !opts.force && (await exists(file));
  if (cached) {
    opts.onProgress?.({ name, phase: "cached", elapsedMs: 0 });
  } else {
    opts.onProgress?.({ name, phase: "start", elapsedMs: 0 });
    const work = await mkdtemp(path.join(tmpdir(), `trellis-build-${name}-`));
    try {
      const world = await assembleWit(name, work);
      const out = path.join(work, "out.wasm");
      try {
        await runComponentize([path.join(EXAMPLES_DIR, name, "component.js"), path.join(work, "wit"), world, out], () =>
          opts.onProgress?.({ name, phase: "tick", elapsedMs: Date.now() - started }), opts.tickMs ?? 2_000);
      } catch (err) {
        throw new TrellisError(ErrorCode.ComponentLoad, `building example ${name} failed: ${(err as Error).message}`, { cause: err });
      }
      const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
      await copyFile(out, tmp);
      await rename(tmp, file);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    cached = false;
    opts.onProgress?.({ name, phase: "done", elapsedMs: Date.now() - started });
  }
  const bytes = (await stat(file)).size;
  const stableTmp = `${stableFile}.${randomBytes(4).toString("hex")}.tmp`;
  await copyFile(file, stableTmp);
  await rename(stableTmp, stableFile);
  return { name, file, stableFile, hash, cached, bytes, ms: Date.now() - started };
}

/**
 * Builds several examples, two at a time (componentize-js is CPU-bound; most machines that run the demo have two
 * cores or more).
 */
export async function buildExamples(names: readonly string[], opts: BuildOptions = {}): Promise<BuiltExample[]> {
  const out: BuiltExample[] = new Array<BuiltExample>(names.length);
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const i = next++;
      out[i] = await buildExample(names[i]!, opts);
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}
