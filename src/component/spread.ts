/**
 * How one component's instances are spread over several worker threads (docs/adr/0023-component-workers.md): how
 * many shards, each shard's share of the instance limit, and the availability a spread component shows.
 * @module
 */
import type { GuestSpec } from "./guest.ts";
import type { WorkerHandle } from "./worker-handle.ts";
import type { ComponentAvailability } from "./worker-pool-options.ts";

/** A component as the pool runs it: its latest spec and the workers its shards live in. */
export interface Spread {
  /** The latest spec, `maxInstances` being the component's whole instance limit (each shard gets a share). */
  spec: Omit<GuestSpec, "index">;
  /** Workers hosting a shard, in shard order (shard i has {@link shareOf}(limit, shards, i) instances). */
  shards: WorkerHandle[];
  /** Gathered in a worker of its own after it ran past its deadline (ADR 0014): never spread again. */
  isolated: boolean;
  /** Availability of each shard, by worker (absent: running). */
  status: Map<WorkerHandle, ComponentAvailability>;
  /**
   * Shards on other workers of a component being gathered into a worker of its own (ADR 0014): they serve until that
   * worker does, then stop (and stop at once when the component is stopped).
   */
  leaving: WorkerHandle[];
}

/** What one shard reports from its worker thread ({@link WorkerPool.shards}). */
export interface ShardStats {
  /** Index of the worker in the pool. */
  worker: number;
  /** `threadId` of the worker thread (node:worker_threads). */
  threadId: number;
  /** This shard's share of the component's instance limit. */
  maxInstances: number;
  /** Instances the shard has now (idle and busy). */
  instances: number;
  /** Invocations the shard has taken since it loaded (introspection included). */
  served: number;
  /** CPU time its worker thread has used since it started (user + system, every component of that worker), in µs. */
  threadCpuUs: number;
  /** True for a shard that still serves while the component is gathered into a worker of its own (ADR 0014). */
  leaving?: true;
}

/**
 * Number of shards for a component with `maxInstances` instances: min(maxInstances, componentWorkers, maxWorkers),
 * at least 1. Every shard then has at least one instance.
 */
export function shardCount(maxInstances: number, componentWorkers: number, maxWorkers: number): number {
  return Math.max(1, Math.min(Math.floor(maxInstances), Math.floor(componentWorkers), Math.floor(maxWorkers)));
}

/** Instances of shard `i` of `shards`: an even split of `total`, the first `total % shards` shards one more. */
export function shareOf(total: number, shards: number, i: number): number {
  return Math.floor(total / shards) + (i < total % shards ? 1 : 0);
}

const RANK: Record<ComponentAvailability, number> = { running: 3, disconnected: 2, restarting: 1, failed: 0 };

/** The availability a component shows: its best shard's (running, then disconnected, restarting, failed). */
export function bestAvailability(shards: ComponentAvailability[]): ComponentAvailability {
  let best: ComponentAvailability = "failed";
  for (const s of shards) if (RANK[s] > RANK[best]) best = s;
  return shards.length === 0 ? "running" : best;
}
