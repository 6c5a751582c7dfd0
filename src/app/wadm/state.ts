/**
 * `wadm_state` kept current by the hosts themselves: each host writes its own part of wadm's three lattice state
 * entries (wasmCloud/wadm@589e98b3 `crates/wadm/src/storage/state.rs`, keys from `storage/nats_kv.rs`), which
 * washboard (`@wasmcloud/lattice-client-core` `controllers/hosts.ts`, `providers.ts`) reads instead of pinging hosts:
 *
 * - `host_{lattice}`: host id → {@link WadmHost};
 * - `component_{lattice}`: component id → {@link WadmComponent} (instances per host);
 * - `provider_{lattice}`: provider id → {@link WadmProvider} (status per host).
 *
 * A host rewrites its part after each event it publishes (its own heartbeat included, so `last_seen` is at most one
 * heartbeat old), removes it when it stops, and drops hosts that stopped (their `host_stopped` event) or were not
 * seen for `expiryMs`, with their instances. Every write is a revision-checked read-modify-write, retried on
 * conflict, so hosts writing at once do not lose each other's parts. ADR 0013.
 * @module
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { type KV, Kvm } from "@nats-io/kv";
import type { CloudEvent } from "../../core/events.ts";
import { EventType } from "../../core/events.ts";
import type { HostInventory } from "../../core/host.ts";
import { type Logger, silentLogger } from "../../core/logger.ts";
import { WADM_STATE_BUCKET, eventWildcard, wadmStateKey } from "../../core/subjects.ts";
import { isRevisionConflict, liveValue, openBucket } from "../../lattice/kv.ts";
import type { WadmComponent, WadmHost, WadmProvider, WadmProviderStatus } from "./types.ts";

/** wadm's default host expiry: 70 s (2 × the 30 s heartbeat, plus padding). */
export const DEFAULT_WADM_HOST_EXPIRY_MS = 70_000;

