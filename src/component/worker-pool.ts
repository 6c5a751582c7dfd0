/**
 * Main-thread side of component isolation (issue 3 §3, docs/adr/0002): a pool of worker threads, each hosting
 * several components; placement; the watchdog that terminates a worker whose event loop is stuck in guest code past
 * a call's deadline, answers that worker's in-flight calls with clear errors, and restarts it with its components.
 * @module
 */
import { Worker } from "node:worker_threads";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { NatsConnectData } from "../core/connection.ts";
import { invocationQueue, invocationWildcard } from "../core/subjects.ts";
import { ErrorCode, IllegalStateError, TimeoutError, TrellisError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { errorReply } from "../invocation/server.ts";
import type { GuestSpec } from "./guest.ts";
import type { LinkTable } from "./routing.ts";
import { createWatchdogBuffer, WatchdogReader, type WatchedCall } from "./watchdog.ts";
import type { WorkerInit, WorkerMessage, WorkerRequest } from "./worker-main.ts";

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Connection used to answer calls of a terminated worker. */
  nc: NatsConnection;
  lattice: string;
  /** Options of each worker's own NATS connection (plain data). */
  /** Settings of each worker's own NATS connection (plain data, src/core/connection.ts). */
  nats: NatsConnectData;
  logger: Logger;
  /** Most worker threads; components beyond one per worker share workers (least loaded first). */
  maxWorkers: number;
  /** V8 old-generation heap limit of a worker, in MiB (WebAssembly memories are capped per component instead). */
  workerHeapMb: number;
  /** How often the watchdog looks at workers, in milliseconds. @default 25 */
  watchdogIntervalMs?: number;
  /** Worker heartbeat period, in milliseconds. @default 20 */
  heartbeatMs?: number;
  /** Directory for Node's compile cache of the worker's own modules (faster worker starts). */
  compileCacheDir?: string;
  /** Called with a log record a guest produced. */
  onGuestLog(componentId: string, level: "trace" | "debug" | "info" | "warn" | "error", msg: string, meta?: Record<string, unknown>): void;
}

type Hold = { held: Msg[]; subs: { unsubscribe(): void }[] };
type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void };
type Req = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

/** One worker thread and the components it hosts. */
class WorkerHandle {
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
  readonly #pool: WorkerPool;

