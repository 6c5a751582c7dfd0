/**
 * Options of the provider supervisor (docs/adr/0005-provider-supervision.md): health checks, shutdown, restart
 * backoff and the environment spawned providers get. Every option has a default; {@link compileSupervisorOptions}
 * checks them once.
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";

/** Default delay of the first health check after a (re)start: 1 s (wasmCloud waits 5 s, reference §4.4). */
export const DEFAULT_FIRST_HEALTH_CHECK_MS = 1_000;
/** Default start-up grace: a process not yet subscribed to its health subject counts as starting for 10 s. */
export const DEFAULT_STARTUP_GRACE_MS = 10_000;
/** Default interval between health checks: 30 s, as wasmCloud (reference §4.4). */
export const DEFAULT_HEALTH_INTERVAL_MS = 30_000;
/** Default wait for a graceful exit after the shutdown request before SIGKILL: 2 s. */
export const DEFAULT_SHUTDOWN_DELAY_MS = 2_000;
/** Default delay before the first restart after a crash: 100 ms; doubled after each further crash. */
export const DEFAULT_RESTART_BACKOFF_MS = 100;
/** Default cap of the restart delay: 10 s. */
export const DEFAULT_MAX_RESTART_BACKOFF_MS = 10_000;
/** Default uptime after which a process counts as stable and the backoff resets: 10 s. */
export const DEFAULT_STABLE_AFTER_MS = 10_000;
/** Default number of consecutive crashes (none stable) after which the supervisor gives up: 10. */
export const DEFAULT_MAX_RESTARTS = 10;
/**
 * Variables passed from the host's environment to spawned providers; everything else is cleared. A name ending in
 * `*` passes every variable with that prefix. `PATH` lets `#!/usr/bin/env python3` executables start; `HOME` and the
 * locale keep language runtimes happy; `RUST_LOG` and `OTEL_*` are what wasmCloud passes (reference §4.1).
 */
export const DEFAULT_ENV_PASS_THROUGH: readonly string[] = Object.freeze([
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "TMPDIR",
  "SYSTEMROOT",
  "TRELLIS_LOG_LEVEL",
  "RUST_LOG",
  "OTEL_*",
]);

/** What a host operator may set for provider supervision. Every field is optional. */
export interface ProviderSupervisorOptions {
  /** Delay of the first health check after each (re)start, in milliseconds. @default 1000 */
  firstHealthCheckMs?: number;
  /** Interval between later health checks, in milliseconds. @default 30000 */
  healthIntervalMs?: number;
  /**
   * After a (re)start, health requests that find no subscriber ("no responders") count as "still starting" rather
   * than unhealthy for this long, in milliseconds; explicit unhealthy replies and timeouts count at once. @default 10000
   */
  startupGraceMs?: number;
  /** Wait for a health reply, in milliseconds. @default the host's rpcTimeoutMs (2000) */
  healthTimeoutMs?: number;
  /** After the shutdown request, wait this long for the process to exit before SIGKILL, in milliseconds. @default 2000 */
  shutdownDelayMs?: number;
  /** Delay before the first restart after a crash, in milliseconds; doubled per further crash. @default 100 */
  restartBackoffMs?: number;
  /** Cap of the restart delay, in milliseconds. @default 10000 */
  maxRestartBackoffMs?: number;
  /** Uptime after which a process counts as stable (backoff and crash count reset), in milliseconds. @default 10000 */
  stableAfterMs?: number;
  /** Consecutive crashes without a stable run after which the provider is marked `failed`. @default 10 */
  maxRestarts?: number;
  /** Environment variables passed to providers (`NAME` or `PREFIX*`). @default {@link DEFAULT_ENV_PASS_THROUGH} */
  envPassThrough?: readonly string[];
  /**
   * The environment `envPassThrough` selects from, read once when the options compile.
   * @default a snapshot of the host process's environment at that moment
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** NATS URL written to host data (`lattice_rpc_url`). @default `nats://` + the host connection's current server */
  natsUrl?: string;
  /** `log_level` in host data. @default `TRELLIS_LOG_LEVEL` of {@link env}, else "info" */
  providerLogLevel?: string;
  /** `structured_logging` in host data. @default true */
  structuredLogging?: boolean;
  /** Directory bare first-party names resolve in (`<dir>/<name>/main.ts`). @default the repository's `providers/` */
  firstPartyDir?: string;
}

