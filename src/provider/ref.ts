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

/**
 * Resolves `ref` to a command.
 * @param cwd directory relative paths resolve against. @default process.cwd()
 * @param firstPartyDir where bare names are looked up. @default {@link FIRST_PARTY_DIR}
 * @throws InvalidArgumentError (`provider_ref`) for an empty or unsupported reference (OCI, other URL schemes);
 *   NotFoundError when the file does not exist, is not a regular file, or (for a direct executable) is not executable.
 */
export function resolveProviderRef(ref: string, cwd = process.cwd(), firstPartyDir = FIRST_PARTY_DIR): ProviderCommand {
  const r = ref.trim();
  if (!r) throw new InvalidArgumentError("provider_ref", "provider_ref must not be empty");
  let file: string;
  if (r.startsWith("file://")) {
    try {
      file = fileURLToPath(r);
    } catch (err) {
      throw new InvalidArgumentError("provider_ref", `bad file URL ${JSON.stringify(r)}: ${(err as Error).message}`);
    }
  } else if (r.includes("/") || r.startsWith(".")) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(r)) {
      throw new InvalidArgumentError("provider_ref", `unsupported provider_ref ${JSON.stringify(r)}: use a file path, a file:// URL or a first-party provider name`);
    }
    file = path.resolve(cwd, r);
  } else if (FIRST_PARTY_RE.test(r)) {
    file = path.join(firstPartyDir, r, "main.ts");
    if (!isFile(file)) throw new NotFoundError(`no first-party provider named ${r} (looked for ${file})`, { provider_ref: r });
    return { command: process.execPath, args: [file], file };
  } else {
    throw new InvalidArgumentError(
      "provider_ref",
      `unsupported provider_ref ${JSON.stringify(r)}: use a file path, a file:// URL or a first-party provider name (OCI references are not supported)`,
    );
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

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
