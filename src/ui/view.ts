/**
 * The dashboard's lattice view model (docs/dashboard.md, ADR 0027): one in-memory picture of a lattice, kept current
 * from lattice events (`wasmbus.evt.{lattice}.>`), host heartbeats and a few polled control calls, and handed to the
 * page as JSON snapshots.
 *
 * Sources, by what they feed:
 * - links: `link.get` once at start (and on NATS reconnect, and every {@link DEFAULT_LINK_RESYNC_MS} as a safety net),
 *   then `linkdef_set` / `linkdef_deleted` events applied as they arrive — a re-link moves the edge at once;
 * - hosts, components, providers, per-host metrics: `host.ping` + `host.get` every `inventoryIntervalMs`, the
 *   inventory in each `host_heartbeat`, and an immediate `host.get` of the publishing host after any event that changes
 *   what it runs (`component_scaled`, `provider_started`, `health_check_*`, `labels_changed`, …);
 * - provider health: `health_check_passed|failed|status` events, over the inventory's provider `status`;
 * - named configs: the keys of `CONFIGDATA_{lattice}`, re-read after `config_set` / `config_deleted`;
 * - apps: `listApps` (the library `trellis app list` uses) every `appsIntervalMs`.
 * @module
 */
import type { Subscription } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { listApps } from "../app/deploy.ts";
import type { CtlClient } from "../control/client.ts";
import { type CloudEvent, EventType, eventName } from "../core/events.ts";
import type { ComponentDescription, HostInventory, ProviderDescription } from "../core/host.ts";
import type { Link } from "../core/link.ts";
import type { Logger } from "../core/logger.ts";
import type { CallFigures, HostMetrics, LinkFigures } from "../core/host.ts";

export type { CallFigures, HostMetrics, LinkFigures };
import { configDataBucket, eventWildcard } from "../core/subjects.ts";

/** Default period of `host.ping` + `host.get` polling: 2 s. */
export const DEFAULT_INVENTORY_INTERVAL_MS = 2_000;
/** Default period of app status polling: 5 s. */
export const DEFAULT_APPS_INTERVAL_MS = 5_000;
/** Period of the safety re-read of every link (`link.get`); events are what keeps links live: 60 s. */
export const DEFAULT_LINK_RESYNC_MS = 60_000;
/** Lattice events kept for the page's event stream. */
export const EVENT_HISTORY = 500;

/** One host as the page sees it. */
export interface ViewHost {
  id: string;
  friendly_name: string;
  labels: Record<string, string>;
  version: string;
  uptime_seconds: number;
  uptime_human: string;
  /** When this host was last heard from (ping, inventory or heartbeat), ms since the epoch. */
  seen_at: number;
  components: ComponentDescription[];
  providers: (ProviderDescription & { health?: "healthy" | "unhealthy" })[];
  metrics?: HostMetrics;
}

/** A named config as the page sees it: values of keys that look secret are replaced by `"•••"`. */
export interface ViewConfig {
  name: string;
  values: Record<string, string>;
}

/** An app and its status (`trellis app list`). */
export interface ViewApp {
  name: string;
  version: string;
  status: string;
  message: string;
  deployed_at: string;
}

/** A lattice event as the page sees it. */
export interface ViewEvent {
  id: string;
  /** Event name (`linkdef_set`, …). */
  name: string;
  /** Publishing host id. */
  source: string;
  time: string;
  data: Record<string, unknown>;
}

/** The figures of the lattice, merged over hosts: calls, errors and rates add up; p50/p99 are the largest host's. */
export interface ViewFigures {
  /** `null` when no host reports metrics (the page shows "—"). */
  window_ms: number | null;
  components: Record<string, CallFigures>;
  /** By {@link linkKey}. */
  links: Record<string, CallFigures>;
}

/** What the page gets: the whole picture. */
export interface ViewSnapshot {
  lattice: string;
  /** Milliseconds since the epoch when this snapshot was taken. */
  at: number;
  /** False while the NATS connection is down. */
  connected: boolean;
  hosts: ViewHost[];
  links: Link[];
  configs: ViewConfig[];
  apps: ViewApp[];
  figures: ViewFigures;
}

