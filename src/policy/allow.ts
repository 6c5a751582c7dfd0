/**
 * What a host may load (docs/security.md, "What a host may run"): first-party providers by name always; a component or
 * provider given as a file path, and a component given as an http(s) URL, only when the host was started with
 * `--allow-file-load` (wasmCloud 1.x's flag) or — for file paths — when the file lies under an `--allowed-path`
 * directory, after resolving `..` and symlinks.
 *
 * The check runs before anything is read: a refusal touches nothing but the allowed directories and, for a path that
 * is lexically inside one, `realpath` of that path (to see where its symlinks lead). The caller loads from the path
 * the check returns (the resolved real path), so a symlink swapped in after the check cannot redirect the read.
 * @module
 */
import { realpathSync } from "node:fs";
import path from "node:path";
import { InvalidArgumentError, LoadNotAllowedError, NotFoundError } from "../core/errors.ts";

/** The CLI flag that allows every file path and http(s) URL (wasmCloud 1.x `--allow-file-load`). */
export const ALLOW_FILE_LOAD_FLAG = "--allow-file-load";
/** The CLI flag (repeatable) that allows file paths under one directory. */
export const ALLOWED_PATH_FLAG = "--allowed-path";
/** Environment twin of {@link ALLOW_FILE_LOAD_FLAG} (`true`/`false`). */
export const ALLOW_FILE_LOAD_ENV = "TRELLIS_ALLOW_FILE_LOAD";
/** Environment twin of {@link ALLOWED_PATH_FLAG}: directories separated by the platform's path-list separator (`:`). */
export const ALLOWED_PATH_ENV = "TRELLIS_ALLOWED_PATH";

/** What a host operator sets. Every field is optional; the default allows only first-party providers by name. */
export interface LoadPermissionOptions {
  /**
   * Load components and providers from any file path, and components from any http(s) URL.
   * @default false (`--allow-file-load`, `TRELLIS_ALLOW_FILE_LOAD=true`)
   */
  allowFileLoad?: boolean;
  /**
   * Directories whose files (at any depth) may be loaded as components or providers; relative ones resolve against the
   * working directory at start. A path is inside only if its real path (`..` and symlinks resolved) is.
   * @default [] (`--allowed-path DIR`, repeatable; `TRELLIS_ALLOWED_PATH=DIR:DIR`)
   */
  allowedPaths?: readonly string[];
}

/** {@link LoadPermissionOptions} checked, with directories made absolute. */
export interface LoadPermissions {
  readonly allowFileLoad: boolean;
  /** Absolute, normalized directories (as given; their real paths are taken at each check). */
  readonly allowedPaths: readonly string[];
}

/** Where a reference points, as its loader resolved it lexically (no file system access). */
export type LoadTarget = { kind: "file"; path: string } | { kind: "url"; url: string };

/** What is being loaded; used in messages. */
export type LoadSubject = "component" | "provider";

/**
 * Checks and normalizes the options.
 * @param cwd directory relative `allowedPaths` resolve against. @default process.cwd()
 * @throws InvalidArgumentError (`allowFileLoad`, `allowedPaths`) for a non-boolean flag or an empty / non-string path.
 */
export function compileLoadPermissions(o: LoadPermissionOptions = {}, cwd = process.cwd()): LoadPermissions {
  if (o.allowFileLoad !== undefined && typeof o.allowFileLoad !== "boolean") {
    throw new InvalidArgumentError("allowFileLoad", `allowFileLoad must be a boolean, got ${typeof o.allowFileLoad}`);
  }
  const dirs = o.allowedPaths ?? [];
  if (!Array.isArray(dirs)) throw new InvalidArgumentError("allowedPaths", "allowedPaths must be an array of directory paths");
  const allowedPaths = dirs.map((d, i) => {
    if (typeof d !== "string" || !d.trim()) throw new InvalidArgumentError("allowedPaths", `allowedPaths[${i}] must be a non-empty directory path`);
    if (d.includes("\0")) throw new InvalidArgumentError("allowedPaths", `allowedPaths[${i}] contains a NUL byte`);
    return path.resolve(cwd, d);
  });
  return Object.freeze({ allowFileLoad: o.allowFileLoad ?? false, allowedPaths: Object.freeze([...new Set(allowedPaths)]) });
}

