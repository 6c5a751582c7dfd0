/**
 * The explain wire (docs/protocol.md "Explain", ADR 0025): W3C header names, Trellis's trace state entry, hop attribute
 * names, and the shape of a finished span that every process (host, TypeScript provider SDK, Python provider) publishes for
 * `trellis explain` (docs/protocol.md "Explain", ADR 0025).
 * @module
 */

/**
 * A finished span as published on `explainSpanSubject` (../core/subjects.ts) (docs/protocol.md "Explain"); every process (host,
 * TypeScript SDK, Python provider) publishes this shape.
 */
export interface ExplainSpan {
  trace_id: string;
  span_id: string;
  /** Absent for a trace's root. */
  parent_span_id?: string;
  /** `{interface}.{function}` for invocation hops. */
  name: string;
  kind: "server" | "client" | "internal";
  /** The process's service name (`trellis-host`, `http-server`, …). */
  service: string;
  /** Start and end, milliseconds since the epoch (fractional). */
  start_ms: number;
  end_ms: number;
  /** Hop attributes (`trellis.source_id`, …; src/tracing/types.ts `HopAttr`) and others. */
  attributes: Record<string, string | number | boolean>;
  status: "ok" | "error";
  /** When `status` is `error`: the error's code and message. */
  error?: { code: string; message: string };
}

/** W3C trace context header (https://www.w3.org/TR/trace-context/#traceparent-header). */
export const TRACEPARENT = "traceparent";
/** W3C trace state header; Trellis's own entry is {@link EXPLAIN_STATE_KEY}. */
export const TRACESTATE = "tracestate";
/** Key of Trellis's trace state entry (`trellis=e`: every process publishes this trace's spans, docs/protocol.md "Explain"). */
export const EXPLAIN_STATE_KEY = "trellis";
/** Value of the trace state entry that asks for explain. */
export const EXPLAIN_STATE_VALUE = "e";

/** Span attribute names Trellis sets on every hop (docs/protocol.md "Explain"). */
export const HopAttr = {
  sourceId: "trellis.source_id",
  target: "trellis.target",
  /** `namespace:package/interface` without version (`world` for world-level functions). */
  iface: "trellis.wit.interface",
  fn: "trellis.function",
  linkName: "trellis.link_name",
  hostId: "trellis.host_id",
  providerId: "trellis.provider.id",
  providerInstanceId: "trellis.provider.instance_id",
  /** Code of the error that ended the hop (a TrellisError code, e.g. `TIMEOUT`). */
  errorCode: "trellis.error.code",
  /** Lattice name. */
  lattice: "trellis.lattice",
} as const;
