/**
 * `trellis explain` as a library (ADR 0025, docs/protocol.md "Explain"): run one call with an explained trace context
 * (`tracestate: trellis=e`), or ask every process to explain the next call that reaches a target, and collect the
 * spans every process publishes for that trace on NATS: each hop's link, host, provider instance, time and error,
 * without any external tracing stack.
 * @module
 */
import { randomBytes } from "node:crypto";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { TimeoutError } from "../core/errors.ts";
import { explainFollowSubject, explainSpanSubject, explainSpanWildcard, stripVersion } from "../core/subjects.ts";
import { invokeJson } from "../../packages/wire/src/invocation/client.ts";
import { EXPLAIN_STATE_KEY, EXPLAIN_STATE_VALUE, errorParts, HopAttr, TRACEPARENT, TRACESTATE, type ExplainSpan } from "./types.ts";

/** Service name of the spans `trellis explain` records itself. */
export const EXPLAIN_SERVICE = "trellis-cli";
/** Default quiet time after the last span before an explanation is complete, in milliseconds. */
export const DEFAULT_SETTLE_MS = 300;

/** One hop of an explained path, in tree order. */
export interface ExplainedHop {
  span_id: string;
  parent_span_id?: string;
  /** Depth in the tree (0: a root). */
  depth: number;
  kind: ExplainSpan["kind"];
  /** The process that recorded the hop (`trellis-host`, a provider id, `trellis-cli`). */
  service: string;
  source_id: string;
  target: string;
  /** `namespace:package/interface` (or `world`, `http`). */
  interface: string;
  function: string;
  link_name: string;
  host_id?: string;
  provider_id?: string;
  provider_instance_id?: string;
  /** Start relative to the earliest span of the trace, and duration; milliseconds. */
  start_offset_ms: number;
  duration_ms: number;
  status: "ok" | "error";
  error?: { code: string; message: string };
  /** True for the hop where the error arose: it failed and none of the hops under it did. */
  error_origin?: boolean;
}

/** An explained call. */
export interface Explanation {
  trace_id: string;
  hops: ExplainedHop[];
  /** The call's result (JSON form), for {@link explainCall} when it succeeded. */
  result?: unknown;
  /** The call's error, when it failed. */
  error?: { code: string; message: string };
}

/** Options of {@link explainCall}. */
export interface ExplainCallOptions {
  lattice: string;
  /** Component or provider id. */
  targetId: string;
  /** `namespace:package/interface` with or without `@version`. */
  iface: string;
  fn: string;
  /** JSON arguments (an array in parameter order, or an object by name). @default [] */
  args?: unknown;
  /** Time budget of the call, in milliseconds. @default 10000 */
  timeoutMs?: number;
  /** Quiet time after the last span before the path is complete, in milliseconds. @default 300 */
  settleMs?: number;
  /** Sent as `source-id`. @default "trellis-cli" */
  sourceId?: string;
}

const hex = (n: number) => randomBytes(n).toString("hex");
const nowMs = () => performance.timeOrigin + performance.now();
const dec = new TextDecoder();

/** Collects the spans of one trace (or of any trace, until one is chosen). */
class SpanCollector {
  readonly spans = new Map<string, ExplainSpan[]>();
  #last = Date.now();
  #notify: (() => void) | undefined;
  readonly #sub: Subscription;

  constructor(nc: NatsConnection, subject: string) {
    this.#sub = nc.subscribe(subject, {
      callback: (err, m) => {
        if (err) return;
        let s: ExplainSpan;
        try {
          s = JSON.parse(dec.decode(m.data)) as ExplainSpan;
        } catch {
          return;
        }
        if (typeof s.trace_id !== "string" || typeof s.span_id !== "string") return;
        let l = this.spans.get(s.trace_id);
        if (!l) this.spans.set(s.trace_id, (l = []));
        if (!l.some((x) => x.span_id === s.span_id)) l.push(s);
        this.#last = Date.now();
        this.#notify?.();
      },
    });
  }

  /** Resolves once `pred` holds (checked at each span) or after `timeoutMs`; returns whether it held. */
  async until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 50));
        this.#notify = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#notify = undefined;
    }
    return true;
  }

  /** Waits until no span arrived for `quietMs` (at most `maxMs`). */
  async settle(quietMs: number, maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    this.#last = Math.max(this.#last, Date.now());
    while (Date.now() < deadline && Date.now() - this.#last < quietMs) {
      await new Promise((r) => setTimeout(r, Math.min(quietMs, 50)));
    }
  }

  close(): void {
    this.#sub.unsubscribe();
  }
}

