/**
 * The recording side of call metrics (ADR 0026), in the thread that serves and calls (a component worker): counts,
 * errors and latency buckets per component served and per link used, drained as a {@link MetricsBatch} about once a
 * second and handed to the host's {@link MetricsWindow}.
 * @module
 */
import { bucketOf } from "./histogram.ts";

/** Calls served by a component. */
export interface ComponentKey {
  kind: "component";
  componentId: string;
}

/** Import calls made over a link (one interface of it). */
export interface LinkKey {
  kind: "link";
  sourceId: string;
  target: string;
  namespace: string;
  package: string;
  iface: string;
  linkName: string;
}

/** Counts of one key over one interval. */
export interface MetricsEntry {
  key: ComponentKey | LinkKey;
  calls: number;
  errors: number;
  /** `[bucket, count]` (./histogram.ts). */
  buckets: [number, number][];
}

/** What a recorder drains: plain data (crosses threads). */
export interface MetricsBatch {
  entries: MetricsEntry[];
}

interface Acc {
  key: ComponentKey | LinkKey;
  calls: number;
  errors: number;
  buckets: Map<number, number>;
}

/** Accumulates calls between drains. */
export class MetricsRecorder {
  #acc = new Map<string, Acc>();

  #add(id: string, key: () => ComponentKey | LinkKey, ms: number, error: boolean): void {
    let a = this.#acc.get(id);
    if (!a) this.#acc.set(id, (a = { key: key(), calls: 0, errors: 0, buckets: new Map() }));
    a.calls++;
    if (error) a.errors++;
    const b = bucketOf(ms);
    a.buckets.set(b, (a.buckets.get(b) ?? 0) + 1);
  }

  /** One call served by `componentId`, `ms` long. */
  served(componentId: string, ms: number, error: boolean): void {
    this.#add(`c\0${componentId}`, () => ({ kind: "component", componentId }), ms, error);
  }

  /** One import call over a link; `iface` is `namespace:package/interface` (or `trellis:world/{fn}`). */
  called(sourceId: string, target: string, iface: string, linkName: string, ms: number, error: boolean): void {
    this.#add(`l\0${sourceId}\0${target}\0${iface}\0${linkName}`, () => {
      const m = /^([^:]+):([^/]+)\/(.+)$/.exec(iface);
      return { kind: "link", sourceId, target, namespace: m?.[1] ?? "", package: m?.[2] ?? "", iface: m?.[3] ?? iface, linkName };
    }, ms, error);
  }

  /** Takes what was recorded since the last drain; undefined when nothing was. */
  drain(): MetricsBatch | undefined {
    if (this.#acc.size === 0) return undefined;
    const entries = [...this.#acc.values()].map((a) => ({ key: a.key, calls: a.calls, errors: a.errors, buckets: [...a.buckets] }));
    this.#acc = new Map();
    return { entries };
  }
}
