/**
 * Host options → validated, immutable host config, compiled once at start (docs/adr/0003-host-configuration.md).
 * Every option has a CLI flag and a `TRELLIS_*` environment twin (src/cli/commands/up.ts reads them, not this module).
 * @module
 */
import { compileOciOptions, type OciConfig, type OciOptions } from "../oci/options.ts";
import { homedir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { InvalidArgumentError } from "../core/errors.ts";
import { validateId, validateLabel } from "../core/ids.ts";
import { type NatsAuth, type NatsAuthOptions, parseNatsAuth } from "../core/connection.ts";
import { type Logger, createLogger } from "../core/logger.ts";
import type { WorkloadFactories } from "./workloads.ts";
import { defaultWorkloads } from "./default-workloads.ts";
import { resolveInvocationLimits, type ResolvedInvocationLimits } from "../../packages/wire/src/invocation/uploads.ts";
import { validateKvReplicas } from "../lattice/kv.ts";
import { compileLoadPermissions, type LoadPermissions } from "../policy/allow.ts";
import { compilePolicyOptions, type PolicyConfig } from "../policy/service.ts";
import type { ClaimsPolicy } from "../claims/policy.ts";
import { compileTracingOptions, type TracingSettings } from "../tracing/settings.ts";
import { parseListenAddress } from "../metrics/listen.ts";

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
  /**
   * Credentials and TLS of the host's NATS connection, also used by its component workers and given to the providers
   * it spawns (docs/security.md). @default none: anonymous, plain TCP (`--nats-creds`, `--nats-nkey`, `--nats-user`/
   * `--nats-password`, `--nats-token`, `--nats-tls-ca`/`-cert`/`-key`; `TRELLIS_NATS_*`)
   */
  natsAuth?: NatsAuthOptions;
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
   * Most chunked uploads each component worker holds at once (docs/protocol.md §7.1); one more is refused with
   * `TOO_MANY_UPLOADS`. @default 16 (`TRELLIS_MAX_UPLOADS`)
   */
  maxUploads?: number;
  /**
   * Most bytes each component worker buffers for chunked uploads, counted as they arrive; beyond it an upload is
   * dropped with `UPLOAD_BUFFER_FULL`. @default 134217728 (128 MiB) (`TRELLIS_MAX_UPLOAD_BYTES`)
   */
  maxUploadBytes?: number;
  /** Longest caller `trellis-timeout-ms` honoured, in milliseconds; larger ones are cut to it. @default 60000 (`TRELLIS_MAX_CALL_TIMEOUT_MS`) */
  maxCallTimeoutMs?: number;
  /**
   * Serve wadm's API (`wadm.api.{lattice}.model.*`, one queue group shared by the lattice's hosts) and keep this
   * host's part of the `wadm_state` KV bucket, so washboard and `wash app …` work (src/app/wadm, ADR 0013). Turn it
   * off when a real wadm serves the lattice. @default true (`TRELLIS_WADM`, `--no-wadm`)
   */
  wadm?: boolean;
  /**
   * Replica count (1–5) of the lattice KV buckets this host creates (`LATTICEDATA_`, `CONFIGDATA_`); an existing
   * bucket keeps its own. @default 3 when the NATS server is in a cluster of 3 or more servers, else 1
   * (`--kv-replicas`, `TRELLIS_KV_REPLICAS`; docs/nats-cluster.md)
   */
  kvReplicas?: number;
  /**
   * JetStream domain whose JetStream holds the lattice data, for a host connected to a leaf node that reaches the hub's
   * JetStream through the leaf connection. @default the connected server's own JetStream (`--js-domain`,
   * `TRELLIS_JS_DOMAIN`; docs/nats-cluster.md, "Across sites")
   */
  jsDomain?: string;
  /**
   * Load components and providers from any file path, and components from any http(s) URL (wasmCloud 1.x's flag).
   * Without it (and outside `allowedPaths`) only first-party providers by name run (docs/security.md).
   * @default false (`--allow-file-load`, `TRELLIS_ALLOW_FILE_LOAD=true`)
   */
  allowFileLoad?: boolean;
  /**
   * Directories whose files may be loaded as components or providers (real paths compared, so `..` and symlinks cannot
   * escape). @default [] (`--allowed-path DIR`, repeatable; `TRELLIS_ALLOWED_PATH=DIR:DIR`)
   */
  allowedPaths?: readonly string[];
  /** Policy service subject (reference §6.4); none: everything is permitted. (`--policy-topic`, `TRELLIS_POLICY_TOPIC`) */
  policyTopic?: string;
  /** Subject of policy decision overrides; requires `policyTopic`. (`--policy-changes-topic`, `TRELLIS_POLICY_CHANGES_TOPIC`) */
  policyChangesTopic?: string;
  /** Wait for a policy decision, in milliseconds; no answer denies. @default 1000 (`--policy-timeout-ms`, `TRELLIS_POLICY_TIMEOUT_MS`) */
  policyTimeoutMs?: number;
  /** Ask the policy service before each invocation a component serves (cached). @default true (`--no-policy-invocations`, `TRELLIS_POLICY_INVOCATIONS=false`) */
  policyInvocations?: boolean;
  /**
   * Run the resident app reconciler (src/app/reconciler, ADR 0012): the host contends for the lattice's reconciler
   * lease and, while it holds it, keeps the stored apps applied. @default true (`--no-reconciler`,
   * `TRELLIS_NO_RECONCILER=1`)
   */
  reconciler?: boolean;
  /** Interval of the host's liveness beats, in milliseconds (ADR 0012). @default 1000 (`TRELLIS_LIVENESS_INTERVAL_MS`) */
  livenessIntervalMs?: number;
  /** Time-to-live of the reconciler lease, in milliseconds (≥ 100). @default 3000 (`TRELLIS_RECONCILER_LEASE_TTL_MS`) */
  reconcilerLeaseTtlMs?: number;
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
  /**
   * Pulling components and providers by OCI reference (src/oci, docs/adr/0018-oci.md): credentials, `allowLatest`,
   * plain-HTTP hosts, mirrors, the first-party provider aliases. `cacheDir` defaults to the host's. (`--oci-user`,
   * `--oci-password`, `--allow-latest`, `--oci-allowed-insecure`, `--oci-mirror`, `--no-builtin-aliases` and their
   * `TRELLIS_OCI_*` twins)
   */
  oci?: Omit<OciOptions, "cacheDir"> & { cacheDir?: string };
  /**
   * Carry W3C trace context (`traceparent`, `tracestate`) on every invocation the host's components serve and make,
   * and record the spans of explained traces (`trellis explain`, ADR 0025). @default true (`--no-tracing`,
   * `TRELLIS_TRACING=false`)
   */
  tracing?: boolean;
  /**
   * OTLP/HTTP endpoint (base URL; `/v1/traces` is appended) the host's spans and its providers' are exported to (JSON).
   * None: nothing is exported. (`--otlp-endpoint`, `TRELLIS_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`)
   */
  otlpEndpoint?: string;
  /** Full OTLP/HTTP traces URL; wins over `otlpEndpoint`. (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) */
  otlpTracesEndpoint?: string;
  /** `service.name` of the host's spans. @default "trellis-host" (`OTEL_SERVICE_NAME`) */
  serviceName?: string;
  /**
   * `HOST:PORT` of a Prometheus endpoint (`GET /metrics`) with per-component and per-link call metrics (ADR 0026).
   * None: no endpoint (the metrics are still in the inventory). (`--metrics-listen`, `TRELLIS_METRICS_LISTEN`)
   */
  metricsListen?: string;
}

