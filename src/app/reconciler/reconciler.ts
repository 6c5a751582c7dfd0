/**
 * The resident reconciler (ADR 0012): runs inside every host (unless opted out), one active per lattice — the holder
 * of the lease ({@link Lease}). The active one keeps every stored app applied: it re-runs the pure planner of
 * src/app (through {@link applyApp} / {@link applyUndeploy}) for an app whenever its record changes, a host joins,
 * stops or is lost ({@link HostTracker}), labels change, or one of its workloads fails, and every `resyncIntervalMs`
 * anyway. It only observes and sends: control requests through a {@link CtlClient} on the host's connection, and the
 * app records in `TRELLIS_APPS_{lattice}`.
 *
 * A reconcile that leaves failed requests (or a `component_scale_failed` / `provider_start_failed` event for one of
 * the app's ids) backs that app off — 1 s, doubling, at most `maxBackoffMs` — until the app is deployed or its
 * manifest changes.
 * @module
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { CtlClient, DEFAULT_CTL_TIMEOUT_MS } from "../../control/client.ts";
import { ErrorCode, TrellisError } from "../../core/errors.ts";
import { type CloudEvent, EventType } from "../../core/events.ts";
import { type Logger, silentLogger } from "../../core/logger.ts";
import { eventSubject } from "../../core/subjects.ts";
import { desiredState } from "../desired.ts";
import { applyApp, applyUndeploy } from "../deploy.ts";
import { parseManifest } from "../manifest.ts";
import { AppStore } from "../store.ts";
import { DEFAULT_LEASE_TTL_MS, Lease, type LeaseRecord } from "./lease.ts";
import { DEFAULT_MISSED_BEATS, HostTracker, type LostHost } from "./liveness.ts";

/** Default period of a full reconcile of every app even when nothing was heard: 10 s. */
export const DEFAULT_RESYNC_INTERVAL_MS = 10_000;
/** Default longest back-off of an app whose requests keep failing: 30 s. */
export const DEFAULT_MAX_BACKOFF_MS = 30_000;

/** Options of {@link Reconciler.start}. */
export interface ReconcilerOptions {
  /** The host's connection (not closed by the reconciler). */
  nc: NatsConnection;
  lattice: string;
  /** The host id: lease holder id and `detected_by` of loss events. */
  hostId: string;
  logger?: Logger;
  /** Lease time-to-live, in milliseconds. @default 3000 */
  leaseTtlMs?: number;
  /** Liveness beats a host may miss before it is lost whatever the probe says. @default 3 */
  missedBeats?: number;
  /** Quiet time after a trigger before reconciling, in milliseconds. @default 50 */
  debounceMs?: number;
  /** Full reconcile period, in milliseconds. @default 10000 */
  resyncIntervalMs?: number;
  /** Timeout of each control request, in milliseconds. @default 2000 */
  ctlTimeoutMs?: number;
  /** Longest back-off of a failing app, in milliseconds. @default 30000 */
  maxBackoffMs?: number;
}

interface Backoff {
  version: string;
  streak: number;
  notBefore: number;
}

/** What runs while this reconciler holds the lease. */
interface Active {
  client: CtlClient;
  store: AppStore;
  tracker: HostTracker;
  subs: Subscription[];
  stopWatch: () => void;
  resync: NodeJS.Timeout;
}

