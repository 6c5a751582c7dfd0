/**
 * Resolves a `provider_ref` (reference §1.4 `provider.start`) to a command to spawn
 * (docs/protocol.md "Provider contract → Starting a provider").
 *
 * - `file:///abs/path` or a path (absolute, or containing `/`; relative paths resolve against the host's working
 *   directory): an executable, spawned directly (the polyglot case). A path ending in `.ts`, `.mts`, `.js` or `.mjs`
 *   is run with the host's Node binary instead.
 * - a bare name such as `kv-memory`: a first-party provider, `providers/<name>/main.ts` of this repository, run with
 *   the host's Node binary (`process.execPath`).
 * OCI references are not supported.
 * @module
 */
import { accessSync, constants, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError, NotFoundError } from "../core/errors.ts";

/** A resolved provider: what to spawn. */
export interface ProviderCommand {
  /** The executable. */
  command: string;
  /** Its arguments. */
  args: string[];
  /** The file that was resolved (the script for Node-run providers). */
  file: string;
}

/** Directory of first-party providers: `providers/` at the repository root. */
export const FIRST_PARTY_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "providers");

const FIRST_PARTY_RE = /^[a-z0-9][a-z0-9-]*$/;
const NODE_SCRIPT_RE = /\.(ts|mts|js|mjs)$/;

/** Where a `provider_ref` points, read from the text alone (no file system access). */
export type ProviderTarget =
  | { kind: "first-party"; name: string; file: string }
  | { kind: "file"; file: string };

/**
 * Classifies `ref` without touching the file system: a first-party name (`providers/<name>/main.ts`) or a file path.
 * The host's admission check (src/policy) runs on the result before anything is stat'ed or spawned.
 * @param cwd directory relative paths resolve against. @default process.cwd()
 * @param firstPartyDir where bare names are looked up. @default {@link FIRST_PARTY_DIR}
 * @throws InvalidArgumentError (`provider_ref`) for an empty or unsupported reference (OCI, other URL schemes).
 */
export function classifyProviderRef(ref: string, cwd = process.cwd(), firstPartyDir = FIRST_PARTY_DIR): ProviderTarget {
  const r = ref.trim();
  if (!r) throw new InvalidArgumentError("provider_ref", "provider_ref must not be empty");
  if (r.startsWith("file://")) {
    try {
      return { kind: "file", file: fileURLToPath(r) };
    } catch (err) {
      throw new InvalidArgumentError("provider_ref", `bad file URL ${JSON.stringify(r)}: ${(err as Error).message}`);
    }
  }
  if (r.includes("/") || r.startsWith(".")) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(r)) {
      throw new InvalidArgumentError("provider_ref", `unsupported provider_ref ${JSON.stringify(r)}: use a file path, a file:// URL or a first-party provider name`);
    }
    return { kind: "file", file: path.resolve(cwd, r) };
  }
  if (FIRST_PARTY_RE.test(r)) return { kind: "first-party", name: r, file: path.join(firstPartyDir, r, "main.ts") };
  throw new InvalidArgumentError(
    "provider_ref",
    `unsupported provider_ref ${JSON.stringify(r)}: use a file path, a file:// URL or a first-party provider name (OCI references are not supported)`,
  );
}

/**
 * The command that runs a classified provider; checks that the file exists (and, for a direct executable, that it is
 * executable).
 * @param file the file to run: `target.file`, or the path the admission check returned for it.
 * @throws NotFoundError when the file does not exist, is not a regular file, or is not executable.
 */
export function providerCommand(ref: string, target: ProviderTarget, file = target.file): ProviderCommand {
  const r = ref.trim();
  if (target.kind === "first-party") {
    if (!isFile(file)) throw new NotFoundError(`no first-party provider named ${target.name} (looked for ${file})`, { provider_ref: r });
    return { command: process.execPath, args: [file], file };
  }
  if (!isFile(file)) throw new NotFoundError(`provider executable ${file} does not exist or is not a file`, { provider_ref: r });
  if (NODE_SCRIPT_RE.test(file)) return { command: process.execPath, args: [file], file };
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new NotFoundError(`provider executable ${file} is not executable (chmod +x it)`, { provider_ref: r });
  }
  return { command: file, args: [], file };
}

/**
 * Resolves `ref` to a command ({@link classifyProviderRef}, then {@link providerCommand}). Does no admission check:
 * the supervisor checks between the two steps.
 * @throws as {@link classifyProviderRef} and {@link providerCommand}.
 */
export function resolveProviderRef(ref: string, cwd = process.cwd(), firstPartyDir = FIRST_PARTY_DIR): ProviderCommand {
  return providerCommand(ref, classifyProviderRef(ref, cwd, firstPartyDir));
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