/** Default interval of host liveness beats: 1 s (ADR 0012). */
export const DEFAULT_LIVENESS_INTERVAL_MS = 1_000;
/** Default reconciler lease time-to-live: 3 s (ADR 0012). */
export const DEFAULT_RECONCILER_LEASE_TTL_MS = 3_000;

/** {@link HostOptions} with defaults filled and values checked. */
export interface HostConfig {
  readonly lattice: string;
  readonly natsUrl: string;
  readonly nc: NatsConnection | undefined;
  readonly natsAuth: NatsAuth;
  readonly hostSeed: string | undefined;
  readonly friendlyName: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly heartbeatIntervalMs: number;
  readonly rpcTimeoutMs: number;
  readonly maxControlPayloadBytes: number;
  readonly cacheDir: string;
  readonly logger: Logger;
  readonly workloads: Partial<WorkloadFactories>;
  /** `maxUploads`, `maxUploadBytes`, `maxCallTimeoutMs` resolved. */
  readonly invocationLimits: ResolvedInvocationLimits;
  readonly wadm: boolean;
  /** Undefined: decided from the server's cluster size when the buckets are created. */
  readonly kvReplicas: number | undefined;
  readonly jsDomain: string | undefined;
  /** OCI settings, validated. */
  readonly oci: OciConfig;
  /** What may be loaded from files and URLs (`allowFileLoad`, `allowedPaths`). */
  readonly load: LoadPermissions;
  /** The policy service (`policyTopic`, `policyChangesTopic`, `policyTimeoutMs`, `policyInvocations`). */
  readonly policy: PolicyConfig;
  readonly reconciler: boolean;
  readonly livenessIntervalMs: number;
  readonly reconcilerLeaseTtlMs: number;
  readonly claims: ClaimsPolicy;
  readonly secretsTopic: string | undefined;
  /** Tracing (`tracing`, `otlpEndpoint`, `otlpTracesEndpoint`, `serviceName`). */
  readonly tracing: TracingSettings;
  /** Where the Prometheus endpoint listens; undefined: none. */
  readonly metricsListen: { host: string; port: number } | undefined;
}

