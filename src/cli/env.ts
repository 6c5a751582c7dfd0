/**
 * The one place the CLI reads the environment: `TRELLIS_*` twins of the flags (docs/adr/0003-host-configuration.md).
 * @module
 */

/** Environment variables the CLI reads, by flag. */
export const ENV = {
  lattice: "TRELLIS_LATTICE",
  natsUrl: "TRELLIS_NATS_URL",
  timeoutMs: "TRELLIS_TIMEOUT_MS",
  output: "TRELLIS_OUTPUT",
  hostSeed: "TRELLIS_HOST_SEED",
  friendlyName: "TRELLIS_FRIENDLY_NAME",
  heartbeatIntervalMs: "TRELLIS_HEARTBEAT_INTERVAL_MS",
  rpcTimeoutMs: "TRELLIS_RPC_TIMEOUT_MS",
  maxControlPayloadBytes: "TRELLIS_MAX_CONTROL_PAYLOAD_BYTES",
  cacheDir: "TRELLIS_CACHE_DIR",
  logLevel: "TRELLIS_LOG_LEVEL",
  logFormat: "TRELLIS_LOG_FORMAT",
  natsAutostart: "TRELLIS_NATS_AUTOSTART",
  natsStoreDir: "TRELLIS_NATS_STORE_DIR",
  natsWebsocketPort: "TRELLIS_NATS_WEBSOCKET_PORT",
  dataDir: "TRELLIS_DATA_DIR",
  providerHealthIntervalMs: "TRELLIS_PROVIDER_HEALTH_INTERVAL_MS",
  providerFirstHealthCheckMs: "TRELLIS_PROVIDER_FIRST_HEALTH_CHECK_MS",
  providerShutdownDelayMs: "TRELLIS_PROVIDER_SHUTDOWN_DELAY_MS",
  providerMaxRestarts: "TRELLIS_PROVIDER_MAX_RESTARTS",
  componentMaxMemoryMb: "TRELLIS_COMPONENT_MAX_MEMORY_MB",
  componentMaxWorkers: "TRELLIS_COMPONENT_MAX_WORKERS",
  componentWorkers: "TRELLIS_COMPONENT_WORKERS",
  componentWorkerInitialHeapMb: "TRELLIS_COMPONENT_WORKER_INITIAL_HEAP_MB",
  componentCallTimeoutMs: "TRELLIS_COMPONENT_CALL_TIMEOUT_MS",
  maxUploads: "TRELLIS_MAX_UPLOADS",
  maxUploadBytes: "TRELLIS_MAX_UPLOAD_BYTES",
  maxCallTimeoutMs: "TRELLIS_MAX_CALL_TIMEOUT_MS",
  wadm: "TRELLIS_WADM",
  kvReplicas: "TRELLIS_KV_REPLICAS",
  jsDomain: "TRELLIS_JS_DOMAIN",
  allowFileLoad: "TRELLIS_ALLOW_FILE_LOAD",
  /** Directories separated by the path-list separator (`:` on POSIX). */
  allowedPath: "TRELLIS_ALLOWED_PATH",
  policyTopic: "TRELLIS_POLICY_TOPIC",
  policyChangesTopic: "TRELLIS_POLICY_CHANGES_TOPIC",
  policyTimeoutMs: "TRELLIS_POLICY_TIMEOUT_MS",
  policyInvocations: "TRELLIS_POLICY_INVOCATIONS",
  noReconciler: "TRELLIS_NO_RECONCILER",
  livenessIntervalMs: "TRELLIS_LIVENESS_INTERVAL_MS",
  reconcilerLeaseTtlMs: "TRELLIS_RECONCILER_LEASE_TTL_MS",
  natsCreds: "TRELLIS_NATS_CREDS",
  natsNkey: "TRELLIS_NATS_NKEY",
  natsUser: "TRELLIS_NATS_USER",
  natsPassword: "TRELLIS_NATS_PASSWORD",
  natsToken: "TRELLIS_NATS_TOKEN",
  natsTlsCa: "TRELLIS_NATS_TLS_CA",
  natsTlsCert: "TRELLIS_NATS_TLS_CERT",
  natsTlsKey: "TRELLIS_NATS_TLS_KEY",
  natsServerAccounts: "TRELLIS_NATS_SERVER_ACCOUNTS",
  requireSigned: "TRELLIS_REQUIRE_SIGNED",
  allowedIssuers: "TRELLIS_ALLOWED_ISSUERS",
  secretsTopic: "TRELLIS_SECRETS_TOPIC",
  tracing: "TRELLIS_TRACING",
  otlpEndpoint: "TRELLIS_OTLP_ENDPOINT",
  metricsListen: "TRELLIS_METRICS_LISTEN",
  claimsIssuer: "TRELLIS_CLAIMS_ISSUER",
  secretsKeyFile: "TRELLIS_SECRETS_KEY_FILE",
  uiListen: "TRELLIS_UI_LISTEN",
  uiOpen: "TRELLIS_UI_OPEN",
} as const;