/** A host's reconciler; see the module comment. Build it with {@link Reconciler.start}. */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #log: Logger;
  #lease!: Lease;
  #active: Active | undefined;
  #activating: Promise<void> | undefined;
  #stopped = false;
  /** Apps to reconcile at the next run; `all` lists the store first. */
  #dirty = new Set<string>();
  #all = false;
  #debounce: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;
  #again = false;
  readonly #later = new Set<NodeJS.Timeout>();
  readonly #backoff = new Map<string, Backoff>();
  /** Component / provider id → app name and version, from the last reconcile of each app. */
  readonly #owner = new Map<string, { app: string; version: string }>();

  private constructor(o: ReconcilerOptions, log: Logger) {
    this.#o = o;
    this.#log = log;
  }

  /**
   * Opens the lease bucket and starts contending; the reconciler works whenever it holds the lease.
   * @throws TrellisError `LATTICE_ERROR` when JetStream is unavailable; InvalidArgumentError for bad options.
   */
  static async start(o: ReconcilerOptions): Promise<Reconciler> {
    const log = (o.logger ?? silentLogger).child({ component: "reconciler" });
    const self = new Reconciler(o, log);
    self.#lease = await Lease.open(o.nc, o.lattice, {
      holderId: o.hostId,
      ttlMs: o.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
      logger: o.logger,
      onAcquired: () => self.#acquired(),
      onLost: () => void self.#deactivate(),
    });
    await self.#lease.start();
    return self;
  }

  /** True while this reconciler holds the lease and works. */
  get active(): boolean {
    return this.#active !== undefined && this.#lease.held;
  }

  /** The lease as this reconciler last saw it. */
  get lease(): LeaseRecord | undefined {
    return this.#lease.current;
  }

  #acquired(): void {
    if (this.#stopped || this.#active) return;
    this.#activating = this.#activate().catch(async (err: unknown) => {
      this.#log.error("reconciler cannot start; retrying in 1 s", { error: (err as Error).message });
      await this.#teardown();
      const t = setTimeout(() => {
        this.#later.delete(t);
        if (this.#lease.held && !this.#stopped) this.#acquired();
      }, 1000);
      this.#later.add(t);
    });
  }

  async #activate(): Promise<void> {
    const { nc, lattice } = this.#o;
    const client = await CtlClient.connect({ nc, lattice, timeoutMs: this.#o.ctlTimeoutMs ?? DEFAULT_CTL_TIMEOUT_MS });
    const store = await AppStore.open(nc, lattice);
    const subs: Subscription[] = [];
    const tracker = new HostTracker({
      nc,
      lattice,
      selfId: this.#o.hostId,
      client,
      logger: this.#log,
      missedBeats: this.#o.missedBeats ?? DEFAULT_MISSED_BEATS,
      onLost: (h: LostHost) => {
        this.#log.info("re-placing the workloads of a lost host", { host_id: h.hostId, detection: h.detection });
        this.#latticeChanged();
      },
      onJoined: () => this.#latticeChanged(),
    });
    // Registered before anything can fail, so that a failed activation is torn down completely.
    this.#active = { client, store, tracker, subs, stopWatch: () => undefined, resync: setInterval(() => this.#schedule(), this.#o.resyncIntervalMs ?? DEFAULT_RESYNC_INTERVAL_MS) };
    await tracker.start();
    for (const name of [EventType.HostStopped, EventType.LabelsChanged]) {
      subs.push(nc.subscribe(eventSubject(lattice, name), { callback: () => this.#latticeChanged() }));
    }
    // A provider that stopped (its supervisor gave up, or someone stopped it) is re-planned, within its app's back-off.
    subs.push(nc.subscribe(eventSubject(lattice, EventType.ProviderStopped), { callback: () => this.#schedule() }));
    for (const name of [EventType.ComponentScaleFailed, EventType.ProviderStartFailed]) {
      subs.push(
        nc.subscribe(eventSubject(lattice, name), {
          callback: (_e, m) => {
            try {
              this.#onFailure(m.json<CloudEvent>());
            } catch {
              // not a CloudEvent
            }
          },
        }),
      );
    }
    this.#active.stopWatch = await store.watch((name) => this.#schedule(name));
    if (!this.#lease.held || this.#stopped) {
      await this.#teardown();
      return;
    }
    this.#log.info("reconciler active", { lattice });
    this.#schedule();
  }

  async #deactivate(): Promise<void> {
    await this.#activating;
    await this.#teardown();
  }

  async #teardown(): Promise<void> {
    const a = this.#active;
    if (!a) return;
    this.#active = undefined;
    clearInterval(a.resync);
    a.stopWatch();
    for (const s of a.subs) s.unsubscribe();
    a.tracker.stop();
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#debounce = undefined;
    for (const t of this.#later) clearTimeout(t);
    this.#later.clear();
    await this.#busy;
    this.#log.info("reconciler inactive");
  }

  #onFailure(ev: CloudEvent): void {
    const id = String(ev.data.component_id ?? ev.data.provider_id ?? "");
    const owner = this.#owner.get(id);
    if (!owner) return;
    this.#bump(owner.app, owner.version);
    this.#schedule(owner.app);
  }

  /**
   * Hosts or labels changed: every app is re-planned now, even one in back-off (a failing app must not delay the
   * re-placement of its instances on a lost host; its streak is kept).
   */
  #latticeChanged(): void {
    for (const b of this.#backoff.values()) b.notBefore = 0;
    this.#schedule();
  }

  #bump(app: string, version: string): void {
    const b = this.#backoff.get(app);
    const streak = b && b.version === version ? b.streak + 1 : 1;
    const delay = Math.min(this.#o.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS, 1000 * 2 ** (streak - 1));
    this.#backoff.set(app, { version, streak, notBefore: Date.now() + delay });
  }

  /** Marks one app (or every app) for the next run, which starts after the debounce. */
  #schedule(app?: string): void {
    if (!this.#active) return;
    if (app === undefined) this.#all = true;
    else this.#dirty.add(app);
    if (this.#busy) {
      this.#again = true;
      return;
    }
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#busy = this.#run().finally(() => (this.#busy = undefined));
    }, this.#o.debounceMs ?? 50);
  }

  async #run(): Promise<void> {
    do {
      this.#again = false;
      const a = this.#active;
      if (!a || !this.#lease.held) return;
      let names = [...this.#dirty];
      this.#dirty.clear();
      if (this.#all) {
        this.#all = false;
        try {
          names = [...new Set([...names, ...(await a.store.list()).map((r) => r.name)])];
        } catch (err) {
          this.#log.warn("cannot list apps", { error: (err as Error).message });
        }
      }
      for (const name of names.sort()) {
        if (!this.#lease.held || this.#active !== a) return;
        await this.#reconcile(a, name);
      }
    } while (this.#again);
  }

  async #reconcile(a: Active, name: string): Promise<void> {
    let version: string | undefined;
    try {
      const got = await a.store.get(name);
      if (!got) {
        this.#backoff.delete(name);
        return;
      }
      version = got.record.version;
      const b = this.#backoff.get(name);
      if (b && b.version === version && Date.now() < b.notBefore) {
        this.#retryLater(name, b.notBefore - Date.now());
        return;
      }
      const logger = this.#log;
      // The tracker's hosts are asked directly, so the ping collection can end sooner than a client's (300 ms).
      const observe = { knownHosts: () => a.tracker.alive(), hostStallMs: 100 };
      if (got.record.state === "undeploying") {
        const r = await applyUndeploy(a.client, name, { logger, observe, ifRevision: got.revision });
        if (r.failures.length > 0) this.#failed(name, version);
        else this.#backoff.delete(name);
        return;
      }
      const { manifest } = parseManifest(got.record.manifest);
      const desired = desiredState(manifest);
      for (const w of [...desired.components, ...desired.providers]) this.#owner.set(w.id, { app: name, version });
      const r = await applyApp(a.client, manifest, { logger, observe, ifRevision: got.revision });
      if (r.failures.length > 0) this.#failed(name, version);
      else if (r.status.status === "deployed") this.#backoff.delete(name);
      if (r.actions.length > 0) this.#log.info("app reconciled", { app: name, actions: r.actions.length, failures: r.failures.length });
    } catch (err) {
      const e = TrellisError.from(err);
      if (e.code === ErrorCode.AlreadyExists) {
        this.#retryLater(name, 100); // the record changed under us: re-read it
        return;
      }
      if (e.code === ErrorCode.NoResponders) return; // no host answers: nothing to place on
      this.#log.warn("reconcile failed", { app: name, code: e.code, error: e.message });
      if (version !== undefined) this.#failed(name, version);
    }
  }

  #failed(name: string, version: string): void {
    this.#bump(name, version);
    const b = this.#backoff.get(name);
    if (b) this.#retryLater(name, b.notBefore - Date.now());
  }

  #retryLater(name: string, ms: number): void {
    const t = setTimeout(() => {
      this.#later.delete(t);
      this.#schedule(name);
    }, Math.max(0, ms));
    this.#later.add(t);
  }

  /** Stops working and releases the lease (another host's reconciler takes over at its next check). Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#deactivate();
    await this.#lease.stop();
    await this.#deactivate();
  }
}
