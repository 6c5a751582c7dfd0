/**
 * OCI options → validated, immutable config (once, at start), shared by hosts and the CLI.
 * Flags and env twins (`trellis up`, `trellis push`): `--oci-user`/`TRELLIS_OCI_USER`, `--oci-password`/
 * `TRELLIS_OCI_PASSWORD`, `--allow-latest`/`TRELLIS_OCI_ALLOW_LATEST`, `--oci-allowed-insecure HOST`/
 * `TRELLIS_OCI_ALLOWED_INSECURE`, `--oci-mirror FROM=TO`/`TRELLIS_OCI_MIRROR`, `--no-builtin-aliases`/
 * `TRELLIS_OCI_BUILTIN_ALIASES=false` — as wasmCloud 1.x's `--allow-latest`, `--oci-allowed-insecure`,
 * `--oci-user`, `--oci-password`.
 * @module
 */
import { homedir } from "node:os";
import path from "node:path";
import { z } from "zod";
import { InvalidArgumentError } from "../core/errors.ts";

/** Default time limit of one registry request, in milliseconds: 60 s. */
export const DEFAULT_OCI_TIMEOUT_MS = 60_000;
/** Default largest artifact layer accepted, in bytes: 256 MiB. */
export const DEFAULT_OCI_MAX_BYTES = 256 * 1024 * 1024;

const host = z.string().regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/, "a registry host such as ghcr.io or 127.0.0.1:5000");

const schema = z.object({
  cacheDir: z.string().min(1),
  allowLatest: z.boolean().default(false),
  insecureHosts: z.array(host).default([]),
  mirrors: z.record(host, host).default({}),
  user: z.string().min(1).optional(),
  password: z.string().optional(),
  dockerConfigPath: z.string().min(1).optional(),
  builtinAliases: z.boolean().default(true),
  timeoutMs: z.number().int().positive().default(DEFAULT_OCI_TIMEOUT_MS),
  maxBytes: z.number().int().positive().default(DEFAULT_OCI_MAX_BYTES),
});

/** What a user passes; see {@link OciConfig} for the meaning of each field. */
export type OciOptions = z.input<typeof schema>;

/** Validated OCI settings. */
export interface OciConfig {
  /** Root of the content-addressed cache; blobs live in `{cacheDir}/oci/blobs/sha256/`. */
  readonly cacheDir: string;
  /** Accept `:latest` (and references without a tag). @default false, as wasmCloud 1.x */
  readonly allowLatest: boolean;
  /** Registry hosts reached over plain HTTP (`--oci-allowed-insecure`). @default [] */
  readonly insecureHosts: readonly string[];
  /** Registry host → host to fetch from instead (`--oci-mirror ghcr.io=127.0.0.1:5000`). @default {} */
  readonly mirrors: Readonly<Record<string, string>>;
  /** Credentials for every registry (`--oci-user`/`--oci-password`); a docker `config.json` entry is used otherwise. */
  readonly user: string | undefined;
  readonly password: string | undefined;
  /** A docker `config.json` whose `auths` give per-registry credentials. @default `~/.docker/config.json` */
  readonly dockerConfigPath: string;
  /** Map `wasmcloud+builtin://…` and the well-known wasmCloud 1.x provider images to first-party providers. @default true */
  readonly builtinAliases: boolean;
  /** Time limit of one registry request, in milliseconds. @default 60000 */
  readonly timeoutMs: number;
  /** Largest layer accepted, in bytes. @default 268435456 */
  readonly maxBytes: number;
}

/**
 * Validates OCI options once.
 * @throws InvalidArgumentError naming the bad field (a mirror or insecure host that is not a host, a non-positive
 *   timeout, a password without a user).
 */
export function compileOciOptions(opts: OciOptions): OciConfig {
  const parsed = schema.safeParse(opts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") || "oci";
    throw new InvalidArgumentError(field, `oci option ${field}: ${issue?.message ?? "invalid"}`);
  }
  const o = parsed.data;
  if (o.password !== undefined && o.user === undefined) throw new InvalidArgumentError("user", "an OCI password needs a user (--oci-user)");
  return Object.freeze({
    cacheDir: o.cacheDir,
    allowLatest: o.allowLatest,
    insecureHosts: Object.freeze([...o.insecureHosts]),
    mirrors: Object.freeze({ ...o.mirrors }),
    user: o.user,
    password: o.password,
    dockerConfigPath: o.dockerConfigPath ?? path.join(homedir(), ".docker", "config.json"),
    builtinAliases: o.builtinAliases,
    timeoutMs: o.timeoutMs,
    maxBytes: o.maxBytes,
  });
}

/**
 * Parses `FROM=TO` mirror entries (repeatable flag, or a comma-separated env value).
 * @throws InvalidArgumentError for an entry without `=`.
 */
export function parseMirrors(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries.flatMap((x) => x.split(",")).map((x) => x.trim()).filter(Boolean)) {
    const eq = e.indexOf("=");
    if (eq <= 0 || eq === e.length - 1) throw new InvalidArgumentError("oci-mirror", `--oci-mirror takes FROM=TO (e.g. ghcr.io=127.0.0.1:5000), got ${JSON.stringify(e)}`);
    out[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return out;
}