/**
 * Runs one call with an explained trace and returns its path. The call's own error does not throw: it is in
 * `error`, and the hops show where it arose.
 */
export async function explainCall(nc: NatsConnection, o: ExplainCallOptions): Promise<Explanation> {
  const traceId = hex(16);
  const spanId = hex(8);
  const iface = stripVersion(o.iface);
  const collector = new SpanCollector(nc, explainSpanSubject(o.lattice, traceId));
  try {
    await nc.flush();
    const start = nowMs();
    let result: unknown;
    let error: { code: string; message: string } | undefined;
    try {
      result = await invokeJson(
        nc,
        {
          lattice: o.lattice,
          targetId: o.targetId,
          iface: o.iface,
          fn: o.fn,
          sourceId: o.sourceId ?? EXPLAIN_SERVICE,
          timeoutMs: o.timeoutMs ?? 10_000,
          headers: { [TRACEPARENT]: `00-${traceId}-${spanId}-01`, [TRACESTATE]: `${EXPLAIN_STATE_KEY}=${EXPLAIN_STATE_VALUE}` },
        },
        o.args ?? [],
      );
    } catch (err) {
      error = errorParts(err);
    }
    const root: ExplainSpan = {
      trace_id: traceId,
      span_id: spanId,
      name: `${iface}.${o.fn}`,
      kind: "client",
      service: EXPLAIN_SERVICE,
      start_ms: start,
      end_ms: nowMs(),
      attributes: {
        [HopAttr.sourceId]: o.sourceId ?? EXPLAIN_SERVICE,
        [HopAttr.target]: o.targetId,
        [HopAttr.iface]: iface,
        [HopAttr.fn]: o.fn,
        [HopAttr.linkName]: "default",
      },
      status: error ? "error" : "ok",
      ...(error ? { error } : {}),
    };
    await collector.settle(o.settleMs ?? DEFAULT_SETTLE_MS, 5_000);
    const spans = [root, ...(collector.spans.get(traceId) ?? [])];
    return { trace_id: traceId, hops: buildPath(spans), ...(error ? { error } : { result }) };
  } finally {
    collector.close();
  }
}

/** Options of {@link followTarget}. */
export interface FollowOptions {
  lattice: string;
  /** Component (or provider) id whose next call is explained. */
  target: string;
  /** How long to wait for a call, in milliseconds. @default 60000 */
  timeoutMs?: number;
  /** Quiet time after the last span, in milliseconds. @default 300 */
  settleMs?: number;
  /** Called once the follow request is out (e.g. to send the request to follow). */
  onArmed?: () => void;
}

/**
 * Asks every process of the lattice to explain the next call that reaches `target` (its callers and its servers;
 * follow request on {@link explainFollowSubject}) and returns that call's path.
 * @throws TimeoutError when no call reached `target` within `timeoutMs`.
 */
export async function followTarget(nc: NatsConnection, o: FollowOptions): Promise<Explanation> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const collector = new SpanCollector(nc, explainSpanWildcard(o.lattice));
  const subject = explainFollowSubject(o.lattice);
  try {
    await nc.flush();
    nc.publish(subject, JSON.stringify({ target: o.target, until_ms: Date.now() + timeoutMs }));
    await nc.flush();
    o.onArmed?.();
    let chosen: string | undefined;
    // the trace whose server span at `target` arrives first (it ends after the hops under it)
    const reached = await collector.until(() => {
      for (const [id, spans] of collector.spans) {
        if (spans.some((s) => s.attributes[HopAttr.target] === o.target && s.kind === "server")) chosen = id;
      }
      return chosen !== undefined;
    }, timeoutMs);
    if (!reached || !chosen) throw new TimeoutError(`no call reached ${o.target} within ${timeoutMs} ms`, timeoutMs, { target: o.target });
    await collector.settle(o.settleMs ?? DEFAULT_SETTLE_MS, 5_000);
    const spans = collector.spans.get(chosen) ?? [];
    const top = buildPath(spans);
    const failed = top.find((h) => h.error_origin);
    return { trace_id: chosen, hops: top, ...(failed?.error ? { error: failed.error } : {}) };
  } finally {
    // disarm whoever did not see a call
    nc.publish(subject, JSON.stringify({ target: o.target, until_ms: 0 }));
    collector.close();
  }
}