/** Identity of a link in the view and of its edge in the graph: `source|namespace:package|name|target`. */
export function linkKey(l: { source_id: string; wit_namespace: string; wit_package: string; target: string } & ({ name: string } | { link_name: string })): string {
  const name = "name" in l ? l.name : l.link_name;
  return `${l.source_id}|${l.wit_namespace}:${l.wit_package}|${name}|${l.target}`;
}

const SECRET_KEY = /pass|secret|token|cred|private|api[_-]?key/i;

/** Replaces the values of config keys that look secret (`password`, `token`, `api_key`, …) by `"•••"`. */
export function redactConfig(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, SECRET_KEY.test(k) ? "•••" : v]));
}

/** Options of {@link LatticeView}. */
export interface LatticeViewOptions {
  client: CtlClient;
  logger: Logger;
  /** Period of host polling, in ms. @default {@link DEFAULT_INVENTORY_INTERVAL_MS} */
  inventoryIntervalMs?: number;
  /** Period of app status polling, in ms. @default {@link DEFAULT_APPS_INTERVAL_MS} */
  appsIntervalMs?: number;
}

const decoder = new TextDecoder();

/** Events after which the publishing host's inventory is re-read at once. */
const INVENTORY_EVENTS = new Set<string>([
  EventType.ComponentScaled,
  EventType.ComponentScaleFailed,
  EventType.ProviderStarted,
  EventType.ProviderStartFailed,
  EventType.ProviderStopped,
  EventType.LabelsChanged,
  EventType.HostStarted,
]);

/**
 * A live picture of one lattice. `start()` loads it and follows the lattice; `onChange` listeners are told after every
 * change (many times a second at worst: the server throttles what it sends).
 */
export class LatticeView {
  readonly #client: CtlClient;
  readonly #logger: Logger;
  readonly #inventoryMs: number;
  readonly #appsMs: number;
  readonly #hosts = new Map<string, ViewHost>();
  readonly #links = new Map<string, Link>();
  readonly #health = new Map<string, "healthy" | "unhealthy">();
  #configs: ViewConfig[] = [];
  #apps: ViewApp[] = [];
  readonly #events: ViewEvent[] = [];
  readonly #changeListeners = new Set<() => void>();
  readonly #eventListeners = new Set<(e: ViewEvent) => void>();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #pendingHosts = new Map<string, NodeJS.Timeout>();
  #configTimer: NodeJS.Timeout | undefined;
  #sub: Subscription | undefined;
  #connected = true;
  #stopped = false;
  #hostsRun: Promise<void> = Promise.resolve();

  /** Builds an empty view over `opts.client`'s lattice; nothing is read or subscribed until {@link start}. */
  constructor(opts: LatticeViewOptions) {
    this.#client = opts.client;
    this.#logger = opts.logger;
    this.#inventoryMs = opts.inventoryIntervalMs ?? DEFAULT_INVENTORY_INTERVAL_MS;
    this.#appsMs = opts.appsIntervalMs ?? DEFAULT_APPS_INTERVAL_MS;
  }

