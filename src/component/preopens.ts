/**
 * Filesystem preopens of a component (issue 11 H): host directories a component may read (or read and write)
 * through `wasi:filesystem`, given in its start options (`component.scale` field `preopens`, `trellis start component
 * --preopen`, manifest `properties.preopens`) and **refused unless the host allows the path**.
 * @module
 */
import { realpathSync, statSync } from "node:fs";
import path from "node:path";
import { TrellisError, ErrorCode } from "../core/errors.ts";
import type { Preopen } from "../core/preopens.ts";

export { parsePreopens, preopensToWire, type Preopen } from "../core/preopens.ts";

/**
 * INTEGRATOR: the one place that decides whether a host directory may be preopened. It must use the host's
 * allow-list of paths (the one that also governs loading component files; src/policy on the `policy` branch). Until
 * that is wired, the allow-list is the component runtime's `policy.preopenRoots` (default: empty, nothing allowed).
 *
 * @param dir absolute host directory asked for.
 * @param roots allowed roots; `dir` must be one of them or inside one, after resolving symbolic links.
 * @returns true when allowed.
 */
export function isPathAllowed(dir: string, roots: readonly string[]): boolean {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return false;
  }
  return roots.some((r) => {
    let root: string;
    try {
      root = realpathSync(r);
    } catch {
      return false;
    }
    return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
  });
}

/**
 * Checks every preopen of a component against the host's allow-list.
 * @throws TrellisError `COMPONENT_LOAD_FAILED` naming the first refused or missing directory (the component does not start).
 */
export function admitPreopens(componentId: string, preopens: readonly Preopen[], roots: readonly string[]): void {
  for (const p of preopens) {
    if (!isPathAllowed(p.hostPath, roots)) {
      throw new TrellisError(ErrorCode.ComponentLoad, `component ${componentId}: preopen ${p.hostPath} is not allowed by this host (start it with --allowed-path for that directory, or --allow-file-load)`, {
        details: { componentId, hostPath: p.hostPath },
      });
    }
    let dir = false;
    try {
      dir = statSync(p.hostPath).isDirectory();
    } catch {
      // reported below
    }
    if (!dir) throw new TrellisError(ErrorCode.ComponentLoad, `component ${componentId}: preopen ${p.hostPath} is not a directory`, { details: { componentId, hostPath: p.hostPath } });
  }
}