/** Options of {@link WadmStateWriter}. */
export interface WadmStateWriterOptions {
  nc: NatsConnection;
  lattice: string;
  /** The writing host's id. */
  hostId: string;
  /** The host's current inventory (its `host.get` reply). */
  inventory: () => HostInventory;
  /** Hosts whose `last_seen` is older than this are removed, in milliseconds. @default 70000 */
  expiryMs?: number;
  /** Quiet time after an event before writing, in milliseconds. @default 50 */
  debounceMs?: number;
  /** Structured logger. @default silent */
  logger?: Logger;
  /** Clock, for tests. @default () => new Date() */
  now?: () => Date;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SEMVER = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const MAX_ATTEMPTS = 20;

/** wadm's `ProviderStatus` of a Trellis provider status (`running`, `starting`, `restarting`, `unhealthy`, `failed`). */
export function wadmProviderStatus(status: string | undefined): WadmProviderStatus {
  if (status === undefined || status === "running") return "Running";
  if (status === "starting" || status === "restarting") return "Pending";
  return "Failed";
}

/** The `host_{lattice}` value of one host. */
export function wadmHostEntry(inv: HostInventory, now: Date): WadmHost {
  return {
    components: Object.fromEntries(inv.components.map((c) => [c.id, c.max_instances])),
    friendly_name: inv.friendly_name,
    labels: { ...inv.labels },
    providers: inv.providers.map((p) => ({ provider_id: p.id, provider_ref: p.image_ref ?? "", annotations: { ...(p.annotations ?? {}) } })),
    uptime_seconds: inv.uptime_seconds,
    version: SEMVER.test(inv.version) ? inv.version : null,
    id: inv.host_id,
    last_seen: now.toISOString(),
  };
}

/**
 * The hosts map with `hostId` set to `entry` (or removed when undefined) and `drop` removed; returns the ids that
 * are gone (dropped, or not seen within `expiryMs`).
 */
export function updateHosts(
  hosts: Record<string, WadmHost>,
  hostId: string,
  entry: WadmHost | undefined,
  drop: ReadonlySet<string>,
  now: Date,
  expiryMs: number,
): { hosts: Record<string, WadmHost>; gone: Set<string> } {
  const out: Record<string, WadmHost> = {};
  const gone = new Set<string>(drop);
  for (const [id, h] of Object.entries(hosts)) {
    if (id === hostId) continue;
    const seen = Date.parse(h.last_seen);
    if (drop.has(id) || !Number.isFinite(seen) || now.getTime() - seen > expiryMs) gone.add(id);
    else out[id] = h;
  }
  if (entry) out[hostId] = entry;
  else gone.add(hostId);
  return { hosts: out, gone };
}

/** The components map with `hostId`'s instances replaced by `inv`'s (none when undefined) and `gone` hosts removed. */
export function updateComponents(
  comps: Record<string, WadmComponent>,
  hostId: string,
  inv: HostInventory | undefined,
  gone: ReadonlySet<string>,
): Record<string, WadmComponent> {
  const out: Record<string, WadmComponent> = {};
  for (const [id, c] of Object.entries(comps)) {
    const instances = Object.fromEntries(Object.entries(c.instances).filter(([h]) => h !== hostId && !gone.has(h)));
    out[id] = { ...c, instances };
  }
  for (const c of inv?.components ?? []) {
    const prev = out[c.id];
    out[c.id] = {
      id: c.id,
      name: c.name ?? prev?.name ?? "",
      issuer: prev?.issuer ?? "",
      reference: c.image_ref,
      instances: { ...(prev?.instances ?? {}), [hostId]: [{ annotations: { ...(c.annotations ?? {}) }, count: c.max_instances }] },
    };
  }
  for (const [id, c] of Object.entries(out)) if (Object.keys(c.instances).length === 0) delete out[id];
  return out;
}

/** The providers map with `hostId`'s part replaced by `inv`'s (none when undefined) and `gone` hosts removed. */
export function updateProviders(
  provs: Record<string, WadmProvider>,
  hostId: string,
  inv: HostInventory | undefined,
  gone: ReadonlySet<string>,
): Record<string, WadmProvider> {
  const out: Record<string, WadmProvider> = {};
  for (const [id, p] of Object.entries(provs)) {
    const hosts = Object.fromEntries(Object.entries(p.hosts).filter(([h]) => h !== hostId && !gone.has(h)));
    out[id] = { ...p, hosts };
  }
  for (const p of inv?.providers ?? []) {
    const prev = out[p.id];
    out[p.id] = {
      id: p.id,
      name: p.name ?? prev?.name ?? "",
      issuer: prev?.issuer ?? "",
      reference: p.image_ref ?? prev?.reference ?? "",
      hosts: { ...(prev?.hosts ?? {}), [hostId]: wadmProviderStatus(p.status) },
    };
  }
  for (const [id, p] of Object.entries(out)) if (Object.keys(p.hosts).length === 0) delete out[id];
  return out;
}

/** Opens `wadm_state`, creating it when missing; binds to it as is when wadm created it with another config. */
export async function openWadmState(nc: NatsConnection): Promise<KV> {
  try {
    return await openBucket(nc, WADM_STATE_BUCKET);
  } catch (err) {
    try {
      return await new Kvm(nc).open(WADM_STATE_BUCKET);
    } catch {
      throw err;
    }
  }
}

/** Keeps one host's part of `wadm_state` current. */
export class WadmStateWriter {
  readonly #o: Required<Omit<WadmStateWriterOptions, "logger" | "now">>;
  readonly #logger: Logger;
  readonly #now: () => Date;
  #kv: KV | undefined;
  #sub: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #dirty = false;
  #stopped = false;
  readonly #drop = new Set<string>();

