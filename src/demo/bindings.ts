/**
 * Trellis's one change to the guest bindings componentize-js generates for the example builds
 * (docs/adr/0029-guest-bindings-without-debug-log.md): the `_debugLog(…);` statements are removed before the engine
 * is initialised. componentize-js 0.23.0 emits two per import and export call (169 in the counter's bindings), and
 * SpiderMonkey, interpreting them inside WebAssembly, builds each one's argument object and checks
 * `globalThis?.process?.env?.JCO_DEBUG` on every call although it never logs there. Used by ./componentize.ts.
 * @module
 */
import path from "node:path";
import { pathToFileURL } from "node:url";

/**
 * A `_debugLog(…);` statement of componentize-js's generated bindings: its arguments are a string and an object
 * literal (no `;`, parentheses at most one level deep), as every call site of 0.23.0 is. A statement of another shape
 * is not matched and stays (harmless: it logs nothing).
 */
const DEBUG_LOG_STATEMENT = /_debugLog\((?:[^;()]|\([^()]*\))*?\);/g;

/**
 * The generated bindings `js` without their `_debugLog(…);` statements (the `_debugLog` function itself stays
 * defined, so any statement left still works).
 * @returns the new source and how many statements were removed.
 */
export function withoutDebugLogs(js: string): { js: string; removed: number } {
  let removed = 0;
  const out = js.replace(DEBUG_LOG_STATEMENT, () => {
    removed++;
    return "";
  });
  return { js: out, removed };
}

/** The bindings splicer module of componentize-js, as far as it is used here. */
interface Splicer {
  spliceBindings?: (...a: unknown[]) => { jsBindings?: unknown };
}

/**
 * Wraps `spliceBindings` of the splicer that componentize-js in `pkgDir` uses (its own module
 * `lib/spidermonkey-embedding-splicer.js`, which `src/componentize.js` imports), so that the bindings it returns go
 * through {@link withoutDebugLogs} before componentize-js writes them for the engine. When the module is missing or
 * has another shape (another componentize-js version), nothing is changed and the build goes on unmodified.
 * Must be called before `componentize()` runs, in the build's own process.
 * @param pkgDir the componentize-js package directory.
 * @param onStrip told how many statements each splice removed.
 * @returns true when the splicer was wrapped.
 */
export async function stripBindingDebugLogs(pkgDir: string, onStrip: (removed: number) => void = () => undefined): Promise<boolean> {
  let splicer: Splicer | undefined;
  try {
    splicer = ((await import(pathToFileURL(path.join(pkgDir, "lib", "spidermonkey-embedding-splicer.js")).href)) as { splicer?: Splicer }).splicer;
  } catch {
    return false;
  }
  const splice = splicer?.spliceBindings;
  if (!splicer || typeof splice !== "function") return false;
  const target = splicer;
  target.spliceBindings = (...a: unknown[]) => {
    const r = splice.apply(target, a);
    if (typeof r.jsBindings === "string") {
      const { js, removed } = withoutDebugLogs(r.jsBindings);
      r.jsBindings = js;
      onStrip(removed);
    }
    return r;
  };
  return true;
}