function positiveInt(field: string, value: number | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isInteger(value) || value <= 0) {
    throw new InvalidArgumentError(field, `${field} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function leaseTtl(value: number | undefined): number {
  const v = positiveInt("reconcilerLeaseTtlMs", value, DEFAULT_RECONCILER_LEASE_TTL_MS);
  if (v < 100) throw new InvalidArgumentError("reconcilerLeaseTtlMs", `reconcilerLeaseTtlMs must be at least 100, got ${v}`);
  return v;
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
    validateLabel("labels", k, v);
    labels[k] = v;
  }
  const natsUrl = opts.natsUrl ?? DEFAULT_NATS_URL;
  if (!natsUrl.trim()) throw new InvalidArgumentError("natsUrl", "natsUrl must not be empty");
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache");
  return Object.freeze({
    lattice,
    natsUrl,
    nc: opts.nc,
    natsAuth: parseNatsAuth(opts.natsAuth),
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
    invocationLimits: resolveInvocationLimits({
      ...(opts.maxUploads === undefined ? {} : { maxUploads: opts.maxUploads }),
      ...(opts.maxUploadBytes === undefined ? {} : { maxUploadBytes: opts.maxUploadBytes }),
      ...(opts.maxCallTimeoutMs === undefined ? {} : { maxCallTimeoutMs: opts.maxCallTimeoutMs }),
    }),
    wadm: opts.wadm ?? true,
    kvReplicas: opts.kvReplicas === undefined ? undefined : validateKvReplicas(opts.kvReplicas, "kvReplicas"),
    jsDomain: opts.jsDomain === undefined || opts.jsDomain === "" ? undefined : validateId("jsDomain", opts.jsDomain),
    oci: compileOciOptions({ ...opts.oci, cacheDir: opts.oci?.cacheDir ?? opts.cacheDir ?? join(base, "trellis") }),
    load: compileLoadPermissions({
      ...(opts.allowFileLoad === undefined ? {} : { allowFileLoad: opts.allowFileLoad }),
      ...(opts.allowedPaths === undefined ? {} : { allowedPaths: opts.allowedPaths }),
    }),
    policy: compilePolicyOptions({
      ...(opts.policyTopic === undefined ? {} : { topic: opts.policyTopic }),
      ...(opts.policyChangesTopic === undefined ? {} : { changesTopic: opts.policyChangesTopic }),
      ...(opts.policyTimeoutMs === undefined ? {} : { timeoutMs: opts.policyTimeoutMs }),
      ...(opts.policyInvocations === undefined ? {} : { invocations: opts.policyInvocations }),
    }),
    reconciler: opts.reconciler ?? true,
    livenessIntervalMs: positiveInt("livenessIntervalMs", opts.livenessIntervalMs, DEFAULT_LIVENESS_INTERVAL_MS),
    reconcilerLeaseTtlMs: leaseTtl(opts.reconcilerLeaseTtlMs),
    claims: compileClaimsPolicy(opts),
    secretsTopic: compileSecretsTopic(opts.secretsTopic),
    tracing: compileTracingOptions({
      ...(opts.tracing === undefined ? {} : { tracing: opts.tracing }),
      ...(opts.otlpEndpoint ? { otlpEndpoint: opts.otlpEndpoint } : {}),
      ...(opts.otlpTracesEndpoint ? { otlpTracesEndpoint: opts.otlpTracesEndpoint } : {}),
      ...(opts.serviceName ? { serviceName: opts.serviceName } : {}),
    }),
    metricsListen: opts.metricsListen ? parseListenAddress("metricsListen", opts.metricsListen) : undefined,
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
