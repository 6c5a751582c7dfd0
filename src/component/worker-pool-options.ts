/**
 * The options of the component worker pool (./worker-pool.ts `WorkerPool`) and the availability it reports per
 * component; shared with ./worker-handle.ts, ./spread.ts and ./worker-restart.ts without importing the pool itself.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsConnectData } from "../core/connection.ts";
import type { Logger } from "../core/logger.ts";
import type { InvocationLimits } from "../../packages/wire/src/invocation/uploads.ts";
import type { TracingSettings } from "../tracing/settings.ts";
import type { MetricsBatch } from "../metrics/recorder.ts";

/** Options of the worker pool (./worker-pool.ts `WorkerPool`). */
export interface WorkerPoolOptions {
  /** Connection used to answer calls of a terminated worker. */
  nc: NatsConnection;
  lattice: string;
  /** Id of this host, named in target exit notices. @default "" */
  hostId?: string;
  /** Settings of each worker's own NATS connection (plain data, src/core/connection.ts). */
  nats: NatsConnectData;
  logger: Logger;
  /** Most worker threads; components beyond one per worker share workers (least loaded first). */
  maxWorkers: number;
  /**
   * Most worker threads one component's instances are spread over (ADR 0023): a component with `maxInstances` n runs
   * min(n, componentWorkers, maxWorkers) shards, each on its own worker with its own subscription in the component's
   * queue group and an even share of the n instances. @default 1 (no spread)
   */
  componentWorkers?: number;
  /** V8 old-generation heap limit of a worker, in MiB (WebAssembly memories are capped per component instead). */
  workerHeapMb: number;
  /** Initial old-generation size of each worker's V8 heap, MiB; 0: V8's own (./worker-heap.ts, ADR 0028). @default 0 */
  workerInitialHeapMb?: number;
  /** How often the watchdog looks at workers, in milliseconds. @default 25 */
  watchdogIntervalMs?: number;
  /** Worker heartbeat period, in milliseconds. @default 20 */
  heartbeatMs?: number;
  /** Directory for Node's compile cache of the worker's own modules (faster worker starts). */
  compileCacheDir?: string;
  /** Limits each worker applies to callers of its components (docs/protocol.md §7.1). @default the defaults */
  invocationLimits?: InvocationLimits;
  /** First delay before retrying a worker restart that failed (e.g. NATS unreachable), in ms; doubles per failure. @default 100 */
  restartBackoffMs?: number;
  /** Longest delay between worker restart attempts, in ms. @default 5000 */
  maxRestartBackoffMs?: number;
  /**
   * Called when a component's availability changes: `restarting` while its worker thread restarts, `failed` once a
   * restart attempt failed (it is retried with backoff; `error` says why), `disconnected` while its worker's NATS
   * connection is down (it reconnects by itself), `running` once it serves again.
   */
  onStatus?(componentId: string, status: ComponentAvailability, error?: string): void;
  /** Tracing of the calls the workers serve and make (src/tracing, ADR 0025). @default off */
  tracing?: TracingSettings;
  /** Receives the call metrics each worker records, about once a second (ADR 0026). @default dropped */
  onMetrics?(batch: MetricsBatch): void;
  /** Called with a log record a guest produced. */
  onGuestLog(componentId: string, level: "trace" | "debug" | "info" | "warn" | "error", msg: string, meta?: Record<string, unknown>): void;
}

/** Availability of a component as the pool sees it (reported through {@link WorkerPoolOptions.onStatus}). */
export type ComponentAvailability = "running" | "restarting" | "failed" | "disconnected";
