/**
 * Command components (issue 11 J): runs `wasi:cli/run` of a component once, in a fresh instance, with arguments,
 * environment, stdin and raw stdout/stderr — what `trellis run FILE [-- ARGS…]` does, in the calling process (no
 * host, no lattice). Imports other than the host's local ones (WASI, logging, config…) fail when called: a command
 * run this way has no links.
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ErrorCode, InvalidArgumentError, TrellisError } from "../core/errors.ts";
import { stripVersion } from "../core/subjects.ts";
import type { Preopen } from "../core/preopens.ts";
import { compileComponent } from "./compile.ts";
import { classifyWasm } from "./component-types.ts";
import { isLocalInterface } from "./routing.ts";
import { GuestExitError, localImports } from "./wasi/index.ts";

/** The interface a command component exports (WASI 0.2 `wasi:cli/run`, any patch version). */
export const CLI_RUN = "wasi:cli/run";

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Arguments the guest sees (`wasi:cli/environment.get-arguments`); by convention the first is the program name. */
  args: string[];
  /** Environment variables the guest sees. @default [] */
  env?: [string, string][];
  /** Everything the guest can read from stdin. @default empty */
  stdin?: Uint8Array;
  /** Receives stdout bytes as the guest writes them. */
  stdout(bytes: Uint8Array): void;
  /** Receives stderr bytes as the guest writes them. */
  stderr(bytes: Uint8Array): void;
  /** Compile cache directory. */
  cacheDir: string;
  /** Host directories the guest sees (the caller has checked them). @default none */
  preopens?: Preopen[];
}

type Exports = Record<string, Record<string, (...a: unknown[]) => Promise<unknown>>>;
type Glue = {
  instantiate(getCoreModule: (name: string) => Promise<WebAssembly.Module>, imports: Record<string, unknown>): Promise<Exports>;
};

/** An import object whose every function fails: the command has no link for `iface`. */
function unlinked(iface: string): Record<string, unknown> {
  const fail = () => {
    throw new TrellisError(ErrorCode.LinkNotFound, `${iface} is not available to a command run by trellis run (no links)`);
  };
  return new Proxy({}, { get: (_t, key) => (typeof key === "symbol" ? undefined : fail) });
}

/**
 * Runs a command component once.
 * @param bytes the component's binary.
 * @returns the exit status: 0 when `run` returned `ok`, 1 for `err`, the code given to `wasi:cli/exit`.
 * @throws InvalidArgumentError when the bytes are not a component or it does not export `wasi:cli/run`;
 *   TrellisError `COMPONENT_TRAP` when the guest traps.
 */
export async function runCommand(bytes: Uint8Array, opts: RunCommandOptions): Promise<number> {
  if (classifyWasm(bytes) !== "component") throw new InvalidArgumentError("FILE", "not a WebAssembly component");
  const compiled = await compileComponent(bytes, opts.cacheDir);
  const types = compiled.meta.types;
  const runName = Object.keys(types.exports).find((n) => stripVersion(n) === CLI_RUN);
  if (!runName) {
    throw new InvalidArgumentError("FILE", `not a command component: it does not export ${CLI_RUN} (exports: ${Object.keys(types.exports).join(", ") || "none"})`);
  }
  const imports: Record<string, unknown> = localImports({
    env: opts.env ?? [],
    args: opts.args,
    stdio: { stdout: opts.stdout, stderr: opts.stderr, stdin: opts.stdin ?? new Uint8Array(0) },
    ...(opts.preopens?.length ? { preopens: opts.preopens } : {}),
    output: () => undefined,
    log: (level, context, message) => opts.stderr(new TextEncoder().encode(`[${level}] ${context ? `${context}: ` : ""}${message}\n`)),
    config: () => ({}),
    secret: () => undefined,
    setLinkName: () => "trellis run has no links",
    setLinkNameReturnsResult: false,
    sendHttp: () => Promise.reject(new TrellisError(ErrorCode.LinkNotFound, "wasi:http/outgoing-handler is not available to a command run by trellis run")),
  });
  for (const name of Object.keys(types.imports)) if (!isLocalInterface(name)) imports[stripVersion(name)] = unlinked(stripVersion(name));
  for (const name of Object.keys(types.importedFunctions)) imports[name] = { default: unlinked(name)["call"] };
  const glue = (await import(pathToFileURL(join(compiled.dir, compiled.meta.js)).href)) as Glue;
  const exports = await glue.instantiate(async (name) => WebAssembly.compile(await readFile(join(compiled.dir, name))), imports);
  const run = exports[runName]?.["run"];
  if (!run) throw new InvalidArgumentError("FILE", `${runName} has no run function`);
  try {
    await run();
    return 0;
  } catch (err) {
    if (err instanceof GuestExitError) return Number((err.details as { status?: number } | undefined)?.status ?? 1);
    // `run: func() -> result`: an `err` result is thrown by jco's glue as an error with a payload
    if (err instanceof Error && Object.prototype.hasOwnProperty.call(err, "payload")) return 1;
    if (err instanceof TrellisError) throw err;
    throw new TrellisError(ErrorCode.ComponentTrap, `the command trapped: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
