/**
 * Invocation tracing of a provider (docs/protocol.md "Trace context", "Explain"; ADR 0025), standing alone: no
 * OpenTelemetry package, only W3C trace context. Every call the provider serves and makes carries `traceparent` (and
 * `tracestate`); a span is recorded when the host data's `otel_config` names a traces endpoint (spans are posted there
 * by OTLP/HTTP JSON, in batches) or when the trace is explained (`tracestate: trellis=e`; the span is published on
 * NATS for `trellis explain`). Otherwise a hop costs the header it forwards.
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { explainFollowSubject, explainSpanSubject } from "../../wire/src/core/subjects.ts";
import { EXPLAIN_STATE_KEY, EXPLAIN_STATE_VALUE, type ExplainSpan, HopAttr, TRACEPARENT, TRACESTATE } from "../../wire/src/tracing/explain-span.ts";
import type { HostData } from "../../wire/src/provider/host-data.ts";

export { TRACEPARENT, TRACESTATE };
const EXPLAIN_ENTRY = `${EXPLAIN_STATE_KEY}=${EXPLAIN_STATE_VALUE}`;

/** Attribute names of a hop (the same as the host's, docs/protocol.md "Explain"). */
export const SpanAttr = HopAttr;

/** One hop: who calls what, over which link. */
export interface SpanHop {
  sourceId?: string | undefined;
  target: string;
  /** `namespace:package/interface` (without version) or another operation name. */
  iface: string;
  fn: string;
  linkName?: string | undefined;
}

/** Tracing settings of a provider, from its host data. */
export interface ProviderTracingSettings {
  /** False: no trace context is read or sent. */
  enabled: boolean;
  /** OTLP/HTTP traces URL (`…/v1/traces`); none: only explained traces are recorded. */
  tracesUrl?: string | undefined;
  serviceName: string;
  lattice: string;
  hostId: string;
  providerId: string;
  instanceId: string;
}

/** Reads the settings from host data's `otel_config` (`trellis_tracing`, `enable_traces`, `traces_endpoint`, `service_name`). */
export function tracingSettings(hd: HostData): ProviderTracingSettings {
  const o = hd.otel_config ?? { enable_observability: false };
  const url = typeof o.traces_endpoint === "string" && (o.enable_traces === true || o.enable_observability === true) ? o.traces_endpoint : undefined;
  return {
    enabled: o.trellis_tracing !== false,
    tracesUrl: url,
    serviceName: typeof o.service_name === "string" && o.service_name ? o.service_name : hd.provider_key,
    lattice: hd.lattice_rpc_prefix,
    hostId: hd.host_id,
    providerId: hd.provider_key,
    instanceId: hd.instance_id,
  };
}

/** Something headers can be read from (NATS `MsgHdrs`, a plain getter). */
export interface HeaderSource {
  get(name: string): string | undefined;
}

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const HEX = "0123456789abcdef";
/** `bytes` random bytes as hex (Math.random, as OpenTelemetry's RandomIdGenerator: ids, not secrets). */
function hex(bytes: number): string {
  let out = "";
  for (let i = 0; i < bytes * 2; i++) out += HEX[(Math.random() * 16) | 0];
  return out;
}
const nowMs = () => performance.timeOrigin + performance.now();

/** A parsed W3C trace context. */
export interface TraceContext {
  traceId: string;
  spanId: string;
  sampled: boolean;
  tracestate: string | undefined;
}

/** Parses `traceparent` (version 00) and `tracestate`; undefined for a missing or malformed one. */
export function parseTraceContext(traceparent: string | undefined, tracestate?: string): TraceContext | undefined {
  const m = traceparent ? TP.exec(traceparent.trim()) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1, tracestate: tracestate?.trim() || undefined };
}

/** True when `tracestate` has Trellis's explain entry. */
export function isExplainState(tracestate: string | undefined): boolean {
  return tracestate !== undefined && tracestate.split(",").some((e) => e.trim() === EXPLAIN_ENTRY);
}

/** A finished span, in the shape published for explain (docs/protocol.md "Explain"). */
export type FinishedSpan = ExplainSpan;