  /** Subscribes to the lattice's events, loads everything once, then polls. Resolves after the first load. */
  async start(): Promise<void> {
    const nc = this.#client.nc;
    this.#sub = nc.subscribe(eventWildcard(this.#client.lattice), {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.#onEvent(JSON.parse(decoder.decode(msg.data)) as CloudEvent);
        } catch (e) {
          this.#logger.debug("dashboard: malformed lattice event", { subject: msg.subject, error: String(e) });
        }
      },
    });
    void this.#watchStatus();
    await Promise.all([this.refreshHosts(), this.refreshLinks(), this.refreshConfigs(), this.refreshApps()]);
    this.#every(this.#inventoryMs, () => this.refreshHosts());
    this.#every(this.#appsMs, () => this.refreshApps());
    this.#every(DEFAULT_LINK_RESYNC_MS, () => this.refreshLinks());
  }

  /** Stops polling and the event subscription (the control client is not closed). */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    for (const t of this.#pendingHosts.values()) clearTimeout(t);
    if (this.#configTimer) clearTimeout(this.#configTimer);
    this.#sub?.unsubscribe();
    this.#changeListeners.clear();
    this.#eventListeners.clear();
  }

  /** Calls `fn` after every change of the picture; returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.#changeListeners.add(fn);
    return () => this.#changeListeners.delete(fn);
  }

  /** Calls `fn` with every lattice event as it arrives; returns the unsubscribe function. */
  onEvent(fn: (e: ViewEvent) => void): () => void {
    this.#eventListeners.add(fn);
    return () => this.#eventListeners.delete(fn);
  }

  /** The most recent lattice events, oldest first (at most {@link EVENT_HISTORY}). */
  recentEvents(): ViewEvent[] {
    return [...this.#events];
  }

  /** The whole picture now. */
  snapshot(): ViewSnapshot {
    const hosts = [...this.#hosts.values()]
      .map((h) => ({ ...h, providers: h.providers.map((p) => withHealth(p, this.#health.get(`${h.id}|${p.id}`))) }))
      .sort((a, b) => a.friendly_name.localeCompare(b.friendly_name) || a.id.localeCompare(b.id));
    return {
      lattice: this.#client.lattice,
      at: Date.now(),
      connected: this.#connected,
      hosts,
      links: [...this.#links.values()].sort((a, b) => linkKey(a).localeCompare(linkKey(b))),
      configs: this.#configs,
      apps: this.#apps,
      figures: mergeFigures(hosts),
    };
  }

  /** Re-reads every host (`host.ping`) and its inventory (`host.get`); one run at a time. */
  refreshHosts(): Promise<void> {
    this.#hostsRun = this.#hostsRun.then(() => this.#refreshHosts());
    return this.#hostsRun;
  }

  async #refreshHosts(): Promise<void> {
    if (this.#stopped) return;
    try {
      const infos = await this.#client.getHosts(Math.min(this.#client.timeoutMs, 1_500), 250);
      const now = Date.now();
      for (const info of infos) {
        const cur = this.#hosts.get(info.id);
        this.#hosts.set(info.id, {
          components: [],
          providers: [],
          ...cur,
          id: info.id,
          friendly_name: info.friendly_name,
          labels: info.labels,
          version: info.version,
          uptime_seconds: info.uptime_seconds,
          uptime_human: info.uptime_human,
          seen_at: now,
        });
      }
      // A host that neither answered the ping nor sent anything for three periods is gone.
      for (const [id, h] of this.#hosts) if (now - h.seen_at > 3 * this.#inventoryMs + 2_000) this.#hosts.delete(id);
      await Promise.all(infos.map((i) => this.#refreshInventory(i.id, false)));
      this.#changed();
    } catch (err) {
      this.#logger.debug("dashboard: host refresh failed", { error: String(err) });
    }
  }

  async #refreshInventory(hostId: string, notify = true): Promise<void> {
    if (this.#stopped) return;
    try {
      this.#applyInventory(await this.#client.getInventory(hostId));
      if (notify) this.#changed();
    } catch (err) {
      this.#logger.debug("dashboard: host.get failed", { host_id: hostId, error: String(err) });
    }
  }

  #applyInventory(inv: HostInventory & { metrics?: unknown }): void {
    if (this.#stopped) return;
    const metrics = parseMetrics(inv.metrics);
    this.#hosts.set(inv.host_id, {
      id: inv.host_id,
      friendly_name: inv.friendly_name,
      labels: inv.labels ?? {},
      version: inv.version,
      uptime_seconds: inv.uptime_seconds,
      uptime_human: inv.uptime_human,
      seen_at: Date.now(),
      components: [...(inv.components ?? [])].sort((a, b) => a.id.localeCompare(b.id)),
      providers: [...(inv.providers ?? [])].sort((a, b) => a.id.localeCompare(b.id)),
      ...(metrics ? { metrics } : {}),
    });
  }

  /** Re-reads every link (`link.get`). */
  async refreshLinks(): Promise<void> {
    try {
      const links = await this.#client.getLinks();
      this.#links.clear();
      for (const l of links) this.#links.set(linkKey(l), l);
      this.#changed();
    } catch (err) {
      this.#logger.debug("dashboard: link.get failed", { error: String(err) });
    }
  }

  /** Re-reads the named configs from `CONFIGDATA_{lattice}` (none when the bucket does not exist yet). */
  async refreshConfigs(): Promise<void> {
    try {
      const kv = await new Kvm(jetstream(this.#client.nc, { timeout: this.#client.timeoutMs })).open(configDataBucket(this.#client.lattice));
      const names: string[] = [];
      for await (const k of await kv.keys()) names.push(k);
      const out: ViewConfig[] = [];
      for (const name of names.sort()) {
        const e = await kv.get(name);
        if (!e || e.operation !== "PUT" || e.value.length === 0) continue;
        try {
          out.push({ name, values: redactConfig(JSON.parse(decoder.decode(e.value)) as Record<string, string>) });
        } catch {
          out.push({ name, values: {} });
        }
      }
      this.#configs = out;
      this.#changed();
    } catch (err) {
      this.#logger.debug("dashboard: config read failed", { error: String(err) });
    }
  }

  /** Re-reads the apps and their status (`listApps`). */
  async refreshApps(): Promise<void> {
    if (this.#stopped) return;
    try {
      const apps = await listApps(this.#client);
      this.#apps = apps.map((a) => ({ name: a.app, version: a.version, status: a.status, message: a.message, deployed_at: a.deployed_at }));
      this.#changed();
    } catch (err) {
      this.#logger.debug("dashboard: app list failed", { error: String(err) });
    }
  }

  /** Re-reads one host's inventory soon (debounced: events come in bursts). */
  refreshHostSoon(hostId: string, delayMs = 100): void {
    if (this.#stopped || this.#pendingHosts.has(hostId)) return;
    this.#pendingHosts.set(
      hostId,
      setTimeout(() => {
        this.#pendingHosts.delete(hostId);
        void this.#refreshInventory(hostId);
      }, delayMs),
    );
  }

  #onEvent(ev: CloudEvent): void {
    if (this.#stopped || typeof ev?.type !== "string") return;
    const name = eventName(ev);
    const data = (ev.data ?? {}) as Record<string, unknown>;
    const ve: ViewEvent = { id: String(ev.id), name, source: String(ev.source), time: String(ev.time), data: name === EventType.HostHeartbeat ? {} : data };
    this.#events.push(ve);
    if (this.#events.length > EVENT_HISTORY) this.#events.splice(0, this.#events.length - EVENT_HISTORY);
    for (const l of this.#eventListeners) l(ve);
    switch (name) {
      case EventType.LinkdefSet: {
        const l = data as unknown as Link;
        if (typeof l.source_id === "string" && typeof l.target === "string") {
          this.#links.set(linkKey(l), { ...l, name: l.name ?? "default", source_config: l.source_config ?? [], target_config: l.target_config ?? [] });
          this.#changed();
        }
        return;
      }
      case EventType.LinkdefDeleted: {
        const { source_id, wit_namespace, wit_package, name: linkName, target } = data as Partial<Link>;
        for (const [k, l] of this.#links) {
          if (l.source_id === source_id && l.wit_namespace === wit_namespace && l.wit_package === wit_package && l.name === (linkName ?? "default") && (target === undefined || l.target === target)) {
            this.#links.delete(k);
          }
        }
        this.#changed();
        return;
      }
      case EventType.ConfigSet:
      case EventType.ConfigDeleted:
        if (this.#configTimer) return;
        this.#configTimer = setTimeout(() => {
          this.#configTimer = undefined;
          void this.refreshConfigs();
        }, 100);
        return;
      case EventType.HostHeartbeat:
        this.#applyInventory({ ...(data as unknown as HostInventory), host_id: String((data as { host_id?: string }).host_id ?? ev.source) });
        this.#changed();
        return;
      case EventType.HostStopped:
        this.#hosts.delete(String(ev.source));
        this.#changed();
        return;
      case EventType.HealthCheckPassed:
      case EventType.HealthCheckFailed:
      case EventType.HealthCheckStatus: {
        const d = data as { provider_id?: string; host_id?: string };
        if (typeof d.provider_id === "string") {
          const healthy = name === EventType.HealthCheckFailed ? false : name === EventType.HealthCheckPassed ? true : (data as { healthy?: boolean }).healthy !== false;
          this.#health.set(`${d.host_id ?? ev.source}|${d.provider_id}`, healthy ? "healthy" : "unhealthy");
          this.#changed();
        }
        return;
      }
      default:
        if (INVENTORY_EVENTS.has(name)) this.refreshHostSoon(String(ev.source));
    }
  }

  async #watchStatus(): Promise<void> {
    for await (const s of this.#client.nc.status()) {
      if (this.#stopped) return;
      if (s.type === "disconnect") {
        this.#connected = false;
        this.#changed();
      } else if (s.type === "reconnect") {
        this.#connected = true;
        // Events missed while away: re-read what they would have told.
        void this.refreshLinks();
        void this.refreshHosts();
        void this.refreshConfigs();
      }
    }
  }

  #every(ms: number, fn: () => Promise<void>): void {
    let running = false;
    const t = setInterval(() => {
      if (running || this.#stopped) return;
      running = true;
      void fn().finally(() => (running = false));
    }, ms);
    t.unref();
    this.#timers.push(t);
  }

  #changed(): void {
    if (this.#stopped) return;
    for (const l of this.#changeListeners) {
      try {
        l();
      } catch (err) {
        this.#logger.error("dashboard: change listener failed", { error: String(err) });
      }
    }
  }
}

/**
 * A provider's health: the last `health_check_*` event when one was seen, else what its inventory status implies
 * (`running` is set by a passed check, `unhealthy` by a failed one); none while it starts or restarts.
 */
function withHealth(p: ProviderDescription, fromEvent: "healthy" | "unhealthy" | undefined): ProviderDescription & { health?: "healthy" | "unhealthy" } {
  if (p.status === "unhealthy" || p.status === "failed") return { ...p, health: "unhealthy" };
  const health = fromEvent ?? (p.status === undefined || p.status === "running" ? "healthy" : undefined);
  return health ? { ...p, health } : { ...p };
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

function figuresOf(v: Record<string, unknown>): CallFigures {
  return { calls: num(v.calls), errors: num(v.errors), rate_per_s: num(v.rate_per_s), p50_ms: num(v.p50_ms), p99_ms: num(v.p99_ms) };
}

/** Reads an inventory's `metrics` field; undefined when absent or malformed. */
export function parseMetrics(raw: unknown): HostMetrics | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const m = raw as { window_ms?: unknown; components?: unknown; links?: unknown };
  const components: Record<string, CallFigures> = {};
  if (typeof m.components === "object" && m.components !== null) {
    for (const [id, f] of Object.entries(m.components as Record<string, unknown>)) {
      if (typeof f === "object" && f !== null) components[id] = figuresOf(f as Record<string, unknown>);
    }
  }
  const links: LinkFigures[] = [];
  if (Array.isArray(m.links)) {
    for (const l of m.links as Record<string, unknown>[]) {
      if (typeof l?.source_id !== "string" || typeof l.target !== "string") continue;
      links.push({
        ...figuresOf(l),
        source_id: l.source_id,
        target: l.target,
        wit_namespace: String(l.wit_namespace ?? ""),
        wit_package: String(l.wit_package ?? ""),
        interfaces: Array.isArray(l.interfaces) ? l.interfaces.map(String) : [],
        link_name: String(l.link_name ?? "default"),
      });
    }
  }
  return { window_ms: num(m.window_ms) || 60_000, components, links };
}

function add(into: Record<string, CallFigures>, key: string, f: CallFigures): void {
  const cur = into[key];
  into[key] = cur
    ? { calls: cur.calls + f.calls, errors: cur.errors + f.errors, rate_per_s: cur.rate_per_s + f.rate_per_s, p50_ms: Math.max(cur.p50_ms, f.p50_ms), p99_ms: Math.max(cur.p99_ms, f.p99_ms) }
    : { ...f };
}

/** Merges the hosts' metrics: calls, errors and rates add up; p50/p99 are the largest over hosts (an upper bound). */
export function mergeFigures(hosts: readonly ViewHost[]): ViewFigures {
  const out: ViewFigures = { window_ms: null, components: {}, links: {} };
  for (const h of hosts) {
    if (!h.metrics) continue;
    out.window_ms = h.metrics.window_ms;
    for (const [id, f] of Object.entries(h.metrics.components)) add(out.components, id, f);
    for (const l of h.metrics.links) add(out.links, linkKey(l), l);
  }
  return out;
}
