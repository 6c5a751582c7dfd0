/**
 * Host options → validated, immutable host config, compiled once at start (docs/adr/0003-host-configuration.md).
 * Every option has a CLI flag and a `TRELLIS_*` environment twin (src/cli/commands/up.ts reads them, not this module).
 * @module
 */
import { homedir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { InvalidArgumentError } from "../core/errors.ts";
import { validateId } from "../core/ids.ts";
import { type Logger, createLogger } from "../core/logger.ts";
import type { WorkloadFactories } from "./workloads.ts";
import { defaultWorkloads } from "./default-workloads.ts";
import type { ClaimsPolicy } from "../claims/policy.ts";

/** Default lattice name. */
export const DEFAULT_LATTICE = "default";
/** Default NATS URL. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
/** Default heartbeat interval: 30 s, as wasmCloud (reference §5). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000;
/** Default timeout of lattice calls made by the host (invocations, provider requests): 2 s, as wasmCloud. */
export const DEFAULT_RPC_TIMEOUT_MS = 2_000;
/** Default largest control-interface request the host accepts: 512 KiB. */
export const DEFAULT_MAX_CONTROL_PAYLOAD_BYTES = 512 * 1024;

/** What a user passes to {@link Host.create}. Every field is optional. */
export interface HostOptions {
  /** Lattice name; a NATS subject token. @default "default" (`TRELLIS_LATTICE`) */
  lattice?: string;
  /** NATS server URL(s), comma-separated. @default "nats://127.0.0.1:4222" (`TRELLIS_NATS_URL`) */
  natsUrl?: string;
  /** An existing NATS connection to use instead of connecting; the host does not close it. */
  nc?: NatsConnection;
  /** Server nkey seed (`SN…`) fixing the host id; a new key per start when absent. (`TRELLIS_HOST_SEED`) */
  hostSeed?: string;
  /** Friendly name. @default a random `{adjective}-{noun}-{number}` (`TRELLIS_FRIENDLY_NAME`) */
  friendlyName?: string;
  /** User labels, added to the built-in `hostcore.*` ones, which they may not override. (`--label k=v`, `TRELLIS_LABEL_k=v`) */
  labels?: Record<string, string>;
  /** Interval of `host_heartbeat` events, in milliseconds. @default 30000 (`TRELLIS_HEARTBEAT_INTERVAL_MS`) */
  heartbeatIntervalMs?: number;
  /** Default timeout of lattice calls made by the host, in milliseconds. @default 2000 (`TRELLIS_RPC_TIMEOUT_MS`) */
  rpcTimeoutMs?: number;
  /** Largest control-interface request accepted, in bytes. @default 524288 (`TRELLIS_MAX_CONTROL_PAYLOAD_BYTES`) */
  maxControlPayloadBytes?: number;
  /** Directory for caches (compiled components). @default `$XDG_CACHE_HOME/trellis` or `~/.cache/trellis` (`TRELLIS_CACHE_DIR`) */
  cacheDir?: string;
  /** Structured logger. @default JSON to stderr at level info */
  logger?: Logger;
  /**
   * How components and providers are run. @default {@link defaultWorkloads}: the component runtime (src/component)
   * and the capability provider supervisor (src/provider); `{}` gives a host that only keeps lattice data.
   */
  workloads?: Partial<WorkloadFactories>;
  /**
   * Refuse components and providers without valid embedded claims (docs/adr/0016-claims.md). Signed ones are
   * always verified (hash, signature, dates). @default false (`--require-signed`, `TRELLIS_REQUIRE_SIGNED`)
   */
  requireSigned?: boolean;
  /**
   * Issuers (account public keys, `A…`) whose signatures this host accepts; when non-empty, unsigned workloads and
   * other issuers are refused. @default [] (`--allowed-issuer KEY`, repeatable; `TRELLIS_ALLOWED_ISSUERS`, comma-separated)
   */
  allowedIssuers?: string[];
  /**
   * Subject prefix of the secrets backend (reference §6.5), e.g. `wasmcloud.secrets`; secret references (`SECRET_…`)
   * can only be resolved when it is set. (`--secrets-topic`, `TRELLIS_SECRETS_TOPIC`; 1.x's `WASMCLOUD_SECRETS_TOPIC`)
   */
  secretsTopic?: string;
}

/** {@link HostOptions} with defaults filled and values checked. */
export interface HostConfig {
  readonly lattice: string;
  readonly natsUrl: string;
  readonly nc: NatsConnection | undefined;
  readonly hostSeed: string | undefined;
  readonly friendlyName: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly heartbeatIntervalMs: number;
  readonly rpcTimeoutMs: number;
  readonly maxControlPayloadBytes: number;
  readonly cacheDir: string;
  readonly logger: Logger;
  readonly workloads: Partial<WorkloadFactories>;
  readonly claims: ClaimsPolicy;
  readonly secretsTopic: string | undefined;
}

function positiveInt(field: string, value: number | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isInteger(value) || value <= 0) {
    throw new InvalidArgumentError(field, `${field} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/**
 * Fills defaults and validates.
 * @throws InvalidArgumentError naming the bad option (lattice not a valid token, a non-positive interval, a
 *   `hostcore.*` user label, …).
 */
export function compileHostOptions(opts: HostOptions = {}): HostConfig {
  const lattice = validateId("lattice", opts.lattice ?? DEFAULT_LATTICE);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.labels ?? {})) {
    if (k.toLowerCase().startsWith("hostcore.")) {
      throw new InvalidArgumentError("labels", `label ${k}: hostcore.* labels are set by the host and cannot be given`);
    }
    if (!k) throw new InvalidArgumentError("labels", "label keys must not be empty");
    if (typeof v !== "string") throw new InvalidArgumentError("labels", `label ${k} must have a string value`);
    labels[k] = v;
  }
  const natsUrl = opts.natsUrl ?? DEFAULT_NATS_URL;
  if (!natsUrl.trim()) throw new InvalidArgumentError("natsUrl", "natsUrl must not be empty");
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache");
  return Object.freeze({
    lattice,
    natsUrl,
    nc: opts.nc,
    hostSeed: opts.hostSeed,
    friendlyName: opts.friendlyName,
    labels: Object.freeze(labels),
    heartbeatIntervalMs: positiveInt("heartbeatIntervalMs", opts.heartbeatIntervalMs, DEFAULT_HEARTBEAT_INTERVAL_MS),
    rpcTimeoutMs: positiveInt("rpcTimeoutMs", opts.rpcTimeoutMs, DEFAULT_RPC_TIMEOUT_MS),
    maxControlPayloadBytes: positiveInt(
      "maxControlPayloadBytes",
      opts.maxControlPayloadBytes,
      DEFAULT_MAX_CONTROL_PAYLOAD_BYTES,
    ),
    cacheDir: opts.cacheDir ?? join(base, "trellis"),
    logger: opts.logger ?? createLogger(),
    workloads: opts.workloads ?? defaultWorkloads(),
    claims: compileClaimsPolicy(opts),
    secretsTopic: compileSecretsTopic(opts.secretsTopic),
  });
}

function compileClaimsPolicy(opts: HostOptions): ClaimsPolicy {
  const issuers = opts.allowedIssuers ?? [];
  if (!Array.isArray(issuers)) throw new InvalidArgumentError("allowedIssuers", "allowedIssuers must be an array of account public keys");
  for (const k of issuers) {
    if (typeof k !== "string" || !/^A[A-Z2-7]{55}$/.test(k)) {
      throw new InvalidArgumentError("allowedIssuers", `allowed issuer ${JSON.stringify(k)} is not an account public key (A…, 56 characters)`);
    }
  }
  if (opts.requireSigned !== undefined && typeof opts.requireSigned !== "boolean") {
    throw new InvalidArgumentError("requireSigned", "requireSigned must be a boolean");
  }
  return Object.freeze({ requireSigned: opts.requireSigned ?? false, allowedIssuers: Object.freeze([...new Set(issuers)]) });
}

function compileSecretsTopic(topic: string | undefined): string | undefined {
  if (topic === undefined || topic === "") return undefined;
  if (typeof topic !== "string" || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(topic)) {
    throw new InvalidArgumentError("secretsTopic", `secretsTopic must be a NATS subject prefix without wildcards (e.g. wasmcloud.secrets), got ${JSON.stringify(topic)}`);
  }
  return topic;
}
