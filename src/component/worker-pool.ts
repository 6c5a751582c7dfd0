/**
 * Main-thread side of component isolation (issue 3 §3, docs/adr/0002, docs/adr/0014): a pool of worker threads, each
 * hosting several components, with a busy component's instances spread over several workers (ADR 0023; placement in
 * ./worker-shards.ts); the component-level operations (load, replace, scale, live links and config, stats); the
 * watchdog that terminates a worker whose event loop is stuck in guest code past a call's deadline, answers that
 * worker's in-flight calls with clear errors, moves the culprit to a worker of its own, and has the worker restarted
 * with its components (./worker-restart.ts: held calls are served after it; a failed restart is retried with
 * backoff); target exit notices for the calls lost with a terminated or dead worker. Its options and the availability
 * it reports are in ./worker-pool-options.ts (re-exported here).
 * @module
 */
import { ErrorCode, IllegalStateError, TrellisError } from "../core/errors.ts";
import { errorReply } from "../../packages/wire/src/invocation/server.ts";
import type { GuestSpec } from "./guest.ts";
import type { LinkTable } from "./routing.ts";
import type { WatchedCall } from "./watchdog.ts";
import { announceExit, answerKilledCalls, type Hold, holdCalls } from "./worker-calls.ts";
import { WorkerHandle, type WorkerHost } from "./worker-handle.ts";
import type { WorkerStats } from "./worker-main.ts";
import { bestAvailability, type ShardStats, type Spread } from "./spread.ts";
import type { ComponentAvailability, WorkerPoolOptions } from "./worker-pool-options.ts";
import { loadShard, pickWorker, pushToShard, respread, unloadShard } from "./worker-shards.ts";
import { type RestartHost, restartWorker } from "./worker-restart.ts";

export type { ComponentAvailability, WorkerPoolOptions } from "./worker-pool-options.ts";

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
  /** The pool as worker restarts see it (./worker-restart.ts). */
  readonly #restartHost: RestartHost;

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts;
    this.#restartHost = {
      opts,
      isClosed: () => this.#closed,
      reconnected: () => this.#reconnected.promise,
      closing: this.#closing.promise,
      hostsShard: (w, id) => this.#components.get(id)?.shards.includes(w) ?? false,
      status: (w, ids, status, error) => this.#status(w, ids, status, error),
    };
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
   * Brings the shards of `s` to its shard count (./worker-shards.ts `respread`), new shards going to the workers
   * {@link pickWorker} chooses (spawning up to `maxWorkers`).
   * @throws the first error of a shard that failed to load (it is dropped; the others keep serving).
   */
  #respread(s: Spread): Promise<void> {
    return respread(s, this.opts, (taken) => pickWorker(this.#workers, this.opts.maxWorkers, () => this.#spawn(), taken));
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
        await Promise.all(s.shards.splice(0).map((w) => unloadShard(w, id).catch(() => undefined)));
        throw err;
      }
      return;
    }
    const old = cur.spec;
    cur.spec = { ...spec };
    const shards = [...cur.shards];
    const results = await Promise.allSettled(shards.map((w) => loadShard(w, cur, w.specs.get(id)?.maxInstances ?? 1)));
    const failure = results.find((r) => r.status === "rejected");
    if (failure) {
      cur.spec = old;
      // back to the previous code where the new one loaded (best effort: a shard that fails this too keeps the new code)
      await Promise.all(shards.map((w, i) => (results[i]!.status === "fulfilled" ? loadShard(w, cur, w.specs.get(id)?.maxInstances ?? 1).catch(() => undefined) : undefined)));
      throw (failure as PromiseRejectedResult).reason;
    }
    if (spec.maxInstances !== old.maxInstances) await this.#respread(cur);
  }

  /** Stops serving a component and drops its instances, in every worker it is spread over. */
  async unload(componentId: string): Promise<void> {
    const s = this.#components.get(componentId);
    if (!s) return;
    this.#components.delete(componentId);
    await Promise.all([...s.shards.splice(0), ...s.leaving.splice(0)].map((w) => unloadShard(w, componentId)));
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
    await Promise.all(s.shards.map((w) => pushToShard(w, componentId, (spec) => ({ t: "links", componentId, links: (spec.links = links) }))));
  }

  /** Pushes new merged config (live) to every worker the component is spread over. */
  async setConfig(componentId: string, config: Record<string, string>): Promise<void> {
    const s = this.#components.get(componentId);
    if (!s) return;
    s.spec.config = config;
    await Promise.all(s.shards.map((w) => pushToShard(w, componentId, (spec) => ({ t: "config", componentId, config: (spec.config = config) }))));
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
        Promise.all(s.leaving.splice(0).map((x) => unloadShard(x, culpritId).catch(() => undefined))),
      );
    }
    await restartWorker(this.#restartHost, w, reason, holds);
    done();
    w.restarting = undefined;
  }

  #restartInBackground(w: WorkerHandle, reason: string, holds: Hold[], after?: () => Promise<unknown>): void {
    let done!: () => void;
    w.restarting = new Promise((r) => (done = r));
    void restartWorker(this.#restartHost, w, reason, holds)
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

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
