/**
 * Main-thread side of component isolation (issue 3 §3, docs/adr/0002, docs/adr/0014): a pool of worker threads, each
 * hosting several components; placement, with a busy component's instances spread over several workers (ADR 0023);
 * the watchdog that terminates a worker whose event loop is stuck in guest code
 * past a call's deadline, answers that worker's in-flight calls with clear errors, moves the culprit to a worker of
 * its own, and restarts the worker with its components (held calls are served after it; a failed restart is retried
 * with backoff); target exit notices for the calls lost with a terminated worker.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsConnectData } from "../core/connection.ts";
import { ErrorCode, IllegalStateError, TrellisError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { errorReply } from "../../packages/wire/src/invocation/server.ts";
import type { InvocationLimits } from "../../packages/wire/src/invocation/uploads.ts";
import type { GuestSpec } from "./guest.ts";
import type { LinkTable } from "./routing.ts";
import type { WatchedCall } from "./watchdog.ts";
import { announceExit, answerKilledCalls, type Hold, holdCalls, rejectCall } from "./worker-calls.ts";
import { type Req, WorkerHandle, type WorkerHost } from "./worker-handle.ts";
import type { WorkerStats } from "./worker-main.ts";
import { bestAvailability, shardCount, shareOf, type ShardStats, type Spread } from "./spread.ts";
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

/** The pool of component workers. */
export class WorkerPool implements WorkerHost {
  readonly opts: WorkerPoolOptions;
  readonly heartbeatMs: number;
  readonly #workers: WorkerHandle[] = [];
  /** Every component the pool runs, with the workers its instances are spread over (ADR 0023). */
  readonly #components = new Map<string, Spread>();
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