/** Orders spans as a tree (children by start time under their parent; spans whose parent is absent are roots). */
export function buildPath(spans: readonly ExplainSpan[]): ExplainedHop[] {
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const children = new Map<string | undefined, ExplainSpan[]>();
  for (const s of spans) {
    const p = s.parent_span_id && byId.has(s.parent_span_id) ? s.parent_span_id : undefined;
    let l = children.get(p);
    if (!l) children.set(p, (l = []));
    l.push(s);
  }
  for (const l of children.values()) l.sort((a, b) => a.start_ms - b.start_ms);
  const t0 = Math.min(...spans.map((s) => s.start_ms));
  const failedBelow = (s: ExplainSpan): boolean => (children.get(s.span_id) ?? []).some((c) => c.status === "error" || failedBelow(c));
  const out: ExplainedHop[] = [];
  const walk = (s: ExplainSpan, depth: number) => {
    const a = s.attributes;
    const str = (k: string) => (a[k] === undefined || a[k] === "" ? undefined : String(a[k]));
    out.push({
      span_id: s.span_id,
      ...(s.parent_span_id ? { parent_span_id: s.parent_span_id } : {}),
      depth,
      kind: s.kind,
      service: s.service,
      source_id: str(HopAttr.sourceId) ?? "",
      target: str(HopAttr.target) ?? "",
      interface: str(HopAttr.iface) ?? s.name,
      function: str(HopAttr.fn) ?? "",
      link_name: str(HopAttr.linkName) ?? "default",
      ...(str(HopAttr.hostId) ? { host_id: str(HopAttr.hostId)! } : {}),
      ...(str(HopAttr.providerId) ? { provider_id: str(HopAttr.providerId)! } : {}),
      ...(str(HopAttr.providerInstanceId) ? { provider_instance_id: str(HopAttr.providerInstanceId)! } : {}),
      start_offset_ms: round(s.start_ms - t0),
      duration_ms: round(s.end_ms - s.start_ms),
      status: s.status,
      ...(s.error ? { error: s.error } : {}),
      ...(s.status === "error" && !failedBelow(s) ? { error_origin: true } : {}),
    });
    for (const c of children.get(s.span_id) ?? []) walk(c, depth + 1);
  };
  for (const r of children.get(undefined) ?? []) walk(r, 0);
  return out;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
const short = (id: string) => (id.length > 16 ? `${id.slice(0, 12)}…` : id);

/** The text form: one line per hop, indented by depth, with its link, where it ran, its time and its error. */
export function formatExplanation(e: Explanation): string {
  const lines = [`trace ${e.trace_id}`];
  for (const h of e.hops) {
    const pad = "  ".repeat(h.depth + 1);
    const where = [
      h.kind === "server" ? `served by ${h.service}` : `called from ${h.service}`,
      h.host_id ? `host ${short(h.host_id)}` : "",
      h.provider_instance_id ? `instance ${short(h.provider_instance_id)}` : "",
    ].filter(Boolean);
    const fn = h.function ? `${h.interface}.${h.function}` : h.interface;
    lines.push(
      `${pad}${h.kind === "server" ? "⇢" : "→"} ${h.source_id || "?"} → ${h.target} ${fn} link=${h.link_name}  [${where.join(", ")}]  ` +
        `+${h.start_offset_ms.toFixed(1)} ms, ${h.duration_ms.toFixed(1)} ms${h.status === "error" ? `  ${h.error_origin ? "✗ error arose here" : "✗"}: ${h.error?.code ?? "ERROR"} ${h.error?.message ?? ""}` : ""}`,
    );
  }
  if (e.error) lines.push(`error: ${e.error.code}: ${e.error.message}`);
  else if (e.result !== undefined) lines.push(`result: ${JSON.stringify(e.result)}`);
  return lines.join("\n");
}
