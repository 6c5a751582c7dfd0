/**
 * Tracing (ADR 0025): W3C trace context on every invocation hop, spans recorded with OpenTelemetry and exported by
 * OTLP/HTTP, explained traces published on NATS, and `trellis explain`. Only this folder imports `@opentelemetry/*`.
 * @module
 */
export { startTracing, FollowTable, toExplainSpan } from "./tracer.ts";
export type { TracingDeps } from "./tracer.ts";
export { compileTracingOptions, otelEnvOptions, providerOtelConfig, DEFAULT_SERVICE_NAME } from "./settings.ts";
export type { TracingOptions, TracingSettings } from "./settings.ts";
export { NOOP_TRACING, NOOP_SPAN, HopAttr, TRACEPARENT, TRACESTATE, EXPLAIN_STATE_KEY, EXPLAIN_STATE_VALUE, errorParts } from "./types.ts";
export type { Tracing, HopSpan, Hop, HeaderReader, ExplainSpan } from "./types.ts";
export { explainCall, followTarget, buildPath, formatExplanation, EXPLAIN_SERVICE, DEFAULT_SETTLE_MS } from "./explain.ts";
export type { Explanation, ExplainedHop, ExplainCallOptions, FollowOptions } from "./explain.ts";