  constructor(opts: WadmStateWriterOptions) {
    this.#o = {
      nc: opts.nc,
      lattice: opts.lattice,
      hostId: opts.hostId,
      inventory: opts.inventory,
      expiryMs: opts.expiryMs ?? DEFAULT_WADM_HOST_EXPIRY_MS,
      debounceMs: opts.debounceMs ?? 50,
    };
    this.#logger = (opts.logger ?? silentLogger).child({ component: "wadm-state" });
    this.#now = opts.now ?? (() => new Date());
  }

  /**
   * Opens the bucket, writes this host's part, and from then on rewrites it after each event the host publishes.
   * @throws TrellisError `LATTICE_ERROR` when JetStream is unavailable.
   */
  async start(): Promise<void> {
    this.#kv = await openWadmState(this.#o.nc);
    this.#sub = this.#o.nc.subscribe(eventWildcard(this.#o.lattice), {
      callback: (_err, msg) => {
        let ev: CloudEvent;
        try {
          ev = msg.json<CloudEvent>();
        } catch {
          return;
        }
        if (ev.source === this.#o.hostId) this.#schedule();
        else if (msg.subject.endsWith(`.${EventType.HostStopped}`) && typeof ev.source === "string") {
          this.#drop.add(ev.source);
          this.#schedule();
        }
      },
    });
    await this.#o.nc.flush();
    await this.write();
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.write();
    }, this.#o.debounceMs);
  }

  /** Writes this host's part now (after a write under way). Errors are logged, not thrown. */
  write(): Promise<void> {
    this.#dirty = true;
    this.#writing = this.#writing.then(async () => {
      if (!this.#dirty || this.#stopped) return;
      this.#dirty = false;
      await this.#apply(this.#o.inventory());
    });
    return this.#writing;
  }

  async #apply(inv: HostInventory | undefined): Promise<void> {
    const kv = this.#kv;
    if (!kv) return;
    const { hostId, lattice, expiryMs } = this.#o;
    const drop = new Set(this.#drop);
    try {
      let gone = new Set<string>();
      await this.#update<Record<string, WadmHost>>(kv, wadmStateKey("host", lattice), (hosts) => {
        const now = this.#now();
        const r = updateHosts(hosts, hostId, inv ? wadmHostEntry(inv, now) : undefined, drop, now, expiryMs);
        gone = r.gone;
        return r.hosts;
      });
      gone.delete(inv ? hostId : "");
      await this.#update<Record<string, WadmComponent>>(kv, wadmStateKey("component", lattice), (c) => updateComponents(c, hostId, inv, gone));
      await this.#update<Record<string, WadmProvider>>(kv, wadmStateKey("provider", lattice), (p) => updateProviders(p, hostId, inv, gone));
      for (const id of drop) this.#drop.delete(id);
    } catch (err) {
      this.#logger.warn("wadm_state not written", { error: String(err) });
    }
  }

  /** Revision-checked read-modify-write of one key; retried on conflict. Skips the write when nothing changed. */
  async #update<T>(kv: KV, key: string, fn: (v: T) => T): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const entry = await kv.get(key);
      const bytes = liveValue(entry);
      let cur = {} as T;
      if (bytes) {
        try {
          cur = JSON.parse(decoder.decode(bytes)) as T;
        } catch {
          // a malformed value is replaced
        }
      }
      const next = fn(cur);
      const text = JSON.stringify(next);
      if (bytes && decoder.decode(bytes) === text) return;
      try {
        await kv.put(key, encoder.encode(text), { previousSeq: entry?.revision ?? 0 });
        return;
      } catch (err) {
        if (!isRevisionConflict(err) || attempt >= MAX_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
      }
    }
  }

  /**
   * Stops listening and removes this host's part (its entry, its instances) from `wadm_state`, waiting at most
   * `timeoutMs` (when NATS is unreachable the part stays until another host expires it).
   * @param timeoutMs longest wait, in milliseconds. @default 2000
   */
  async stop(timeoutMs = 2_000): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    if (this.#stopped) return;
    this.#stopped = true;
    const remove = this.#writing.then(() => this.#apply(undefined));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([remove, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}
