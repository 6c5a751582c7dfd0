/**
 * One component worker thread as the main thread sees it (docs/adr/0002, 0014, 0023): starts the thread, pairs
 * requests with answers, and tells its pool when the thread dies or its NATS connection drops.
 * @module
 */
import { Worker } from "node:worker_threads";
import { IllegalStateError, TrellisError } from "../core/errors.ts";
import type { GuestSpec } from "./guest.ts";
import { createWatchdogBuffer, WatchdogReader } from "./watchdog.ts";
import type { WorkerInit, WorkerMessage, WorkerRequest } from "./worker-main.ts";
import { applyWorkerInitialHeap } from "./worker-heap.ts";
import type { WorkerPoolOptions } from "./worker-pool-options.ts";

/** What a {@link WorkerHandle} needs from its pool. */
export interface WorkerHost {
  readonly opts: WorkerPoolOptions;
  /** Worker heartbeat period, in milliseconds. */
  readonly heartbeatMs: number;
  /** The thread died on its own (not terminated by the pool). */
  onWorkerDied(w: WorkerHandle, reason: string): void;
  /** The thread's NATS connection dropped (`false`) or is back (`true`). */
  onWorkerConnection(w: WorkerHandle, connected: boolean): void;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void };
/** A request to a worker without its pairing id. */
export type Req = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

/** One worker thread and the components it hosts. */
export class WorkerHandle {
  readonly index: number;
  worker!: Worker;
  reader!: WatchdogReader;
  /** Components hosted here, by id (their latest spec, for restarts). */
  readonly specs = new Map<string, GuestSpec>();
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #nextComponentIndex = 0;
  alive = false;
  /** The first start of the thread. */
  starting: Promise<void> | undefined;
  /** Set while a restart after a kill is under way. */
  restarting: Promise<void> | undefined;
  /** A worker of its own for a component that ran past its deadline: placement never adds components to it. */
  isolated = false;
  /**
   * Components placed here, loaded or still loading (placement counts them, so two starts at once do not both take
   * the same empty worker).
   */
  readonly placed = new Set<string>();
  readonly #pool: WorkerHost;

  constructor(index: number, pool: WorkerHost) {
    this.index = index;
    this.#pool = pool;
  }

  async start(): Promise<void> {
    const sab = createWatchdogBuffer();
    this.reader = new WatchdogReader(sab);
    const init: WorkerInit = {
      lattice: this.#pool.opts.lattice,
      nats: this.#pool.opts.nats,
      watchdog: sab,
      heartbeatMs: this.#pool.heartbeatMs,
      ...(this.#pool.opts.compileCacheDir ? { compileCacheDir: this.#pool.opts.compileCacheDir } : {}),
      ...(this.#pool.opts.invocationLimits ? { invocationLimits: { ...this.#pool.opts.invocationLimits } } : {}),
      ...(this.#pool.opts.tracing ? { tracing: this.#pool.opts.tracing } : {}),
      hostId: this.#pool.opts.hostId ?? "",
    };
    applyWorkerInitialHeap(this.#pool.opts.workerInitialHeapMb ?? 0);
    const worker = new Worker(new URL("./worker-entry.ts", import.meta.url), {
      workerData: init,
      resourceLimits: { maxOldGenerationSizeMb: this.#pool.opts.workerHeapMb },
      stdout: false,
      stderr: false,
    });
    this.worker = worker;
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: WorkerMessage) => {
        if (m.t === "ready") {
          worker.off("error", reject);
          resolve();
        } else if (m.t === "res" && m.id === -1 && !m.ok) reject(TrellisError.fromWire(m.error));
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`the worker thread exited with code ${code} before it was ready`)));
    });
    this.alive = true;
    worker.on("message", (m: WorkerMessage) => this.#onMessage(m));
    worker.on("error", (err) => {
      if (this.worker === worker) this.#pool.onWorkerDied(this, `worker error: ${err.message}`);
    });
    worker.on("exit", (code) => {
      if (this.alive && this.worker === worker) this.#pool.onWorkerDied(this, `worker exited with code ${code}`);
    });
  }

  #onMessage(m: WorkerMessage): void {
    if (m.t === "log") this.#pool.opts.onGuestLog(m.componentId, m.level, m.msg, m.meta);
    else if (m.t === "nats") this.#pool.onWorkerConnection(this, m.connected);
    else if (m.t === "metrics") this.#pool.opts.onMetrics?.(m.batch);
    else if (m.t === "res") {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(TrellisError.fromWire(m.error));
    }
  }

  /**
   * Sends a request to the worker thread. While the thread is restarting after a kill, waits for the restart first
   * (so a control request arriving then is not failed).
   * @throws IllegalStateError when the thread is neither running nor restarting.
   */
  request<T = unknown>(req: Req): Promise<T> {
    if (!this.alive && this.restarting) return this.restarting.then(() => this.request<T>(req));
    if (!this.alive) return Promise.reject(new IllegalStateError(`component worker ${this.index} is not running`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id } as WorkerRequest);
    });
  }

  failPending(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  componentIndex(): number {
    return this.#nextComponentIndex++;
  }

  idOfIndex(i: number): string | undefined {
    for (const s of this.specs.values()) if (s.index === i) return s.componentId;
    return undefined;
  }
}
