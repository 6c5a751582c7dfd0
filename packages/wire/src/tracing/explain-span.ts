/**
 * The shape of a finished span that every process (host, TypeScript provider SDK, Python provider) publishes for
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
