/**
 * Placement of component shards on the pool's worker threads (docs/adr/0023-component-workers.md): which worker takes
 * one more shard, loading, updating and stopping one shard in its worker, and bringing a component to its number of
 * shards with each shard's share of the instance limit (the shard count and shares themselves are in ./spread.ts).
 * @module
 */
import type { GuestSpec } from "./guest-types.ts";
import { shardCount, shareOf, type Spread } from "./spread.ts";
import type { Req, WorkerHandle } from "./worker-handle.ts";
import type { WorkerPoolOptions } from "./worker-pool-options.ts";

/**
 * A worker for one more shard of a component: an empty worker first, then a new one from `spawn` (up to
 * `maxWorkers`), then the least loaded; never an isolated one, never one in `taken` (a component has at most one
 * shard per worker).
 * @param workers the pool's workers (a new one is added by `spawn`).
 * @returns undefined when every shared worker already hosts a shard of it.
 */
export function pickWorker(workers: readonly WorkerHandle[], maxWorkers: number, spawn: () => WorkerHandle, taken: ReadonlySet<WorkerHandle>): WorkerHandle | undefined {
  const shared = workers.filter((x) => !x.isolated);
  const free = shared.filter((x) => !taken.has(x));
  const empty = free.find((x) => x.placed.size === 0);
  if (empty) return empty;
  if (shared.length < maxWorkers || shared.length === 0) return spawn();
  if (free.length === 0) return undefined;
  return free.reduce((a, b) => (b.placed.size < a.placed.size ? b : a));
}

/**
 * Loads one shard of `s` into `w` with `maxInstances` instances (or replaces its code); resolves once it serves.
 * Waits for the worker's first start and any restart first. A link or config change that arrived while it loaded is
 * pushed after.
 * @throws the worker's error when the shard cannot be loaded (the spec `w` keeps for it is left as it was).
 */
export async function loadShard(w: WorkerHandle, s: Spread, maxInstances: number): Promise<void> {
  const id = s.spec.componentId;
  await w.starting;
  await w.restarting;
  const full: GuestSpec = { ...s.spec, maxInstances, index: w.specs.get(id)?.index ?? w.componentIndex() };
  await w.request({ t: "load", spec: full });
  w.specs.set(id, full);
  if (s.spec.links !== full.links) await pushToShard(w, id, (spec) => ({ t: "links", componentId: id, links: (spec.links = s.spec.links) }));
  if (s.spec.config !== full.config) await pushToShard(w, id, (spec) => ({ t: "config", componentId: id, config: (spec.config = s.spec.config) }));
}

/**
 * Sends a request about component `id` to `w` when it hosts it: `req` gets the spec `w` keeps for it (to update it
 * first, for restarts) and returns the request; sent only while the worker is alive. No-op when `w` does not host it.
 */
export async function pushToShard(w: WorkerHandle, id: string, req: (spec: GuestSpec) => Req): Promise<void> {
  const spec = w.specs.get(id);
  if (!spec) return;
  const r = req(spec);
  if (w.alive) await w.request(r);
}

/** Stops one shard of component `id` in `w` (its running calls finish); the worker forgets its spec and placement. */
export async function unloadShard(w: WorkerHandle, id: string): Promise<void> {
  w.placed.delete(id);
  const had = w.specs.delete(id);
  if (had && w.alive) await w.request({ t: "unload", componentId: id });
}

/**
 * Brings the shards of `s` to {@link shardCount} (1 once isolated; ADR 0023): extra shards stop first, the kept ones
 * take their new share of the instance limit, then new shards load on workers from `pick`. The total never exceeds
 * the limit.
 * @param pick a worker for one more shard, not in `taken` ({@link pickWorker}); undefined: no more shards.
 * @throws the first error of a shard that failed to load (it is dropped; the others keep serving).
 */
export async function respread(
  s: Spread,
  opts: Pick<WorkerPoolOptions, "componentWorkers" | "maxWorkers">,
  pick: (taken: ReadonlySet<WorkerHandle>) => WorkerHandle | undefined,
): Promise<void> {
  const id = s.spec.componentId;
  const want = s.isolated ? 1 : shardCount(s.spec.maxInstances, opts.componentWorkers ?? 1, opts.maxWorkers);
  const gone = s.shards.splice(want);
  await Promise.all(gone.map((w) => unloadShard(w, id)));
  const kept = s.shards.length;
  const taken = new Set(s.shards);
  for (let i = kept; i < want; i++) {
    const w = pick(taken);
    if (!w) break;
    taken.add(w);
    w.placed.add(id);
    s.shards.push(w);
  }
  const k = s.shards.length;
  const total = s.spec.maxInstances;
  await Promise.all(
    s.shards.slice(0, kept).map((w, i) => pushToShard(w, id, (spec) => ({ t: "scale", componentId: id, maxInstances: (spec.maxInstances = shareOf(total, k, i)) }))),
  );
  const added = s.shards.slice(kept);
  const results = await Promise.allSettled(added.map((w, j) => loadShard(w, s, shareOf(total, k, kept + j))));
  const failed = added.filter((_w, j) => results[j]!.status === "rejected");
  if (failed.length === 0) return;
  for (const w of failed) {
    w.placed.delete(id);
    s.shards.splice(s.shards.indexOf(w), 1);
  }
  throw (results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
}