/** One span of a provider. */
export class ProviderSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly tracestate: string | undefined;
  /** True when recorded (exported or explained). */
  readonly recording: boolean;
  readonly explain: boolean;
  readonly #owner: ProviderTracing | undefined;
  readonly #name: string;
  readonly #kind: FinishedSpan["kind"];
  readonly #start: number;
  readonly #attrs: Record<string, string | number | boolean> | undefined;
  #ended = false;

  /** @internal built by {@link ProviderTracing}. */
  constructor(
    ids: { traceId: string; spanId: string; parentSpanId: string | undefined; tracestate: string | undefined; explain: boolean },
    recordAs: { owner: ProviderTracing; name: string; kind: FinishedSpan["kind"]; attrs: Record<string, string | number | boolean> } | undefined,
  ) {
    this.traceId = ids.traceId;
    this.spanId = ids.spanId;
    this.parentSpanId = ids.parentSpanId;
    this.tracestate = ids.tracestate;
    this.explain = ids.explain;
    this.recording = recordAs !== undefined;
    this.#owner = recordAs?.owner;
    this.#name = recordAs?.name ?? "";
    this.#kind = recordAs?.kind ?? "internal";
    this.#attrs = recordAs?.attrs;
    this.#start = recordAs ? nowMs() : 0;
  }

  /** The W3C headers to send with a call made under this span. */
  get headers(): Record<string, string> {
    const h: Record<string, string> = { [TRACEPARENT]: `00-${this.traceId}-${this.spanId}-${this.recording ? "01" : "00"}` };
    if (this.tracestate) h[TRACESTATE] = this.tracestate;
    return h;
  }

  /** Ends the span; an error marks it failed. Idempotent. */
  end(error?: unknown): void {
    if (this.#ended || !this.#owner) return;
    this.#ended = true;
    const e = error as { code?: unknown; message?: unknown } | undefined;
    const failed = error !== undefined;
    const code = typeof e?.code === "string" ? e.code : "INTERNAL";
    const attributes = failed ? { ...this.#attrs, [SpanAttr.errorCode]: code } : { ...this.#attrs };
    this.#owner.finished({
      trace_id: this.traceId,
      span_id: this.spanId,
      ...(this.parentSpanId ? { parent_span_id: this.parentSpanId } : {}),
      name: this.#name,
      kind: this.#kind,
      service: this.#owner.settings.serviceName,
      start_ms: this.#start,
      end_ms: nowMs(),
      attributes,
      status: failed ? "error" : "ok",
      ...(failed ? { error: { code, message: typeof e?.message === "string" ? e.message : String(error) } } : {}),
    }, this.explain);
  }
}

const OFF_SPAN = new ProviderSpan({ traceId: "0".repeat(32), spanId: "0".repeat(16), parentSpanId: undefined, tracestate: undefined, explain: false }, undefined);

/** Tracing of one provider process. */
export class ProviderTracing {
  readonly settings: ProviderTracingSettings;
  readonly #nc: NatsConnection | undefined;
  readonly #als = new AsyncLocalStorage<ProviderSpan>();
  readonly #follow = new Map<string, number>();
  readonly #sub: Subscription | undefined;
  #batch: FinishedSpan[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> = Promise.resolve();