/**
 * The global NATS credential and TLS options of every command (docs/security.md): flag, env twin (a key of
 * {@link ENV}), the `NatsAuthOptions` field it fills, and its help text.
 */
export const NATS_AUTH_FLAGS = [
  { flag: "--nats-creds <file>", key: "natsCreds", field: "credsFile", help: "NATS .creds file (user JWT + seed)" },
  { flag: "--nats-nkey <file>", key: "natsNkey", field: "nkeyFile", help: "file holding a NATS user nkey seed (SU…)" },
  { flag: "--nats-user <user>", key: "natsUser", field: "user", help: "NATS user (with --nats-password)" },
  { flag: "--nats-password <password>", key: "natsPassword", field: "password", help: "NATS password (prefer the env twin)" },
  { flag: "--nats-token <token>", key: "natsToken", field: "token", help: "NATS authorization token (prefer the env twin)" },
  { flag: "--nats-tls-ca <file>", key: "natsTlsCa", field: "tlsCaFile", help: "PEM CA of the NATS server's certificate (implies TLS)" },
  { flag: "--nats-tls-cert <file>", key: "natsTlsCert", field: "tlsCertFile", help: "PEM client certificate for mutual TLS" },
  { flag: "--nats-tls-key <file>", key: "natsTlsKey", field: "tlsKeyFile", help: "PEM key of --nats-tls-cert" },
] as const;

/** Prefix of label variables: `TRELLIS_LABEL_zone=east` gives label `zone=east`. */
export const LABEL_ENV_PREFIX = "TRELLIS_LABEL_";

/** A snapshot of the environment, taken once at start. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Labels from `TRELLIS_LABEL_*` variables. */
export function envLabels(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith(LABEL_ENV_PREFIX) && v !== undefined) out[k.slice(LABEL_ENV_PREFIX.length)] = v;
  return out;
}

/**
 * wash / wasmCloud 1.x variables honoured as fall-backs of a `TRELLIS_*` twin (docs/from-wasmcloud.md): the first set
 * name of `names` fills `ENV[key]` when that is unset, through `convert` when the unit or spelling differs. A
 * `TRELLIS_*` variable wins over these; a flag wins over both. Names from wash v1.9.2 and the wasmCloud 1.x host.
 */