/**
 * Splits a `TRELLIS_ALLOWED_PATH` value on the path-list separator (`:` on POSIX, `;` on Windows), dropping empty parts.
 */
export function parseAllowedPathList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(path.delimiter).map((s) => s.trim()).filter(Boolean);
}

/** True when `p` is strictly inside `dir` (both absolute and normalized). */
function inside(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

function real(p: string): string | undefined {
  try {
    return realpathSync.native(p);
  } catch {
    return undefined;
  }
}

/**
 * Decides whether `ref` (resolved by its loader to `target`) may be loaded, before anything is read.
 *
 * - `allowFileLoad`: every file path and URL is allowed; the path is returned unchanged and not touched.
 * - otherwise a URL is refused (naming `--allow-file-load`);
 * - a file path is refused (naming `--allow-file-load`) when there are no `allowedPaths`; refused (naming
 *   `--allowed-path`) when it is not lexically inside one of them or of their real paths; otherwise its real path is
 *   taken and must lie inside one directory's real path.
 *
 * @returns what to load: the URL, the path (with `allowFileLoad`) or the file's real path (under `allowedPaths`).
 * @throws LoadNotAllowedError (`LOAD_NOT_ALLOWED`, `details.flag` naming the flag that would allow it);
 *   NotFoundError when the path is inside an allowed directory but does not exist.
 */
export function checkLoad(perms: LoadPermissions, what: LoadSubject, ref: string, target: LoadTarget): string {
  if (target.kind === "url") {
    if (perms.allowFileLoad) return target.url;
    throw new LoadNotAllowedError(
      `${what} ${ref} is an http(s) URL; this host downloads ${what}s only when started with ${ALLOW_FILE_LOAD_FLAG} (${ALLOW_FILE_LOAD_ENV}=true)`,
      { ref, flag: ALLOW_FILE_LOAD_FLAG },
    );
  }
  const p = path.resolve(target.path);
  if (perms.allowFileLoad) return p;
  if (perms.allowedPaths.length === 0) {
    throw new LoadNotAllowedError(
      `${what} ${ref} is a file path; this host loads ${what}s from files only when started with ${ALLOW_FILE_LOAD_FLAG} (${ALLOW_FILE_LOAD_ENV}=true) or when the file lies under an ${ALLOWED_PATH_FLAG} directory (${ALLOWED_PATH_ENV})`,
      { ref, flag: ALLOW_FILE_LOAD_FLAG },
    );
  }
  const outside = () =>
    new LoadNotAllowedError(
      `${what} ${ref} is not under any ${ALLOWED_PATH_FLAG} directory of this host (after resolving .. and symlinks); start the host with ${ALLOWED_PATH_FLAG} for its directory or with ${ALLOW_FILE_LOAD_FLAG}`,
      { ref, flag: ALLOWED_PATH_FLAG },
    );
  const dirs = perms.allowedPaths.flatMap((d) => {
    const r = real(d);
    return r === undefined || r === d ? [d] : [d, r];
  });
  // Lexical pre-check: a path outside every directory is refused without touching it.
  if (!dirs.some((d) => inside(d, p))) throw outside();
  const resolved = real(p);
  if (resolved === undefined) throw new NotFoundError(`cannot read ${what} ${ref}: the file does not exist`, { ref });
  const realDirs = perms.allowedPaths.map((d) => real(d)).filter((d): d is string => d !== undefined);
  if (!realDirs.some((d) => inside(d, resolved))) throw outside();
  return resolved;
}
