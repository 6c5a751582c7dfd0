/**
 * Invocation tracing with OpenTelemetry (ADR 0025): one SDK tracer provider per thread that serves or calls
 * (a host's component workers), W3C trace context read from and written to invocation headers, spans exported by
 * OTLP/HTTP (JSON) when an endpoint is set, and the spans of explained traces (`tracestate: trellis=e`) published on
 * NATS for `trellis explain`. Without an endpoint the sampler records nothing but explained traces: a hop then costs
 * a non-recording span and the header it sends.
 * @module
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
} from "@opentelemetry/api";
import { TraceState, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SamplingDecision,
  type ReadableSpan,
  type Sampler,
  type SamplingResult,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { explainFollowSubject, explainSpanSubject } from "../core/subjects.ts";
import type { Logger } from "../core/logger.ts";
import type { TracingSettings } from "./settings.ts";
import {
  errorParts,
  EXPLAIN_STATE_KEY,
  EXPLAIN_STATE_VALUE,
  HopAttr,
  NOOP_TRACING,
  type ExplainSpan,
  type HeaderReader,
  type Hop,
  type HopSpan,
  type Tracing,
  TRACEPARENT,
  TRACESTATE,
} from "./types.ts";

/** Where a {@link startTracing} tracer runs. */
export interface TracingDeps {
  lattice: string;
  /** Id of the host, set on every span. */
  hostId: string;
  /** Connection explained spans are published on and follow requests arrive on; absent: no explain. */
  nc?: NatsConnection;
  logger?: Logger;
}

/** Longest wait for the last spans' export at shutdown, in milliseconds. */
const SHUTDOWN_FLUSH_MS = 2_000;
const propagator = new W3CTraceContextPropagator();
const getter: TextMapGetter<HeaderReader> = {
  get: (c, k) => c.get(k) || undefined,
  keys: () => [],
};
const setter = { set: (c: Record<string, string>, k: string, v: string) => (c[k] = v) };

function isExplained(ctx: Context): boolean {
  return trace.getSpanContext(ctx)?.traceState?.get(EXPLAIN_STATE_KEY) === EXPLAIN_STATE_VALUE;
}