  /** @param nc where explained spans are published and follow requests arrive; absent: no explain. */
  constructor(settings: ProviderTracingSettings, nc?: NatsConnection) {
    this.settings = settings;
    this.#nc = nc;
    if (nc && settings.enabled) {
      this.#sub = nc.subscribe(explainFollowSubject(settings.lattice), {
        callback: (err, m) => {
          if (err) return;
          try {
            const v = JSON.parse(new TextDecoder().decode(m.data)) as { target?: unknown; until_ms?: unknown };
            if (typeof v.target === "string" && typeof v.until_ms === "number") this.#follow.set(v.target, v.until_ms);
          } catch {
            // not a follow request
          }
        },
      });
    }
  }

  /** True unless tracing is off. */
  get enabled(): boolean {
    return this.settings.enabled;
  }

  #followed(target: string): boolean {
    if (this.#follow.size === 0) return false;
    const until = this.#follow.get(target);
    if (until === undefined) return false;
    this.#follow.delete(target);
    return until >= Date.now();
  }

  #start(parent: TraceContext | undefined, hop: SpanHop, kind: FinishedSpan["kind"], name: string): ProviderSpan {
    if (!this.settings.enabled) return OFF_SPAN;
    let tracestate = parent?.tracestate;
    let explain = isExplainState(tracestate);
    if (explain) this.#follow.delete(hop.target);
    else if (this.#followed(hop.target)) {
      explain = true;
      tracestate = tracestate ? `${EXPLAIN_ENTRY},${tracestate}` : EXPLAIN_ENTRY;
    }
    const traceId = parent?.traceId ?? hex(16);
    const record = explain || this.settings.tracesUrl !== undefined;
    if (!record) {
      // not recorded: forward the caller's context unchanged (a new one when there is none)
      return new ProviderSpan({ traceId, spanId: parent?.spanId ?? hex(8), parentSpanId: undefined, tracestate, explain: false }, undefined);
    }
    const s = this.settings;
    return new ProviderSpan(
      { traceId, spanId: hex(8), parentSpanId: parent?.spanId, tracestate, explain },
      {
        owner: this,
        name,
        kind,
        attrs: {
          [SpanAttr.sourceId]: hop.sourceId ?? "",
          [SpanAttr.target]: hop.target,
          [SpanAttr.iface]: hop.iface,
          [SpanAttr.fn]: hop.fn,
          [SpanAttr.linkName]: hop.linkName ?? "default",
          [SpanAttr.hostId]: s.hostId,
          [SpanAttr.providerId]: s.providerId,
          [SpanAttr.providerInstanceId]: s.instanceId,
        },
      },
    );
  }

  /** A span for a call arriving with `headers` (child of the caller's trace context; a new trace without one). */
  server(headers: HeaderSource | undefined, hop: SpanHop, name = `${hop.iface}.${hop.fn}`): ProviderSpan {
    if (!this.settings.enabled) return OFF_SPAN;
    const parent = headers ? parseTraceContext(headers.get(TRACEPARENT) || undefined, headers.get(TRACESTATE) || undefined) : undefined;
    return this.#start(parent, hop, "server", name);
  }

  /** A span for a call leaving under `parent` (by default the span of the call being served, see {@link run}). */
  client(hop: SpanHop, parent: ProviderSpan | undefined = this.#als.getStore()): ProviderSpan {
    if (!this.settings.enabled) return OFF_SPAN;
    const p = parent && parent !== OFF_SPAN ? { traceId: parent.traceId, spanId: parent.spanId, sampled: parent.recording, tracestate: parent.tracestate } : undefined;
    return this.#start(p, hop, "client", `${hop.iface}.${hop.fn}`);
  }

  /** Runs `f` with `span` as the current span (the parent of {@link client} spans started inside). */
  run<T>(span: ProviderSpan, f: () => T): T {
    return span === OFF_SPAN ? f() : this.#als.run(span, f);
  }

  /** @internal a recorded span ended. */
  finished(span: FinishedSpan, explain: boolean): void {
    if (explain && this.#nc) {
      try {
        this.#nc.publish(explainSpanSubject(this.settings.lattice, span.trace_id), JSON.stringify(span));
      } catch {
        // closed connection: the explain misses this span
      }
    }
    if (!this.settings.tracesUrl) return;
    this.#batch.push(span);
    if (this.#batch.length >= 256) this.#flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#flush(), 500);
      this.#timer.unref();
    }
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const spans = this.#batch;
    if (spans.length === 0 || !this.settings.tracesUrl) return;
    this.#batch = [];
    const url = this.settings.tracesUrl;
    this.#inflight = this.#inflight.then(() =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(otlpJson(spans, this.settings)), signal: AbortSignal.timeout(5000) }).then(
        (r) => void r.body?.cancel(),
        () => undefined, // the collector is away: these spans are lost
      ),
    );
  }

  /** Posts the spans not yet exported and stops following. */
  async shutdown(): Promise<void> {
    this.#sub?.unsubscribe();
    this.#flush();
    // bounded: an unreachable collector must not hold up the provider's shutdown
    await Promise.race([this.#inflight, new Promise((r) => setTimeout(r, 2_000).unref())]);
  }
}

const attr = (key: string, v: string | number | boolean) =>
  ({ key, value: typeof v === "string" ? { stringValue: v } : typeof v === "boolean" ? { boolValue: v } : Number.isInteger(v) ? { intValue: v } : { doubleValue: v } });
const nanos = (ms: number) => (BigInt(Math.round(ms * 1000)) * 1000n).toString();

/** OTLP/JSON `ExportTraceServiceRequest` of `spans` (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding). */
export function otlpJson(spans: readonly FinishedSpan[], s: ProviderTracingSettings): unknown {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [attr("service.name", s.serviceName), attr("service.instance.id", s.instanceId), attr(SpanAttr.providerId, s.providerId), attr(SpanAttr.hostId, s.hostId)],
        },
        scopeSpans: [
          {
            scope: { name: "trellis-provider-sdk" },
            spans: spans.map((sp) => ({
              traceId: sp.trace_id,
              spanId: sp.span_id,
              ...(sp.parent_span_id ? { parentSpanId: sp.parent_span_id } : {}),
              name: sp.name,
              kind: sp.kind === "server" ? 2 : sp.kind === "client" ? 3 : 1,
              startTimeUnixNano: nanos(sp.start_ms),
              endTimeUnixNano: nanos(sp.end_ms),
              attributes: Object.entries(sp.attributes).map(([k, v]) => attr(k, v)),
              status: sp.status === "error" ? { code: 2, message: sp.error?.message ?? "" } : { code: 1 },
            })),
          },
        ],
      },
    ],
  };
}
