/**
 * Filesystem preopens as data (issue 11 H): the `preopens` option of `component.scale` and of manifests. The host
 * side (allow-list, `wasi:filesystem`) is in src/component/preopens.ts and src/component/wasi/filesystem.ts.
 * @module
 */
import path from "node:path";
import { InvalidArgumentError } from "./errors.ts";

/** One host directory given to a component. Plain data (crosses the thread boundary). */
export interface Preopen {
  /** Absolute host path of the directory. */
  hostPath: string;
  /** Path the guest sees, e.g. `/data`. */
  guestPath: string;
  /** Refuse writes, creation, removal and renames. */
  readOnly: boolean;
}

/**
 * Parses the `preopens` field of a `component.scale` request (Trellis extension): an array of
 * `{"host_path": "/abs/dir", "guest_path"?: "/data" (default: host_path), "read_only"?: true (default)}`.
 * @throws InvalidArgumentError naming the bad entry (`preopens[1].host_path`).
 */
export function parsePreopens(v: unknown): Preopen[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new InvalidArgumentError("preopens", "preopens must be an array of {host_path, guest_path?, read_only?}");
  const seen = new Set<string>();
  return v.map((e, i) => {
    const f = `preopens[${i}]`;
    if (typeof e !== "object" || e === null || Array.isArray(e)) throw new InvalidArgumentError(f, `${f} must be an object`);
    const o = e as Record<string, unknown>;
    if (typeof o.host_path !== "string" || !path.isAbsolute(o.host_path)) {
      throw new InvalidArgumentError(`${f}.host_path`, `${f}.host_path must be an absolute path`);
    }
    const guestPath = o.guest_path === undefined ? o.host_path : o.guest_path;
    if (typeof guestPath !== "string" || guestPath === "") throw new InvalidArgumentError(`${f}.guest_path`, `${f}.guest_path must be a non-empty string`);
    if (o.read_only !== undefined && typeof o.read_only !== "boolean") throw new InvalidArgumentError(`${f}.read_only`, `${f}.read_only must be a boolean`);
    if (seen.has(guestPath)) throw new InvalidArgumentError(`${f}.guest_path`, `${f}.guest_path ${guestPath} is given twice`);
    seen.add(guestPath);
    return { hostPath: path.normalize(o.host_path), guestPath, readOnly: o.read_only !== false };
  });
}

/** Turns preopens back into their request form (for `component.scale` requests and inventories). */
export function preopensToWire(p: readonly Preopen[]): { host_path: string; guest_path: string; read_only: boolean }[] {
  return p.map((x) => ({ host_path: x.hostPath, guest_path: x.guestPath, read_only: x.readOnly }));
}