/** Records every span when exporting; otherwise only the spans of explained traces. */
class TrellisSampler implements Sampler {
  readonly #exporting: boolean;
  constructor(exporting: boolean) {
    this.#exporting = exporting;
  }
  shouldSample(ctx: Context): SamplingResult {
    return { decision: this.#exporting || isExplained(ctx) ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }
  toString(): string {
    return `TrellisSampler{exporting=${this.#exporting}}`;
  }
}

const hrMs = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;

/** The {@link ExplainSpan} wire form of a finished OpenTelemetry span. */
export function toExplainSpan(s: ReadableSpan, service: string): ExplainSpan {
  const ctx = s.spanContext();
  const attributes: ExplainSpan["attributes"] = {};
  for (const [k, v] of Object.entries(s.attributes)) if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") attributes[k] = v;
  const failed = s.status.code === SpanStatusCode.ERROR;
  const parent = s.parentSpanContext?.spanId;
  return {
    trace_id: ctx.traceId,
    span_id: ctx.spanId,
    ...(parent ? { parent_span_id: parent } : {}),
    name: s.name,
    kind: s.kind === SpanKind.SERVER ? "server" : s.kind === SpanKind.CLIENT ? "client" : "internal",
    service,
    start_ms: hrMs(s.startTime),
    end_ms: hrMs(s.endTime),
    attributes,
    status: failed ? "error" : "ok",
    ...(failed ? { error: { code: String(s.attributes[HopAttr.errorCode] ?? "INTERNAL"), message: s.status.message ?? "" } } : {}),
  };
}

/** Publishes the finished spans of explained traces on NATS. */
class ExplainPublisher implements SpanProcessor {
  readonly #nc: NatsConnection;
  readonly #lattice: string;
  readonly #service: string;
  constructor(nc: NatsConnection, lattice: string, service: string) {
    this.#nc = nc;
    this.#lattice = lattice;
    this.#service = service;
  }
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    if (span.spanContext().traceState?.get(EXPLAIN_STATE_KEY) !== EXPLAIN_STATE_VALUE) return;
    try {
      this.#nc.publish(explainSpanSubject(this.#lattice, span.spanContext().traceId), JSON.stringify(toExplainSpan(span, this.#service)));
    } catch {
      // closed connection: the explain misses this span
    }
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Targets armed by follow requests: the next call reaching one of them is explained. */
export class FollowTable {
  readonly #until = new Map<string, number>();
  /** Arms `target` until `untilMs` (epoch ms). */
  arm(target: string, untilMs: number): void {
    this.#until.set(target, untilMs);
  }
  /** True (once) when `target` is armed and not expired. */
  take(target: string): boolean {
    if (this.#until.size === 0) return false;
    const until = this.#until.get(target);
    if (until === undefined) return false;
    this.#until.delete(target);
    return until >= Date.now();
  }
  /** True when `target` is armed (without taking it). */
  armed(target: string): boolean {
    return this.#until.size > 0 && this.#until.has(target);
  }
  /** Forgets `target` (its call was explained by someone else). */
  drop(target: string): void {
    if (this.#until.size > 0) this.#until.delete(target);
  }
  /** Subscribes to follow requests on `nc` (`{ target, until_ms }` JSON). */
  subscribe(nc: NatsConnection, lattice: string): Subscription {
    return nc.subscribe(explainFollowSubject(lattice), {
      callback: (err, m) => {
        if (err) return;
        try {
          const v = JSON.parse(new TextDecoder().decode(m.data)) as { target?: unknown; until_ms?: unknown };
          if (typeof v.target === "string" && typeof v.until_ms === "number") this.arm(v.target, v.until_ms);
        } catch {
          // not a follow request
        }
      },
    });
  }
}

class OtelHopSpan implements HopSpan {
  readonly span: Span;
  readonly explain: boolean;
  #headers: Record<string, string> | undefined;
  #ended = false;
  constructor(span: Span, explain: boolean) {
    this.span = span;
    this.explain = explain;
  }
  get headers(): Record<string, string> {
    if (!this.#headers) {
      this.#headers = {};
      propagator.inject(trace.setSpan(ROOT_CONTEXT, this.span), this.#headers, setter);
    }
    return this.#headers;
  }
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error !== undefined && this.span.isRecording()) {
      const { code, message } = errorParts(error);
      this.span.setAttribute(HopAttr.errorCode, code);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message });
    }
    this.span.end();
  }
}

const HEX = "0123456789abcdef";
/** `n` random hex digits (Math.random, as OpenTelemetry's RandomIdGenerator: ids, not secrets). */
function randomHex(n: number): string {
  let out = "";
  for (let i = 0; i < n; i++) out += HEX[(Math.random() * 16) | 0];
  return out;
}

/**
 * A hop that records nothing (no exporter, trace not explained): it forwards the caller's trace context unchanged, or
 * a new one (made only when a call needs it), without touching the OpenTelemetry SDK.
 */
class PassSpan implements HopSpan {
  readonly explain = false;
  #traceparent: string | undefined;
  readonly #tracestate: string | undefined;
  #headers: Record<string, string> | undefined;
  constructor(traceparent: string | undefined, tracestate: string | undefined) {
    this.#traceparent = traceparent;
    this.#tracestate = tracestate;
  }
  get headers(): Record<string, string> {
    if (!this.#headers) {
      this.#traceparent ??= `00-${randomHex(32)}-${randomHex(16)}-00`;
      this.#headers = this.#tracestate ? { [TRACEPARENT]: this.#traceparent, [TRACESTATE]: this.#tracestate } : { [TRACEPARENT]: this.#traceparent };
    }
    return this.#headers;
  }
  end(): void {}
}

const recordGetter: TextMapGetter<Record<string, string>> = { get: (c, k) => c[k], keys: (c) => Object.keys(c) };

const explainState = new TraceState(`${EXPLAIN_STATE_KEY}=${EXPLAIN_STATE_VALUE}`);

/** Marks the parent context explained (a followed call): keeps its trace and span ids when there is one. */
function explained(ctx: Context): Context {
  const sc = trace.getSpanContext(ctx);
  if (!sc) return ctx; // a new root: the sampler sees no trace state, so the root is made below
  return trace.setSpanContext(ctx, { ...sc, traceState: (sc.traceState ?? new TraceState()).set(EXPLAIN_STATE_KEY, EXPLAIN_STATE_VALUE) });
}

/**
 * Starts tracing for one thread: an OpenTelemetry tracer provider (exporting to `settings.tracesUrl` when set), the
 * explain publisher and the follow subscription (with `deps.nc`). Returns {@link NOOP_TRACING} when tracing is off.
 */
export function startTracing(settings: TracingSettings, deps: TracingDeps): Tracing {
  if (!settings.enabled) return NOOP_TRACING;
  const processors: SpanProcessor[] = [];
  if (settings.tracesUrl) {
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.tracesUrl }), { scheduledDelayMillis: 500 }));
  }
  if (deps.nc) processors.push(new ExplainPublisher(deps.nc, deps.lattice, settings.serviceName));
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: settings.serviceName,
      [ATTR_SERVICE_INSTANCE_ID]: deps.hostId,
      [HopAttr.hostId]: deps.hostId,
      [HopAttr.lattice]: deps.lattice,
    }),
    sampler: new TrellisSampler(settings.tracesUrl !== undefined),
    spanProcessors: processors,
  });
  const tracer = provider.getTracer("trellis");
  const follow = new FollowTable();
  const followSub = deps.nc ? follow.subscribe(deps.nc, deps.lattice) : undefined;
  const attrs = (hop: Hop): Attributes => ({
    [HopAttr.sourceId]: hop.sourceId ?? "",
    [HopAttr.target]: hop.target,
    [HopAttr.iface]: hop.iface,
    [HopAttr.fn]: hop.fn,
    [HopAttr.linkName]: hop.linkName ?? "default",
    [HopAttr.hostId]: deps.hostId,
  });
  const start = (kind: SpanKind, ctx: Context, hop: Hop): OtelHopSpan => {
    let c = ctx;
    if (isExplained(c)) follow.drop(hop.target);
    else if (follow.take(hop.target)) {
      c = explained(c);
      if (!trace.getSpanContext(c)) {
        // no caller context: a new explained root
        const root = tracer.startSpan("explain", { root: true }, ROOT_CONTEXT).spanContext();
        c = trace.setSpanContext(ROOT_CONTEXT, { ...root, traceState: explainState });
      }
    }
    const span = tracer.startSpan(`${hop.iface}.${hop.fn}`, { kind, attributes: attrs(hop) }, c);
    return new OtelHopSpan(span, isExplained(c));
  };
  const exporting = settings.tracesUrl !== undefined;
  const explainEntry = `${EXPLAIN_STATE_KEY}=${EXPLAIN_STATE_VALUE}`;
  return {
    enabled: true,
    server: (headers, hop) => {
      if (!exporting) {
        // fast path: nothing to record unless the trace is explained or this target is followed
        const ts = headers?.get(TRACESTATE) || undefined;
        if (!ts?.includes(explainEntry) && !follow.armed(hop.target)) return new PassSpan(headers?.get(TRACEPARENT) || undefined, ts);
      }
      return start(SpanKind.SERVER, headers ? propagator.extract(ROOT_CONTEXT, headers, getter) : ROOT_CONTEXT, hop);
    },
    client: (parent, hop) => {
      if (parent instanceof OtelHopSpan) return start(SpanKind.CLIENT, trace.setSpan(ROOT_CONTEXT, parent.span), hop);
      if (!exporting && !follow.armed(hop.target)) return parent instanceof PassSpan ? parent : new PassSpan(undefined, undefined);
      return start(SpanKind.CLIENT, parent instanceof PassSpan ? propagator.extract(ROOT_CONTEXT, parent.headers, recordGetter) : ROOT_CONTEXT, hop);
    },
    shutdown: async () => {
      followSub?.unsubscribe();
      try {
        // bounded: an unreachable collector must not hold up a worker's shutdown
        await Promise.race([provider.shutdown(), new Promise((r) => setTimeout(r, SHUTDOWN_FLUSH_MS).unref())]);
      } catch (err) {
        deps.logger?.debug("span export at shutdown failed", { error: String(err) });
      }
    },
  };
}