/** {@link ProviderSupervisorOptions} with defaults filled. */
export interface SupervisorConfig {
  readonly firstHealthCheckMs: number;
  readonly healthIntervalMs: number;
  readonly startupGraceMs: number;
  readonly healthTimeoutMs: number | undefined;
  readonly shutdownDelayMs: number;
  readonly restartBackoffMs: number;
  readonly maxRestartBackoffMs: number;
  readonly stableAfterMs: number;
  readonly maxRestarts: number;
  readonly envPassThrough: readonly string[];
  /** What every provider process gets as its environment (the pass-through selection, computed once). */
  readonly childEnv: Readonly<Record<string, string>>;
  readonly natsUrl: string | undefined;
  readonly providerLogLevel: string;
  readonly structuredLogging: boolean;
  readonly firstPartyDir: string | undefined;
}

function nonNegative(field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 0) throw new InvalidArgumentError(field, `${field} must be a non-negative number, got ${String(v)}`);
  return v;
}

function positive(field: string, v: number | undefined, dflt: number): number {
  const n = nonNegative(field, v, dflt);
  if (n <= 0) throw new InvalidArgumentError(field, `${field} must be positive, got ${String(v)}`);
  return n;
}

const LOG_LEVELS = new Set(["trace", "debug", "info", "warn", "error"]);

/**
 * Fills defaults and validates.
 * @throws InvalidArgumentError naming the bad option (negative delay, zero interval, unknown log level, …).
 */
export function compileSupervisorOptions(o: ProviderSupervisorOptions = {}): SupervisorConfig {
  const env = o.env ?? { ...process.env };
  const level = (o.providerLogLevel ?? env.TRELLIS_LOG_LEVEL ?? "info").toLowerCase();
  if (!LOG_LEVELS.has(level)) throw new InvalidArgumentError("providerLogLevel", `providerLogLevel must be one of ${[...LOG_LEVELS].join(", ")}, got ${level}`);
  const maxRestarts = o.maxRestarts ?? DEFAULT_MAX_RESTARTS;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0) throw new InvalidArgumentError("maxRestarts", "maxRestarts must be a non-negative integer");
  const envPassThrough = o.envPassThrough ?? DEFAULT_ENV_PASS_THROUGH;
  for (const n of envPassThrough) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(n)) throw new InvalidArgumentError("envPassThrough", `bad variable name ${JSON.stringify(n)} in envPassThrough`);
  }
  const restartBackoffMs = nonNegative("restartBackoffMs", o.restartBackoffMs, DEFAULT_RESTART_BACKOFF_MS);
  return Object.freeze({
    firstHealthCheckMs: nonNegative("firstHealthCheckMs", o.firstHealthCheckMs, DEFAULT_FIRST_HEALTH_CHECK_MS),
    healthIntervalMs: positive("healthIntervalMs", o.healthIntervalMs, DEFAULT_HEALTH_INTERVAL_MS),
    startupGraceMs: nonNegative("startupGraceMs", o.startupGraceMs, DEFAULT_STARTUP_GRACE_MS),
    healthTimeoutMs: o.healthTimeoutMs === undefined ? undefined : positive("healthTimeoutMs", o.healthTimeoutMs, 1),
    shutdownDelayMs: nonNegative("shutdownDelayMs", o.shutdownDelayMs, DEFAULT_SHUTDOWN_DELAY_MS),
    restartBackoffMs,
    maxRestartBackoffMs: Math.max(restartBackoffMs, nonNegative("maxRestartBackoffMs", o.maxRestartBackoffMs, DEFAULT_MAX_RESTART_BACKOFF_MS)),
    stableAfterMs: nonNegative("stableAfterMs", o.stableAfterMs, DEFAULT_STABLE_AFTER_MS),
    maxRestarts,
    envPassThrough: Object.freeze([...envPassThrough]),
    childEnv: Object.freeze(providerEnv(env, envPassThrough)),
    natsUrl: o.natsUrl,
    providerLogLevel: level,
    structuredLogging: o.structuredLogging ?? true,
    firstPartyDir: o.firstPartyDir,
  });
}

/** The environment a spawned provider gets: only the pass-through variables of `env`. */
export function providerEnv(env: Readonly<Record<string, string | undefined>>, passThrough: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (passThrough.some((p) => (p.endsWith("*") ? k.startsWith(p.slice(0, -1)) : k === p))) out[k] = v;
  }
  return out;
}
