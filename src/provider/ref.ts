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
import { BUILTIN_ALIASES, firstPartyAlias } from "../oci/aliases.ts";
import { looksLikeOciRef } from "../oci/reference.ts";

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
  | { kind: "file"; file: string }
  | { kind: "oci"; ref: string; file: string };

/**
 * Classifies `ref` without touching the file system: a first-party name (`providers/<name>/main.ts`), an alias of one
 * (`wasmcloud+builtin://http-server`, `ghcr.io/wasmcloud/http-server:0.27.0`; src/oci/aliases.ts, unless `aliases` is
 * false), an OCI reference (`registry/repo:tag`, `@sha256:…`, `oci://…`: pulled by the supervisor), or a file path.
 * The host's admission check (src/policy) runs on the result before anything is stat'ed or spawned.
 * @param cwd directory relative paths resolve against. @default process.cwd()
 * @param firstPartyDir where bare names are looked up. @default {@link FIRST_PARTY_DIR}
 * @param aliases map wasmCloud 1.x builtin and well-known provider references to first-party providers. @default true
 * @throws InvalidArgumentError (`provider_ref`) for an empty or unsupported reference (other URL schemes, a
 *   `wasmcloud+builtin://` name with no first-party provider or with aliases off).
 */
export function classifyProviderRef(ref: string, cwd = process.cwd(), firstPartyDir = FIRST_PARTY_DIR, aliases = true): ProviderTarget {
  const r = ref.trim();
  if (!r) throw new InvalidArgumentError("provider_ref", "provider_ref must not be empty");
  const alias = aliases ? firstPartyAlias(r) : undefined;
  if (alias !== undefined) return { kind: "first-party", name: alias, file: path.join(firstPartyDir, alias, "main.ts") };
  if (r.startsWith("wasmcloud+builtin://")) {
    throw new InvalidArgumentError(
      "provider_ref",
      aliases
        ? `no first-party provider stands for ${r} (known: ${Object.keys(BUILTIN_ALIASES).map((n) => `wasmcloud+builtin://${n}`).join(", ")})`
        : `${r} needs the first-party provider aliases, which this host turned off (--no-builtin-aliases)`,
    );
  }
  if (looksLikeOciRef(r)) return { kind: "oci", ref: r, file: "" };
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
  const target = classifyProviderRef(ref, cwd, firstPartyDir);
  if (target.kind === "oci") throw new InvalidArgumentError("provider_ref", `${ref} is an OCI reference: a host's supervisor pulls it (src/oci)`);
  return providerCommand(ref, target);
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
