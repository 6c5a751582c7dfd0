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
  requireSigned: "TRELLIS_REQUIRE_SIGNED",
  allowedIssuers: "TRELLIS_ALLOWED_ISSUERS",
  secretsTopic: "TRELLIS_SECRETS_TOPIC",
  claimsIssuer: "TRELLIS_CLAIMS_ISSUER",
  secretsKeyFile: "TRELLIS_SECRETS_KEY_FILE",
} as const;

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
