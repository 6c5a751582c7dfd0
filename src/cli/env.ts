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
  claimsIssuer: "TRELLIS_CLAIMS_ISSUER",
  secretsKeyFile: "TRELLIS_SECRETS_KEY_FILE",
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
