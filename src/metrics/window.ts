/**
 * The host's view of call metrics over the last minute (ADR 0026): batches from its component workers are kept in
 * one-second slots; {@link MetricsWindow.snapshot} answers the `metrics` field of the host inventory
 * (docs/control-interface.md "Metrics").
 * @module
 */
import { mergeBuckets, quantile, type Buckets } from "./histogram.ts";
import type { MetricsBatch, MetricsEntry } from "./recorder.ts";
import type { CallFigures, HostMetrics, LinkFigures } from "../core/host.ts";

export type { CallFigures, HostMetrics, LinkFigures };

/** Length of the window, in milliseconds. */
export const METRICS_WINDOW_MS = 60_000;

interface Slot {
  sec: number;
  calls: number;
  errors: number;
  buckets: Buckets;
}

interface Series {
  entry: MetricsEntry["key"];
  slots: Slot[];
  /** Calls and errors since the host started. */
  totalCalls: number;
  totalErrors: number;
  /** Every interface seen (links). */
  ifaces: Set<string>;
}

/** Cumulative totals, for Prometheus counters. */
export interface SeriesTotals {
  key: MetricsEntry["key"];
  calls: number;
  errors: number;
}

/** Call metrics of one host over the last minute. */
export class MetricsWindow {
  readonly #series = new Map<string, Series>();
  readonly #now: () => number;

  /** @param now clock in epoch milliseconds (tests). @default Date.now */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Adds a batch recorded just now. */
  add(batch: MetricsBatch): void {
    const sec = Math.floor(this.#now() / 1000);
    for (const e of batch.entries) {
      const k = e.key;
      const id = k.kind === "component" ? `c\0${k.componentId}` : `l\0${k.sourceId}\0${k.target}\0${k.namespace}\0${k.package}\0${k.linkName}`;
      let s = this.#series.get(id);
      if (!s) this.#series.set(id, (s = { entry: k, slots: [], totalCalls: 0, totalErrors: 0, ifaces: new Set() }));
      if (k.kind === "link") s.ifaces.add(k.iface);
      s.totalCalls += e.calls;
      s.totalErrors += e.errors;
      let slot = s.slots[s.slots.length - 1];
      if (!slot || slot.sec !== sec) s.slots.push((slot = { sec, calls: 0, errors: 0, buckets: new Map() }));
      slot.calls += e.calls;
      slot.errors += e.errors;
      mergeBuckets(slot.buckets, e.buckets);
    }
  }

  /** Figures over the last {@link METRICS_WINDOW_MS}; series without calls in the window are left out. */
  snapshot(): HostMetrics {
    const from = Math.floor((this.#now() - METRICS_WINDOW_MS) / 1000);
    const out: HostMetrics = { window_ms: METRICS_WINDOW_MS, components: {}, links: [] };
    for (const [id, s] of this.#series) {
      while (s.slots.length > 0 && s.slots[0]!.sec <= from) s.slots.shift();
      if (s.slots.length === 0) {
        if (s.totalCalls === 0) this.#series.delete(id);
        continue;
      }
      const buckets: Buckets = new Map();
      let calls = 0;
      let errors = 0;
      for (const sl of s.slots) {
        calls += sl.calls;
        errors += sl.errors;
        mergeBuckets(buckets, sl.buckets);
      }
      const fig: CallFigures = {
        calls,
        errors,
        rate_per_s: Math.round((calls / (METRICS_WINDOW_MS / 1000)) * 1000) / 1000,
        p50_ms: quantile(buckets, 0.5),
        p99_ms: quantile(buckets, 0.99),
      };
      const k = s.entry;
      if (k.kind === "component") out.components[k.componentId] = fig;
      else {
        out.links.push({
          source_id: k.sourceId,
          target: k.target,
          wit_namespace: k.namespace,
          wit_package: k.package,
          interfaces: [...s.ifaces].sort(),
          link_name: k.linkName,
          ...fig,
        });
      }
    }
    return out;
  }

  /** Calls and errors since start, per series (Prometheus counters). */
  totals(): SeriesTotals[] {
    return [...this.#series.values()].map((s) => ({ key: s.entry, calls: s.totalCalls, errors: s.totalErrors }));
  }
}
