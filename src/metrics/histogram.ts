/**
 * Log-bucketed latency histograms (5 % wide buckets): mergeable across threads and seconds, quantiles within ±2.5 %.
 * @module
 */

const GROWTH = 1.05;
const LOG_GROWTH = Math.log(GROWTH);
/** Latencies below this (ms) share bucket 0. */
const FLOOR_MS = 0.001;

/** Bucket index of a latency in milliseconds. */
export function bucketOf(ms: number): number {
  if (!(ms > FLOOR_MS)) return 0;
  return Math.floor(Math.log(ms / FLOOR_MS) / LOG_GROWTH) + 1;
}

/** A representative latency (ms) of bucket `b`: the geometric middle of its bounds. */
export function bucketValue(b: number): number {
  if (b <= 0) return FLOOR_MS;
  return FLOOR_MS * GROWTH ** (b - 0.5);
}

/** Sparse bucket counts: `[bucket, count]` pairs (plain data: crosses threads). */
export type Buckets = Map<number, number>;

/** Adds `from` into `into`. */
export function mergeBuckets(into: Buckets, from: Iterable<[number, number]>): void {
  for (const [b, n] of from) into.set(b, (into.get(b) ?? 0) + n);
}

/** The `q` quantile (0–1) in milliseconds, rounded to 3 decimals; 0 for no samples. */
export function quantile(buckets: Buckets, q: number): number {
  let total = 0;
  for (const n of buckets.values()) total += n;
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const b of [...buckets.keys()].sort((x, y) => x - y)) {
    seen += buckets.get(b)!;
    if (seen >= rank) return Math.round(bucketValue(b) * 1000) / 1000;
  }
  return 0;
}
