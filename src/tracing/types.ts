/**
 * The plain tracing API the rest of Trellis uses (ADR 0025): no OpenTelemetry type crosses it, so only this folder
 * imports `@opentelemetry/*`. A {@link Tracing} starts one span per invocation hop: `server` when a call arrives,
 * `client` when a call leaves; a client span's {@link HopSpan.headers} are the W3C trace context to send with the call.
 * @module
 */

export { EXPLAIN_STATE_KEY, EXPLAIN_STATE_VALUE, HopAttr, TRACEPARENT, TRACESTATE } from "../../packages/wire/src/tracing/explain-span.ts";

/** One invocation hop: who calls what, over which link. */
export interface Hop {
  /** Caller id (`source-id`), when known. */
  sourceId?: string | undefined;
  /** Callee id (component or provider id). */
  target: string;
  /** Interface without version, `namespace:package/interface`, or `world`. */
  iface: string;
  /** Function name as in WIT. */
  fn: string;
  /** Link name. @default "default" */
  linkName?: string | undefined;
}

/** Something headers can be read from (NATS `MsgHdrs`: `get` answers `""` for a missing header). */
export interface HeaderReader {
  get(name: string): string | undefined;
}

/** One started span. */
export interface HopSpan {
  /** The W3C trace context to send with a call made under this span; undefined when tracing is off. */
  readonly headers: Record<string, string> | undefined;
  /** True when this span's trace is explained (its spans are published on NATS). */
  readonly explain: boolean;
  /** Ends the span; an error marks it failed (code and message recorded). Idempotent. */
  end(error?: unknown): void;
}

/** Starts hop spans. */
export interface Tracing {
  /** False for tracing off (`--no-tracing`): no trace context is read or sent. */
  readonly enabled: boolean;
  /** A span for an arriving call, child of the caller's trace context in `headers` (a new trace without one). */
  server(headers: HeaderReader | undefined, hop: Hop): HopSpan;
  /** A span for a call leaving under `parent` (a new trace without one); send its {@link HopSpan.headers}. */
  client(parent: HopSpan | undefined, hop: Hop): HopSpan;
  /** Flushes spans not yet exported and stops. */
  shutdown(): Promise<void>;
}

/** The span of tracing off: no headers, nothing recorded. */
export const NOOP_SPAN: HopSpan = Object.freeze({ headers: undefined, explain: false, end: () => undefined });

/** Tracing off: costs one function call per hop. */
export const NOOP_TRACING: Tracing = Object.freeze({
  enabled: false,
  server: () => NOOP_SPAN,
  client: () => NOOP_SPAN,
  shutdown: () => Promise.resolve(),
});

export type { ExplainSpan } from "../../packages/wire/src/tracing/explain-span.ts";

/** Code and message of any thrown value (`code` of a TrellisError-like object, else `INTERNAL`). */
export function errorParts(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return {
    code: typeof e?.code === "string" ? e.code : "INTERNAL",
    message: typeof e?.message === "string" ? e.message : String(err),
  };
}
