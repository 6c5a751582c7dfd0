/**
 * Main-thread side of component isolation (issue 3 §3, docs/adr/0002, docs/adr/0014): a pool of worker threads, each
 * hosting several components; placement; the watchdog that terminates a worker whose event loop is stuck in guest code
 * past a call's deadline, answers that worker's in-flight calls with clear errors, moves the culprit to a worker of
 * its own, and restarts the worker with its components (held calls are served after it; a failed restart is retried
 * with backoff); target exit notices for the calls lost with a terminated worker.
 * @module
 */
import { Worker } from "node:worker_threads";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { NatsConnectData } from "../core/connection.ts";
import { invocationQueue, invocationWildcard } from "../core/subjects.ts";
import { ErrorCode, IllegalStateError, TimeoutError, TrellisError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { errorReply } from "../../packages/wire/src/invocation/server.ts";
import type { InvocationLimits } from "../../packages/wire/src/invocation/uploads.ts";
import { encodeTargetExit } from "../../packages/wire/src/invocation/exit.ts";
import type { GuestSpec } from "./guest.ts";
import type { LinkTable } from "./routing.ts";
import { createWatchdogBuffer, WatchdogReader, type WatchedCall } from "./watchdog.ts";
import type { WorkerInit, WorkerMessage, WorkerRequest } from "./worker-main.ts";
import type { TracingSettings } from "../tracing/settings.ts";
import type { MetricsBatch } from "../metrics/recorder.ts";

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Connection used to answer calls of a terminated worker. */
  nc: NatsConnection;
  lattice: string;
  /** Id of this host, named in target exit notices. @default "" */
  hostId?: string;
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

/** Most reply subjects listed in one exit notice (keeps it far below max_payload); calls beyond are failed in doubt. */
const MAX_SPARED = 4096;

/** Availability of a component as the pool sees it (reported through {@link WorkerPoolOptions.onStatus}). */
export type ComponentAvailability = "running" | "restarting" | "failed" | "disconnected";

/**
 * Calls held for one component while its worker restarts (a subscription in its queue group on the host's
 * connection). Once `refuse` is set (a restart attempt failed), held and arriving calls are answered with it at once.
 */
type Hold = { id: string; held: Msg[]; sub: { unsubscribe(): void }; refuse: TrellisError | undefined };
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
  /** A worker of its own for a component that ran past its deadline: placement never adds components to it. */
  isolated = false;
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
      ...(this.#pool.opts.invocationLimits ? { invocationLimits: { ...this.#pool.opts.invocationLimits } } : {}),
      ...(this.#pool.opts.tracing ? { tracing: this.#pool.opts.tracing } : {}),
      hostId: this.#pool.opts.hostId ?? "",
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

/** The pool of component workers. */
export class WorkerPool {
  readonly opts: WorkerPoolOptions;
  readonly heartbeatMs: number;
  readonly #workers: WorkerHandle[] = [];
  readonly #byComponent = new Map<string, WorkerHandle>();
  readonly #timer: NodeJS.Timeout;
  #closed = false;
  #nextIndex = 0;
  /** Resolves at the next reconnect of the host's connection (a failed worker restart is retried then at once). */
  #reconnected = deferred();
  /** Resolves when the pool closes (wakes a restart that waits out its backoff). */
  readonly #closing = deferred();

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts;
    void (async () => {
      for await (const st of opts.nc.status()) {
        if (st.type !== "reconnect") continue;
        this.#reconnected.resolve();
        this.#reconnected = deferred();
      }
    })().catch(() => undefined);
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
    const w = new WorkerHandle(this.#nextIndex++, this);
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
    // an empty worker first, then a new one (up to maxWorkers), then the least loaded; never an isolated one
    const shared = this.#workers.filter((x) => !x.isolated);
    const empty = shared.find((x) => x.specs.size === 0 && ![...this.#byComponent.values()].includes(x));
    if (empty) w = empty;
    else if (shared.length < this.opts.maxWorkers || shared.length === 0) w = this.#spawn();
    else w = shared.reduce((a, b) => (b.specs.size < a.specs.size ? b : a));
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
    const holds = this.#hold([...w.specs.keys()]);
    await w.worker.terminate();
    this.#answer(calls, culprit, culpritId, limit);
    const reason = `component ${culpritId} exceeded its execution time of ${limit} ms`;
    this.#announceExit(holds, `its worker thread was restarted: ${reason}`);
    // The culprit moves to a worker of its own, so that its next overrun costs its neighbours nothing (ADR 0014).
    const culpritHold = holds.find((h) => h.id === culpritId);
    if (spec && culpritHold && w.specs.size > 1) {
      w.specs.delete(culpritId);
      const own = new WorkerHandle(this.#nextIndex++, this);
      own.isolated = true;
      own.specs.set(culpritId, { ...spec, index: own.componentIndex() });
      this.#workers.push(own);
      this.#byComponent.set(culpritId, own);
      this.opts.logger.warn("component moved to a worker thread of its own after it exceeded its execution time", {
        component_id: culpritId,
        from_worker: w.index,
        to_worker: own.index,
      });
      this.#restartInBackground(own, reason, [culpritHold]);
      holds.splice(holds.indexOf(culpritHold), 1);
    }
    await this.#restart(w, reason, holds);
    done();
    w.restarting = undefined;
  }

  #restartInBackground(w: WorkerHandle, reason: string, holds: Hold[]): void {
    let done!: () => void;
    w.restarting = new Promise((r) => (done = r));
    void this.#restart(w, reason, holds).finally(() => {
      done();
      w.restarting = undefined;
    });
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

  /** A worker died on its own (heap exhaustion, crash, lost NATS connection): answer its calls and restart it. */
  onWorkerDied(w: WorkerHandle, reason: string): void {
    if (!w.alive || this.#closed) return;
    w.alive = false;
    const holds = this.#hold([...w.specs.keys()]);
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
    this.#announceExit(holds, `its worker thread died (${reason})`);
    this.#restartInBackground(w, reason, holds);
  }

  /**
   * Publishes a target exit notice per component of a terminated worker (ADR 0014): calls its NATS connection had
   * received but not read are lost with it, and their callers fail them at once; calls held on the host's connection
   * (`spared`) are still served after the restart.
   */
  #announceExit(holds: Pick<Hold, "id" | "held">[], reason: string): void {
    for (const h of holds) {
      const { subject, data } = encodeTargetExit(this.opts.lattice, {
        target_id: h.id,
        kind: "component",
        host_id: this.opts.hostId ?? "",
        instance_id: "",
        reason,
        at: Date.now(),
        spared: h.held.flatMap((m) => (m.reply ? [m.reply] : [])).slice(0, MAX_SPARED),
      });
      try {
        this.opts.nc.publish(subject, data);
      } catch {
        // connection closed: callers time out instead
      }
    }
  }

  /** A worker's NATS connection dropped or came back (its subscriptions are on the server again). */
  onWorkerConnection(w: WorkerHandle, connected: boolean): void {
    if (!w.alive) return;
    this.opts.logger[connected ? "info" : "warn"](connected ? "component worker reconnected to NATS" : "component worker lost its NATS connection; reconnecting", {
      worker: w.index,
      components: [...w.specs.keys()],
    });
    this.#status(w.specs.keys(), connected ? "running" : "disconnected");
  }

  /** Holds calls that arrive for the given components while their worker restarts (same queue groups). */
  #hold(ids: string[]): Hold[] {
    const nc = this.opts.nc;
    return ids.map((id) => {
      const h: Hold = { id, held: [], sub: { unsubscribe: () => undefined }, refuse: undefined };
      try {
        h.sub = nc.subscribe(invocationWildcard(this.opts.lattice, id), {
          queue: invocationQueue(this.opts.lattice, id),
          callback: (_e, m) => {
            if (h.refuse) this.#reject(m, h.refuse);
            else h.held.push(m);
          },
        });
      } catch {
        // connection closed: nothing arrives anyway
      }
      return h;
    });
  }

  #reject(m: Msg, err: TrellisError): void {
    if (!m.reply) return;
    try {
      this.opts.nc.publish(m.reply, errorReply(err));
    } catch {
      // connection closed: the caller times out
    }
  }

  #status(ids: Iterable<string>, status: ComponentAvailability, error?: string): void {
    for (const id of ids) {
      try {
        this.opts.onStatus?.(id, status, error);
      } catch (err) {
        this.opts.logger.warn("component status listener failed", { component_id: id, error: (err as Error).message });
      }
    }
  }

  /**
   * Restarts a worker thread with its components, retrying with backoff until it works (a restart fails e.g. while
   * NATS is down: the new thread cannot connect). Until the first attempt fails, calls for its components are held
   * and served afterwards; from then on they are answered at once with `COMPONENT_UNAVAILABLE`, and the components are
   * reported `failed` until they serve again (ADR 0014).
   */
  async #restart(w: WorkerHandle, reason: string, holds: Hold[]): Promise<void> {
    w.failPending(new TrellisError(ErrorCode.ComponentTrap, `component worker restarted: ${reason}`));
    const nc = this.opts.nc;
    this.#status(w.specs.keys(), "restarting");
    const base = this.opts.restartBackoffMs ?? 100;
    const max = this.opts.maxRestartBackoffMs ?? 5000;
    let attempt = 0;
    let served = false;
    const unloaded: { id: string; error: string }[] = [];
    while (!this.#closed) {
      try {
        await w.start();
        unloaded.length = 0;
        for (const spec of w.specs.values()) {
          try {
            await w.request({ t: "load", spec });
          } catch (err) {
            if (!w.alive) throw err; // the thread went away: retry it all
            unloaded.push({ id: spec.componentId, error: (err as Error).message });
          }
        }
        if (unloaded.length > 0 && unloaded.length === w.specs.size) throw new Error(unloaded.map((u) => `${u.id}: ${u.error}`).join("; "));
        served = true;
        break;
      } catch (err) {
        attempt++;
        const msg = (err as Error).message;
        const delay = Math.min(max, base * 2 ** (attempt - 1));
        this.opts.logger.error("component worker could not be restarted; retrying", {
          worker: w.index,
          components: [...w.specs.keys()],
          attempt,
          retry_in_ms: delay,
          error: msg,
        });
        if (attempt === 1) {
          const ids = [...w.specs.keys()];
          this.#status(ids, "failed", `its worker thread could not be restarted (${reason}): ${msg}`);
          for (const h of holds) {
            h.refuse = new TrellisError(
              ErrorCode.ComponentUnavailable,
              `component ${h.id} is unavailable: its worker thread is being restarted and could not start yet (${msg})`,
              { details: { componentId: h.id } },
            );
            for (const m of h.held.splice(0)) this.#reject(m, h.refuse);
          }
        }
        w.alive = false;
        w.failPending(new TrellisError(ErrorCode.ComponentUnavailable, `component worker ${w.index} could not be restarted: ${msg}`));
        try {
          await w.worker?.terminate();
        } catch {
          // already gone
        }
        // NATS back on the host's connection: the worker can likely connect now, so do not wait out the backoff
        await Promise.race([sleep(delay), this.#reconnected.promise, this.#closing.promise]);
      }
    }
    for (const h of holds) h.sub.unsubscribe();
    if (!served) return;
    this.opts.logger.info("component worker restarted", { worker: w.index, components: [...w.specs.keys()], attempts: attempt + 1 });
    const failed = new Set(unloaded.map((u) => u.id));
    this.#status([...w.specs.keys()].filter((id) => !failed.has(id)), "running");
    for (const u of unloaded) {
      // this component alone could not be loaded again: reported failed (its calls get NO_RESPONDERS at once), retried
      this.opts.logger.error("component could not be reloaded after its worker restarted; retrying", { component_id: u.id, error: u.error });
      this.#status([u.id], "failed", `it could not be reloaded after its worker thread restarted: ${u.error}`);
      void this.#reload(w, u.id);
    }
    try {
      await nc.flush();
      for (const h of holds) {
        if (failed.has(h.id)) {
          for (const m of h.held) this.#reject(m, new TrellisError(ErrorCode.ComponentUnavailable, `component ${h.id} is unavailable: it could not be reloaded after its worker thread restarted`));
          continue;
        }
        for (const m of h.held) nc.publish(m.subject, m.data, { ...(m.reply ? { reply: m.reply } : {}), ...(m.headers ? { headers: m.headers } : {}) });
      }
    } catch {
      // connection closed: the callers time out
    }
  }

  /** Retries loading one component into its (running) worker with backoff, until it loads or is gone. */
  async #reload(w: WorkerHandle, id: string): Promise<void> {
    const base = this.opts.restartBackoffMs ?? 100;
    const max = this.opts.maxRestartBackoffMs ?? 5000;
    for (let attempt = 1; ; attempt++) {
      await Promise.race([sleep(Math.min(max, base * 2 ** (attempt - 1))), this.#closing.promise]);
      const spec = w.specs.get(id);
      // closed, unloaded, moved, or the worker is restarting (which loads it again)
      if (this.#closed || !spec || this.#byComponent.get(id) !== w || !w.alive || w.restarting) return;
      try {
        await w.request({ t: "load", spec });
        this.opts.logger.info("component reloaded", { component_id: id, attempts: attempt });
        this.#status([id], "running");
        return;
      } catch (err) {
        this.opts.logger.warn("component still cannot be reloaded; retrying", { component_id: id, attempt, error: (err as Error).message });
      }
    }
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.resolve();
    clearInterval(this.#timer);
    await Promise.all(
      this.#workers.map(async (w) => {
        let clean = false;
        if (w.alive) {
          try {
            const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), 2000));
            clean = await Promise.race([w.request({ t: "shutdown" }).then(() => true), timeout]);
          } catch {
            // already gone
          }
        }
        w.alive = false;
        await w.worker?.terminate();
        // calls the worker had not answered when it stopped are lost with it: answer them (ADR 0014)
        for (const c of w.reader?.calls() ?? []) {
          if (!c.replySubject) continue;
          const id = w.idOfIndex(c.componentIndex) ?? "unknown";
          const err = new TrellisError(
            ErrorCode.TargetExited,
            `component ${id} was stopped with its host while the call was running${clean ? "" : " (its worker did not shut down in time)"}; the call may or may not have been carried out`,
            { details: { componentId: id } },
          );
          try {
            this.opts.nc.publish(c.replySubject, errorReply(err));
          } catch {
            // connection closed: the callers time out
          }
        }
      }),
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