export const WASMCLOUD_FALLBACKS: readonly { key: keyof typeof ENV; names: readonly string[]; convert?: (v: string) => string }[] = [
  { key: "lattice", names: ["WASMCLOUD_LATTICE"] },
  { key: "timeoutMs", names: ["WASMCLOUD_CTL_TIMEOUT_MS"] },
  { key: "natsCreds", names: ["WASMCLOUD_CTL_CREDS", "WASH_CTL_CREDS", "WASMCLOUD_NATS_CREDS"] },
  { key: "natsTlsCa", names: ["WASMCLOUD_CTL_TLS_CA_FILE", "WASH_CTL_TLS_CA_FILE"] },
  { key: "jsDomain", names: ["WASMCLOUD_JS_DOMAIN"] },
  { key: "hostSeed", names: ["WASMCLOUD_HOST_SEED"] },
  { key: "allowFileLoad", names: ["WASMCLOUD_ALLOW_FILE_LOAD"] },
  { key: "rpcTimeoutMs", names: ["WASMCLOUD_RPC_TIMEOUT_MS"] },
  /** wasmCloud counts seconds. */
  { key: "heartbeatIntervalMs", names: ["WASMCLOUD_HEARTBEAT_INTERVAL"], convert: (v) => (/^\d+$/.test(v.trim()) ? String(Number(v) * 1000) : v) },
  { key: "policyTopic", names: ["WASMCLOUD_POLICY_TOPIC"] },
  { key: "policyChangesTopic", names: ["WASMCLOUD_POLICY_CHANGES_TOPIC"] },
  { key: "policyTimeoutMs", names: ["WASMCLOUD_POLICY_TIMEOUT"] },
  { key: "providerShutdownDelayMs", names: ["WASMCLOUD_PROV_SHUTDOWN_DELAY_MS"] },
  { key: "secretsTopic", names: ["WASMCLOUD_SECRETS_TOPIC"] },
  /** wasmCloud's `critical` is Trellis's `error`. */
  { key: "logLevel", names: ["WASMCLOUD_LOG_LEVEL"], convert: (v) => (v.trim().toLowerCase() === "critical" ? "error" : v.trim().toLowerCase()) },
  { key: "logFormat", names: ["WASMCLOUD_STRUCTURED_LOGGING_ENABLED"], convert: (v) => (/^(true|1|yes)$/i.test(v.trim()) ? "json" : "text") },
];

/** Prefix of wasmCloud's label variables: `WASMCLOUD_LABEL_zone=east` is `TRELLIS_LABEL_zone=east` unless that is set. */
export const WASMCLOUD_LABEL_ENV_PREFIX = "WASMCLOUD_LABEL_";

/** wash / wasmCloud variables that fill `TRELLIS_NATS_URL`: host and port of the control connection, then of the RPC one. */
export const WASMCLOUD_URL_VARS = {
  host: ["WASMCLOUD_CTL_HOST", "WASMCLOUD_NATS_HOST"],
  port: ["WASMCLOUD_CTL_PORT", "WASMCLOUD_NATS_PORT"],
  /** `true` makes the built URL `tls://`. */
  tls: "WASMCLOUD_CTL_TLS",
} as const;

/** wasmCloud variables read elsewhere in the CLI (the OCI options, src/cli/commands/oci.ts), so not warned about here. */
const WASMCLOUD_READ_ELSEWHERE: readonly string[] = [
  "WASMCLOUD_OCI_ALLOW_LATEST",
  "WASMCLOUD_OCI_ALLOWED_INSECURE",
  "WASMCLOUD_OCI_REGISTRY_USER",
  "WASMCLOUD_OCI_REGISTRY_PASSWORD",
];

const USE_CREDS = "put the JWT and seed in a .creds file and give --nats-creds (TRELLIS_NATS_CREDS or WASMCLOUD_CTL_CREDS)";
const ONE_CONNECTION = "invocations share the one NATS connection of --nats-url and its credentials";

/**
 * wash / wasmCloud variables Trellis cannot honour, with what to use instead; each set one gives a warning on stderr.
 * Any other set `WASMCLOUD_*` variable that is not honoured gets a generic warning.
 */