  constructor(index: number, pool: WorkerPool) {
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
    };
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
    });
    this.alive = true;
    worker.on("message", (m: WorkerMessage) => this.#onMessage(m));
    worker.on("error", (err) => this.#pool.onWorkerDied(this, `worker error: ${err.message}`));
    worker.on("exit", (code) => {
      if (this.alive) this.#pool.onWorkerDied(this, `worker exited with code ${code}`);
    });
  }

  #onMessage(m: WorkerMessage): void {
    if (m.t === "log") this.#pool.opts.onGuestLog(m.componentId, m.level, m.msg, m.meta);
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

/** The pool of component workers. */
export class WorkerPool {
  readonly opts: WorkerPoolOptions;
  readonly heartbeatMs: number;
  readonly #workers: WorkerHandle[] = [];
  readonly #byComponent = new Map<string, WorkerHandle>();
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts;
    this.heartbeatMs = opts.heartbeatMs ?? 20;
    this.#timer = setInterval(() => this.#check(), opts.watchdogIntervalMs ?? 25);
    this.#timer.unref();
  }

  /** Number of worker threads running. */
  get workerCount(): number {
    return this.#workers.length;
  }

  /** Spawns a worker thread (placement happens in {@link load}). */
  #spawn(): WorkerHandle {
    const w = new WorkerHandle(this.#workers.length, this);
    this.#workers.push(w);
    w.starting = w.start().catch((err: unknown) => {
      this.#workers.splice(this.#workers.indexOf(w), 1);
      throw new TrellisError(ErrorCode.Internal, `cannot start a component worker: ${(err as Error).message}`, { cause: err });
    });
    w.starting.catch(() => undefined);
    return w;
  }

  /** Starts the first worker thread ahead of the first component, so its start does not pay for the spawn. */
  prewarm(): void {
    if (this.#workers.length === 0 && this.opts.maxWorkers > 0) this.#spawn();
  }

  async #place(componentId: string): Promise<WorkerHandle> {
    const existing = this.#byComponent.get(componentId);
    if (existing) return existing;
    let w: WorkerHandle;
    // an empty worker first, then a new one (up to maxWorkers), then the least loaded
    const empty = this.#workers.find((x) => x.specs.size === 0 && ![...this.#byComponent.values()].includes(x));
    if (empty) w = empty;
    else if (this.#workers.length < this.opts.maxWorkers) w = this.#spawn();
    else w = this.#workers.reduce((a, b) => (b.specs.size < a.specs.size ? b : a));
    this.#byComponent.set(componentId, w);
    try {
      await w.starting;
    } catch (err) {
      this.#byComponent.delete(componentId);
      throw err;
    }
    return w;
  }

  /**
   * Loads (or replaces) a component in a worker; resolves once it serves invocations.
   * @param spec without `index` (assigned here).
   */
  async load(spec: Omit<GuestSpec, "index">): Promise<void> {
    if (this.#closed) throw new IllegalStateError("the component runtime is closed");
    const w = await this.#place(spec.componentId);
    await w.restarting;
    const full: GuestSpec = { ...spec, index: w.specs.get(spec.componentId)?.index ?? w.componentIndex() };
    try {
      await w.request({ t: "load", spec: full });
    } catch (err) {
      if (!w.specs.has(spec.componentId)) this.#byComponent.delete(spec.componentId);
      throw err;
    }
    w.specs.set(spec.componentId, full);
  }

  /** Stops serving a component and drops its instances. */
  async unload(componentId: string): Promise<void> {
    const w = this.#byComponent.get(componentId);
    if (!w) return;
    w.specs.delete(componentId);
    this.#byComponent.delete(componentId);
    if (w.alive) await w.request({ t: "unload", componentId });
  }

  /** Changes a component's instance limit. */
  async scale(componentId: string, maxInstances: number): Promise<void> {
    const w = this.#byComponent.get(componentId);
    const spec = w?.specs.get(componentId);
    if (!w || !spec) return;
    spec.maxInstances = maxInstances;
    if (w.alive) await w.request({ t: "scale", componentId, maxInstances });
  }

  /** Pushes a new routing table (live). */
  async setLinks(componentId: string, links: LinkTable): Promise<void> {
    const w = this.#byComponent.get(componentId);
    const spec = w?.specs.get(componentId);
    if (!w || !spec) return;
    spec.links = links;
    if (w.alive) await w.request({ t: "links", componentId, links });
  }

  /** Pushes new merged config (live). */
  async setConfig(componentId: string, config: Record<string, string>): Promise<void> {
    const w = this.#byComponent.get(componentId);
    const spec = w?.specs.get(componentId);
    if (!w || !spec) return;
    spec.config = config;
    if (w.alive) await w.request({ t: "config", componentId, config });
  }

  /** Worker index of a component (for tests and inventories), or undefined. */
  workerOf(componentId: string): number | undefined {
    return this.#byComponent.get(componentId)?.index;
  }

  #check(): void {
    const now = Date.now();
    for (const w of this.#workers) {
      if (!w.alive || w.restarting) continue;
      const stale = now - w.reader.heartbeat() > Math.max(100, this.heartbeatMs * 5);
      if (!stale) continue;
      const calls = w.reader.calls();
      const overdue = calls.filter((c) => c.deadline < now);
      if (overdue.length === 0) continue;
      const running = w.reader.runningSlot();
      const culprit = calls.find((c) => c.slot === running) ?? overdue.reduce((a, b) => (b.deadline < a.deadline ? b : a));
      const culpritId = w.idOfIndex(culprit.componentIndex) ?? "unknown";
      void this.#kill(w, calls, culprit, culpritId);
    }
  }

  async #kill(w: WorkerHandle, calls: WatchedCall[], culprit: WatchedCall, culpritId: string): Promise<void> {
    const spec = w.specs.get(culpritId);
    const limit = spec?.timeoutMs ?? 0;
    this.opts.logger.warn("component exceeded its execution time and its worker is being restarted", {
      component_id: culpritId,
      worker: w.index,
      timeoutMs: limit,
      inflight: calls.length,
    });
    w.alive = false;
    let done!: () => void;
    w.restarting = new Promise((r) => (done = r));
    const hold = this.#hold(w);
    await w.worker.terminate();
    this.#answer(calls, culprit, culpritId, limit);
    await this.#restart(w, `component ${culpritId} exceeded its execution time of ${limit} ms`, hold);
    done();
    w.restarting = undefined;
  }

  #answer(calls: WatchedCall[], culprit: WatchedCall | undefined, culpritId: string, limit: number): void {
    for (const c of calls) {
      if (!c.replySubject) continue;
      const id = culprit ? culpritId : "unknown";
      const err =
        culprit && c.slot === culprit.slot
          ? new TimeoutError(
              `component ${culpritId} did not finish within its execution time of ${limit} ms; it was stopped (its worker thread was restarted)`,
              limit,
              { componentId: culpritId, terminated: true },
            )
          : new TrellisError(
              ErrorCode.ComponentTrap,
              `the call was cut short: its worker thread was restarted because component ${id} did not finish in time`,
              { details: { reason: "worker_restarted", culprit: id } },
            );
      try {
        this.opts.nc.publish(c.replySubject, errorReply(err));
      } catch {
        // connection closed
      }
    }
  }

  /** A worker died on its own (heap exhaustion, crash): answer its calls and restart it. */
  onWorkerDied(w: WorkerHandle, reason: string): void {
    if (!w.alive || this.#closed) return;
    w.alive = false;
    const hold = this.#hold(w);
    const calls = w.reader.calls();
    this.opts.logger.error("component worker died; restarting it", { worker: w.index, reason, components: [...w.specs.keys()] });
    for (const c of calls) {
      if (!c.replySubject) continue;
      const id = w.idOfIndex(c.componentIndex) ?? "unknown";
      try {
        this.opts.nc.publish(
          c.replySubject,
          errorReply(new TrellisError(ErrorCode.ComponentTrap, `component ${id} failed: its worker thread died (${reason})`, { details: { componentId: id } })),
        );
      } catch {
        // connection closed
      }
    }
    let done!: () => void;
    w.restarting = new Promise((r) => (done = r));
    void this.#restart(w, reason, hold).finally(() => {
      done();
      w.restarting = undefined;
    });
  }

  /** Holds calls that arrive for a worker's components while it restarts (same queue group). */
  #hold(w: WorkerHandle): Hold {
    const held: Msg[] = [];
    const subs = [...w.specs.keys()].map((id) =>
      this.opts.nc.subscribe(invocationWildcard(this.opts.lattice, id), {
        queue: invocationQueue(this.opts.lattice, id),
        callback: (_e, m) => void held.push(m),
      }),
    );
    return { held, subs };
  }

  async #restart(w: WorkerHandle, reason: string, hold: Hold): Promise<void> {
    w.failPending(new TrellisError(ErrorCode.ComponentTrap, `component worker restarted: ${reason}`));
    const nc = this.opts.nc;
    const { held, subs: holds } = hold;
    if (this.#closed) {
      for (const h of holds) h.unsubscribe();
      return;
    }
    try {
      await w.start();
      for (const spec of w.specs.values()) {
        try {
          await w.request({ t: "load", spec });
        } catch (err) {
          this.opts.logger.error("component could not be restarted", { component_id: spec.componentId, error: (err as Error).message });
        }
      }
      this.opts.logger.info("component worker restarted", { worker: w.index, components: [...w.specs.keys()] });
    } catch (err) {
      this.opts.logger.error("component worker could not be restarted", { worker: w.index, error: (err as Error).message });
    } finally {
      for (const h of holds) h.unsubscribe();
      try {
        await nc.flush();
        for (const m of held) nc.publish(m.subject, m.data, { ...(m.reply ? { reply: m.reply } : {}), ...(m.headers ? { headers: m.headers } : {}) });
      } catch {
        // connection closed: the callers time out
      }
    }
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.all(
      this.#workers.map(async (w) => {
        if (w.alive) {
          try {
            await Promise.race([w.request({ t: "shutdown" }), new Promise((r) => setTimeout(r, 2000))]);
          } catch {
            // already gone
          }
        }
        w.alive = false;
        await w.worker.terminate();
      }),
    );
  }
}
