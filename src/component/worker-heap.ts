/**
 * The V8 heap sizing of component worker threads (docs/adr/0028-worker-heap.md).
 *
 * A component worker allocates a few KiB per call (decoded invocations, jco glue objects, replies) and keeps little:
 * its live heap is 10–40 MiB. V8 sizes the old generation's first full-GC limit from that small live size, so the
 * objects of calls in flight that survive two scavenges fill it several times a second, and each full (mark-compact)
 * collection stops the worker for 4–10 ms: measured on the Rust hello at 16k req/s, 3 of them a second, which put the
 * p99 at 32 connections at 9–10 ms. Giving the old generation an initial size lets those objects die in a heap that
 * is not collected until it reaches that size, so the worker runs on scavenges (1–3 ms) alone.
 *
 * Node's `Worker` `resourceLimits` sets only the maximum sizes; the initial old-generation size exists only as the
 * V8 flag `--initial-old-space-size` (MiB), read when an isolate is created. {@link applyWorkerInitialHeap} sets that
 * flag right before a worker is created, so it applies to every worker created after it in this process, the
 * component workers included; isolates that already run (the main thread) keep theirs.
 * @module
 */
import { setFlagsFromString } from "node:v8";

/** Default initial old-generation size of a component worker, in MiB (ADR 0028). */
export const DEFAULT_WORKER_INITIAL_HEAP_MB = 128;

let applied: number | undefined;

/**
 * Sets V8's initial old-generation size for isolates created from now on (`--initial-old-space-size`), once per
 * value: a no-op when `mb` is what was applied last. Call it right before creating a worker thread.
 * @param mb initial old-generation size in MiB, a positive integer; 0 leaves V8's own sizing.
 * @returns true when the flag was set by this call.
 */
export function applyWorkerInitialHeap(mb: number): boolean {
  if (!Number.isInteger(mb) || mb <= 0 || applied === mb) return false;
  setFlagsFromString(`--initial-old-space-size=${mb}`);
  applied = mb;
  return true;
}

/** The initial old-generation size (MiB) last applied by {@link applyWorkerInitialHeap}; undefined: never. */
export function appliedWorkerInitialHeapMb(): number | undefined {
  return applied;
}