  /**
   * A worker for one more shard of a component: an empty worker first, then a new one (up to maxWorkers), then the
   * least loaded; never an isolated one, never one in `taken` (a component has at most one shard per worker).
   * @returns undefined when every shared worker already hosts a shard of it.
   */
  #pick(taken: ReadonlySet<WorkerHandle>): WorkerHandle | undefined {
    const shared = this.#workers.filter((x) => !x.isolated);
    const free = shared.filter((x) => !taken.has(x));
    const empty = free.find((x) => x.placed.size === 0);
    if (empty) return empty;
    if (shared.length < this.opts.maxWorkers || shared.length === 0) return this.#spawn();
    if (free.length === 0) return undefined;
    return free.reduce((a, b) => (b.placed.size < a.placed.size ? b : a));
  }

  /**
   * Loads one shard of `s` into `w` with `maxInstances` instances (or replaces its code); resolves once it serves.
   * A link or config change that arrived while it loaded is pushed after.
   */
  async #loadShard(w: WorkerHandle, s: Spread, maxInstances: number): Promise<void> {
    const id = s.spec.componentId;
    await w.starting;
    await w.restarting;
    const full: GuestSpec = { ...s.spec, maxInstances, index: w.specs.get(id)?.index ?? w.componentIndex() };
    await w.request({ t: "load", spec: full });
    w.specs.set(id, full);
    if (s.spec.links !== full.links) await this.#push(w, id, (spec) => ({ t: "links", componentId: id, links: (spec.links = s.spec.links) }));
    if (s.spec.config !== full.config) await this.#push(w, id, (spec) => ({ t: "config", componentId: id, config: (spec.config = s.spec.config) }));
  }

  /** Sends a request about component `id` to `w` when it hosts it (updating its kept spec first); no-op otherwise. */
  async #push(w: WorkerHandle, id: string, req: (spec: GuestSpec) => Req): Promise<void> {
    const spec = w.specs.get(id);
    if (!spec) return;
    const r = req(spec);
    if (w.alive) await w.request(r);
  }

  /** Stops one shard of component `id` in `w` (its running calls finish). */
  async #unloadShard(w: WorkerHandle, id: string): Promise<void> {
    w.placed.delete(id);
    const had = w.specs.delete(id);
    if (had && w.alive) await w.request({ t: "unload", componentId: id });
  }

  /**
   * Brings the shards of `s` to {@link shardCount} (ADR 0023): extra shards stop first, the kept ones take their new
   * share of the instance limit, then new shards load on other workers. The total never exceeds the limit.
   * @throws the first error of a shard that failed to load (it is dropped; the others keep serving).
   */
  async #respread(s: Spread): Promise<void> {
    const id = s.spec.componentId;
    const want = s.isolated ? 1 : shardCount(s.spec.maxInstances, this.opts.componentWorkers ?? 1, this.opts.maxWorkers);
    const gone = s.shards.splice(want);
    await Promise.all(gone.map((w) => this.#unloadShard(w, id)));
    const kept = s.shards.length;
    const taken = new Set(s.shards);
    for (let i = kept; i < want; i++) {
      const w = this.#pick(taken);
      if (!w) break;
      taken.add(w);
      w.placed.add(id);
      s.shards.push(w);
    }
    const k = s.shards.length;
    const total = s.spec.maxInstances;
    await Promise.all(
      s.shards.slice(0, kept).map((w, i) => this.#push(w, id, (spec) => ({ t: "scale", componentId: id, maxInstances: (spec.maxInstances = shareOf(total, k, i)) }))),
    );
    const added = s.shards.slice(kept);
    const results = await Promise.allSettled(added.map((w, j) => this.#loadShard(w, s, shareOf(total, k, kept + j))));
    const failed = added.filter((_w, j) => results[j]!.status === "rejected");
    if (failed.length === 0) return;
    for (const w of failed) {
      w.placed.delete(id);
      s.shards.splice(s.shards.indexOf(w), 1);
    }
    throw (results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
  }

  /**
   * Loads (or replaces: a new image) a component; resolves once it serves invocations. Its instances are spread over
   * up to `componentWorkers` worker threads (ADR 0023). A replacement swaps the code in every shard; when one fails,
   * the others go back to the previous code and the error is thrown.
   * @param spec without `index` (assigned per worker); `maxInstances` is the component's whole limit.
   */
  async load(spec: Omit<GuestSpec, "index">): Promise<void> {
    if (this.#closed) throw new IllegalStateError("the component runtime is closed");
    const id = spec.componentId;
    const cur = this.#components.get(id);
    if (!cur) {
      const s: Spread = { spec: { ...spec }, shards: [], isolated: false, status: new Map(), leaving: [] };
      this.#components.set(id, s);
      try {
        await this.#respread(s);
      } catch (err) {
        this.#components.delete(id);
        await Promise.all(s.shards.splice(0).map((w) => this.#unloadShard(w, id).catch(() => undefined)));
        throw err;
      }
      return;
    }
    const old = cur.spec;
    cur.spec = { ...spec };
    const shards = [...cur.shards];
    const results = await Promise.allSettled(shards.map((w) => this.#loadShard(w, cur, w.specs.get(id)?.maxInstances ?? 1)));
    const failure = results.find((r) => r.status === "rejected");
    if (failure) {
      cur.spec = old;
      // back to the previous code where the new one loaded (best effort: a shard that fails this too keeps the new code)
      await Promise.all(shards.map((w, i) => (results[i]!.status === "fulfilled" ? this.#loadShard(w, cur, w.specs.get(id)?.maxInstances ?? 1).catch(() => undefined) : undefined)));
      throw (failure as PromiseRejectedResult).reason;
    }
    if (spec.maxInstances !== old.maxInstances) await this.#respread(cur);
  }

  /** Stops serving a component and drops its instances, in every worker it is spread over. */
  async unload(componentId: string): Promise<void> {
    const s = this.#components.get(componentId);
    if (!s) return;
    this.#components.delete(componentId);
    await Promise.all([...s.shards.splice(0), ...s.leaving.splice(0)].map((w) => this.#unloadShard(w, componentId)));
  }

  /** Changes a component's instance limit: its shards' shares, and how many workers it is spread over. */
  async scale(componentId: string, maxInstances: number): Promise<void> {
    const s = this.#components.get(componentId);
    if (!s) return;
    s.spec.maxInstances = maxInstances;
    await this.#respread(s);
  }

  /** Pushes a new routing table (live) to every worker the component is spread over. */
  async setLinks(componentId: string, links: LinkTable): Promise<void> {
    const s = this.#components.get(componentId);
    if (!s) return;
    s.spec.links = links;
    await Promise.all(s.shards.map((w) => this.#push(w, componentId, (spec) => ({ t: "links", componentId, links: (spec.links = links) }))));
  }

  /** Pushes new merged config (live) to every worker the component is spread over. */
  async setConfig(componentId: string, config: Record<string, string>): Promise<void> {
    const s = this.#components.get(componentId);
    if (!s) return;
    s.spec.config = config;
    await Promise.all(s.shards.map((w) => this.#push(w, componentId, (spec) => ({ t: "config", componentId, config: (spec.config = config) }))));
  }

  /** Worker index of a component's first shard (for tests and inventories), or undefined. */
  workerOf(componentId: string): number | undefined {
    return this.#components.get(componentId)?.shards[0]?.index;
  }

  /** Worker indexes of every shard of a component, in shard order (empty when it does not run). */
  workersOf(componentId: string): number[] {
    return this.#components.get(componentId)?.shards.map((w) => w.index) ?? [];
  }

  /**
   * What each shard of a component reports from its worker thread (ADR 0023): thread id, instance limit and count,
   * invocations served; shards still serving while the component is gathered into a worker of its own come last,
   * marked `leaving`. Shards whose worker is not running are left out.
   */
  async shards(componentId: string): Promise<ShardStats[]> {
    const s = this.#components.get(componentId);
    if (!s) return [];
    const out = await Promise.all(
      [...s.shards, ...s.leaving].map(async (w): Promise<ShardStats | undefined> => {
        if (!w.alive) return undefined;
        const st = await w.request<WorkerStats>({ t: "stats" }).catch(() => undefined);
        const c = st?.components.find((x) => x.id === componentId);
        if (!st || !c) return undefined;
        return { worker: w.index, threadId: st.threadId, maxInstances: w.specs.get(componentId)?.maxInstances ?? 0, instances: c.instances, served: c.served, threadCpuUs: st.cpuUs, ...(s.leaving.includes(w) ? { leaving: true } : {}) };
      }),
    );
    return out.filter((x): x is ShardStats => x !== undefined);
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
    const holds = this.#holdAlone(w);
    await w.worker.terminate();
    answerKilledCalls(this.opts.nc, calls, culprit, culpritId, limit);
    const reason = `component ${culpritId} exceeded its execution time of ${limit} ms`;
    this.#announceExit(w, holds, `its worker thread was restarted: ${reason}`);
    // The culprit moves to a worker of its own, so that its next overrun costs its neighbours nothing (ADR 0014); a
    // component spread over several workers is gathered there with its whole instance limit (ADR 0023).
    const s = this.#components.get(culpritId);
    if (spec && s && s.shards.includes(w) && (w.specs.size > 1 || s.shards.length > 1)) {
      w.specs.delete(culpritId);
      w.placed.delete(culpritId);
      const own = new WorkerHandle(this.#nextIndex++, this);
      own.isolated = true;
      own.specs.set(culpritId, { ...spec, maxInstances: s.spec.maxInstances, index: own.componentIndex() });
      own.placed.add(culpritId);
      this.#workers.push(own);
      const others = s.shards.filter((x) => x !== w);
      s.leaving.push(...others);
      s.shards = [own];
      s.isolated = true;
      s.status.delete(w);
      this.opts.logger.warn("component moved to a worker thread of its own after it exceeded its execution time", {
        component_id: culpritId,
        from_worker: w.index,
        to_worker: own.index,
        ...(others.length > 0 ? { also_from_workers: others.map((x) => x.index) } : {}),
      });
      const culpritHold = holds.find((h) => h.id === culpritId);
      if (culpritHold) holds.splice(holds.indexOf(culpritHold), 1);
      // its shards on other workers serve until it serves from its own, then stop
      this.#restartInBackground(own, reason, culpritHold ? [culpritHold] : [], () =>
        Promise.all(s.leaving.splice(0).map((x) => this.#unloadShard(x, culpritId).catch(() => undefined))),
      );
    }
    await this.#restart(w, reason, holds);
    done();
    w.restarting = undefined;
  }

  #restartInBackground(w: WorkerHandle, reason: string, holds: Hold[], after?: () => Promise<unknown>): void {
    let done!: () => void;
    w.restarting = new Promise((r) => (done = r));
    void this.#restart(w, reason, holds)
      .then((served) => (served && after ? after() : undefined))
      .finally(() => {
        done();
        w.restarting = undefined;
      });
  }

  /**
   * Components of `w` that have no shard serving on another worker: their calls are held while `w` restarts. The
   * others keep being served by their other shards (ADR 0023) and are not held.
   */
  #holdAlone(w: WorkerHandle): Hold[] {
    return holdCalls(this.opts.nc, this.opts.lattice, [...w.specs.keys()].filter((id) => !this.#servedElsewhere(id, w)));
  }

  /** True when component `id` has a shard on a running worker other than `w`. */
  #servedElsewhere(id: string, w: WorkerHandle): boolean {
    return this.#components.get(id)?.shards.some((x) => x !== w && x.alive && !x.restarting) ?? false;
  }

  /** Reply subjects of the calls component `id` is running on workers other than `w` (spared by an exit notice). */
  #runningElsewhere(id: string, w: WorkerHandle): string[] {
    const out: string[] = [];
    for (const x of this.#components.get(id)?.shards ?? []) {
      const index = x.specs.get(id)?.index;
      if (x === w || !x.alive || index === undefined) continue;
      for (const c of x.reader.calls()) if (c.componentIndex === index && c.replySubject) out.push(c.replySubject);
    }
    return out;
  }

  /** A worker died on its own (heap exhaustion, crash, lost NATS connection): answer its calls and restart it. */
  onWorkerDied(w: WorkerHandle, reason: string): void {
    if (!w.alive || this.#closed) return;
    w.alive = false;
    const holds = this.#holdAlone(w);
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
    this.#announceExit(w, holds, `its worker thread died (${reason})`);
    this.#restartInBackground(w, reason, holds);
  }

  /**
   * Publishes a target exit notice per component of a terminated worker `w` (ADR 0014): calls its NATS connection had
   * received but not read are lost with it, and their callers fail them at once; calls held on the host's connection
   * (`holds`) are still served after the restart, and so are the calls a component spread over several workers is
   * running in its other shards (ADR 0023): both are listed as `spared`.
   */
  #announceExit(w: WorkerHandle, holds: Pick<Hold, "id" | "held">[], reason: string): void {
    for (const id of w.specs.keys()) {
      const h = holds.find((x) => x.id === id);
      const spared = h ? h.held.flatMap((m) => (m.reply ? [m.reply] : [])) : this.#runningElsewhere(id, w);
      announceExit(this.opts.nc, this.opts.lattice, this.opts.hostId ?? "", id, spared, reason);
    }
  }

  /** A worker's NATS connection dropped or came back (its subscriptions are on the server again). */
  onWorkerConnection(w: WorkerHandle, connected: boolean): void {
    if (!w.alive) return;
    this.opts.logger[connected ? "info" : "warn"](connected ? "component worker reconnected to NATS" : "component worker lost its NATS connection; reconnecting", {
      worker: w.index,
      components: [...w.specs.keys()],
    });
    this.#status(w, w.specs.keys(), connected ? "running" : "disconnected");
  }

  /**
   * Records the availability of the shards of `ids` on worker `w` and reports each component's availability: that of
   * its best shard (a component spread over several workers serves while any of them does; ADR 0023).
   */
  #status(w: WorkerHandle, ids: Iterable<string>, status: ComponentAvailability, error?: string): void {
    for (const id of [...ids]) {
      const s = this.#components.get(id);
      let shown = status;
      if (s) {
        s.status.set(w, status);
        shown = bestAvailability([...s.shards, ...s.leaving].map((x) => s.status.get(x) ?? "running"));
      }
      try {
        this.opts.onStatus?.(id, shown, shown === status ? error : undefined);
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
  async #restart(w: WorkerHandle, reason: string, holds: Hold[]): Promise<boolean> {
    w.failPending(new TrellisError(ErrorCode.ComponentTrap, `component worker restarted: ${reason}`));
    const nc = this.opts.nc;
    this.#status(w, w.specs.keys(), "restarting");
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
          this.#status(w, ids, "failed", `its worker thread could not be restarted (${reason}): ${msg}`);
          for (const h of holds) {
            h.refuse = new TrellisError(
              ErrorCode.ComponentUnavailable,
              `component ${h.id} is unavailable: its worker thread is being restarted and could not start yet (${msg})`,
              { details: { componentId: h.id } },
            );
            for (const m of h.held.splice(0)) rejectCall(nc, m, h.refuse);
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
    if (!served) return false;
    this.opts.logger.info("component worker restarted", { worker: w.index, components: [...w.specs.keys()], attempts: attempt + 1 });
    const failed = new Set(unloaded.map((u) => u.id));
    this.#status(w, [...w.specs.keys()].filter((id) => !failed.has(id)), "running");
    for (const u of unloaded) {
      // this component alone could not be loaded again: reported failed (its calls get NO_RESPONDERS at once), retried
      this.opts.logger.error("component could not be reloaded after its worker restarted; retrying", { component_id: u.id, error: u.error });
      this.#status(w, [u.id], "failed", `it could not be reloaded after its worker thread restarted: ${u.error}`);
      void this.#reload(w, u.id);
    }
    try {
      await nc.flush();
      for (const h of holds) {
        if (failed.has(h.id)) {
          for (const m of h.held) rejectCall(nc, m, new TrellisError(ErrorCode.ComponentUnavailable, `component ${h.id} is unavailable: it could not be reloaded after its worker thread restarted`));
          continue;
        }
        for (const m of h.held) nc.publish(m.subject, m.data, { ...(m.reply ? { reply: m.reply } : {}), ...(m.headers ? { headers: m.headers } : {}) });
      }
    } catch {
      // connection closed: the callers time out
    }
    return true;
  }

  /** Retries loading one component into its (running) worker with backoff, until it loads or is gone. */
  async #reload(w: WorkerHandle, id: string): Promise<void> {
    const base = this.opts.restartBackoffMs ?? 100;
    const max = this.opts.maxRestartBackoffMs ?? 5000;
    for (let attempt = 1; ; attempt++) {
      await Promise.race([sleep(Math.min(max, base * 2 ** (attempt - 1))), this.#closing.promise]);
      const spec = w.specs.get(id);
      // closed, unloaded, moved, or the worker is restarting (which loads it again)
      if (this.#closed || !spec || !this.#components.get(id)?.shards.includes(w) || !w.alive || w.restarting) return;
      try {
        await w.request({ t: "load", spec });
        this.opts.logger.info("component reloaded", { component_id: id, attempts: attempt });
        this.#status(w, [id], "running");
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
