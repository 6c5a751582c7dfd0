/**
 * Tracing settings: compiled once at start from host options (and, in the CLI's environment layer, from
 * `TRELLIS_OTLP_ENDPOINT` and the standard `OTEL_*` variables). Plain data: it crosses into worker threads and into
 * provider host data (`otel_config`). ADR 0025.
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";

/** Default service name of a host's spans. */
export const DEFAULT_SERVICE_NAME = "trellis-host";

/** What a user gives. */
export interface TracingOptions {
  /** Carry W3C trace context on every invocation and record explained traces. @default true (`--no-tracing`, `TRELLIS_TRACING=false`) */
  tracing?: boolean;
  /**
   * OTLP/HTTP endpoint spans are exported to: a base URL (`http://collector:4318`, `/v1/traces` is appended) or, with
   * `otlpTracesEndpoint`, the full traces URL. None: spans are not exported (only explained traces are recorded).
   * (`--otlp-endpoint`, `TRELLIS_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`)
   */
  otlpEndpoint?: string;
  /** Full OTLP/HTTP traces URL; wins over `otlpEndpoint`. (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) */
  otlpTracesEndpoint?: string;
  /** `service.name` of the spans. @default "trellis-host" (`OTEL_SERVICE_NAME`) */
  serviceName?: string;
}

/** Compiled tracing settings. */
export interface TracingSettings {
  readonly enabled: boolean;
  /** Full OTLP/HTTP traces URL (`…/v1/traces`), or undefined: no export. */
  readonly tracesUrl: string | undefined;
  readonly serviceName: string;
}

function checkUrl(field: string, value: string): string {
  try {
    const u = new URL(value);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    throw new InvalidArgumentError(field, `${field} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Fills defaults and validates.
 * @throws InvalidArgumentError naming a field that is not an http(s) URL.
 */
export function compileTracingOptions(o: TracingOptions = {}): TracingSettings {
  let tracesUrl: string | undefined;
  if (o.otlpTracesEndpoint) tracesUrl = checkUrl("otlpTracesEndpoint", o.otlpTracesEndpoint);
  else if (o.otlpEndpoint) tracesUrl = `${checkUrl("otlpEndpoint", o.otlpEndpoint).replace(/\/+$/, "")}/v1/traces`;
  const enabled = o.tracing ?? true;
  if (!enabled && tracesUrl) throw new InvalidArgumentError("tracing", "an OTLP endpoint needs tracing on (drop --no-tracing)");
  return Object.freeze({ enabled, tracesUrl, serviceName: o.serviceName || DEFAULT_SERVICE_NAME });
}

/**
 * The standard OpenTelemetry variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
 * `OTEL_SERVICE_NAME`) as {@link TracingOptions}; for the CLI's environment layer only (read once at start).
 */
export function otelEnvOptions(env: Readonly<Record<string, string | undefined>>): TracingOptions {
  const out: TracingOptions = {};
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) out.otlpEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) out.otlpTracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_SERVICE_NAME) out.serviceName = env.OTEL_SERVICE_NAME;
  return out;
}

/**
 * wasmCloud's `otel_config` of provider host data for these settings (reference §4.2), with Trellis's
 * `trellis_tracing` (false: the provider sends no trace context) and `service_name`.
 */
export function providerOtelConfig(s: TracingSettings | undefined, serviceName: string): { enable_observability: boolean } & Record<string, unknown> {
  if (!s) return { enable_observability: false };
  return {
    enable_observability: s.tracesUrl !== undefined,
    enable_traces: s.tracesUrl !== undefined,
    ...(s.tracesUrl ? { traces_endpoint: s.tracesUrl, protocol: "Http" } : {}),
    trellis_tracing: s.enabled,
    service_name: serviceName,
  };
}