export const WASMCLOUD_UNHONOURED: Readonly<Record<string, string>> = {
  WASMCLOUD_CTL_JWT: USE_CREDS,
  WASMCLOUD_CTL_SEED: USE_CREDS,
  WASMCLOUD_NATS_JWT: USE_CREDS,
  WASMCLOUD_NATS_SEED: USE_CREDS,
  WASMCLOUD_RPC_JWT: USE_CREDS,
  WASMCLOUD_RPC_SEED: USE_CREDS,
  WASH_CTL_TLS_FIRST: "TLS-first handshakes are not supported; the server must offer TLS in its INFO",
  WASMCLOUD_CTL_TOPIC_PREFIX: "Trellis uses the standard prefix wasmbus.ctl; lattices are told apart by --lattice",
  WASMCLOUD_RPC_HOST: ONE_CONNECTION,
  WASMCLOUD_RPC_PORT: ONE_CONNECTION,
  WASMCLOUD_RPC_CREDS: ONE_CONNECTION,
  WASMCLOUD_RPC_TLS: ONE_CONNECTION,
  WASMCLOUD_TLS_CA_PATH: "give the NATS CA with --nats-tls-ca (TRELLIS_NATS_TLS_CA)",
  WASMCLOUD_MAX_LINEAR_MEMORY: "use --component-max-memory-mb (TRELLIS_COMPONENT_MAX_MEMORY_MB), in MiB",
  WASMCLOUD_MAX_EXECUTION_TIME_MS: "use --component-call-timeout-ms (TRELLIS_COMPONENT_CALL_TIMEOUT_MS)",
  WASMCLOUD_OCI_REGISTRY: "--oci-user/--oci-password (TRELLIS_OCI_USER/_PASSWORD) apply to every registry",
  WASH_CONTEXT: "wash contexts are not read; use TRELLIS_* variables or flags",
};

/**
 * Applies {@link WASMCLOUD_FALLBACKS}, {@link WASMCLOUD_URL_VARS} and {@link WASMCLOUD_LABEL_ENV_PREFIX} to an
 * environment snapshot: returns the snapshot with the unset `TRELLIS_*` twins filled in, and one warning per set
 * variable that is shadowed by its `TRELLIS_*` twin, listed in {@link WASMCLOUD_UNHONOURED} (with what to use
 * instead), or any other `WASMCLOUD_*` variable Trellis does not read. Values never appear in a warning.
 */
export function withWasmcloudFallbacks(env: Env): { env: Env; warnings: string[] } {
  const out: Record<string, string | undefined> = { ...env };
  const warnings: string[] = [];
  const read = new Set<string>(WASMCLOUD_READ_ELSEWHERE);
  const set = (n: string) => env[n] !== undefined && env[n] !== "";
  for (const f of WASMCLOUD_FALLBACKS) {
    for (const n of f.names) read.add(n);
    const name = f.names.find(set);
    if (name === undefined) continue;
    if (set(ENV[f.key])) warnings.push(`${name} is ignored: ${ENV[f.key]} is set and wins`);
    else out[ENV[f.key]] = f.convert ? f.convert(env[name]!) : env[name];
  }
  const host = WASMCLOUD_URL_VARS.host.find(set);
  const port = WASMCLOUD_URL_VARS.port.find(set);
  const tls = set(WASMCLOUD_URL_VARS.tls) && env[WASMCLOUD_URL_VARS.tls]!.trim().toLowerCase() !== "false";
  for (const n of [...WASMCLOUD_URL_VARS.host, ...WASMCLOUD_URL_VARS.port, WASMCLOUD_URL_VARS.tls]) read.add(n);
  if (host !== undefined || port !== undefined || tls) {
    const names = [host, port, tls ? WASMCLOUD_URL_VARS.tls : undefined].filter((n) => n !== undefined).join(", ");
    if (set(ENV.natsUrl)) warnings.push(`${names} ignored: ${ENV.natsUrl} is set and wins`);
    else out[ENV.natsUrl] = `${tls ? "tls" : "nats"}://${host === undefined ? "127.0.0.1" : env[host]!}:${port === undefined ? "4222" : env[port]!}`;
  }
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith(WASMCLOUD_LABEL_ENV_PREFIX) || v === undefined) continue;
    read.add(k);
    const twin = LABEL_ENV_PREFIX + k.slice(WASMCLOUD_LABEL_ENV_PREFIX.length);
    if (env[twin] !== undefined) warnings.push(`${k} is ignored: ${twin} is set and wins`);
    else out[twin] = v;
  }
  for (const name of Object.keys(env).sort()) {
    if (!set(name) || read.has(name)) continue;
    const instead = WASMCLOUD_UNHONOURED[name];
    if (instead !== undefined) warnings.push(`${name} is not honoured by Trellis: ${instead}`);
    else if (name.startsWith("WASMCLOUD_")) warnings.push(`${name} is not read by Trellis (docs/from-wasmcloud.md)`);
  }
  return { env: Object.freeze(out), warnings };
}
