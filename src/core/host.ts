/**
 * Wire types about hosts and what they run (reference §1.4 `host.ping`, `host.get`, §3.2 component specification).
 * @module
 */
import type { Link } from "./link.ts";

/** Reply of `host.ping` (reference §1.4). */
export interface HostInfo {
  id: string;
  friendly_name: string;
  labels: Record<string, string>;
  lattice: string;
  uptime_seconds: number;
  uptime_human: string;
  version: string;
  ctl_host: string;
  rpc_host: string;
  js_domain?: string;
}

/** One running component in an inventory (reference §1.4 `ComponentDescription`). */
export interface ComponentDescription {
  id: string;
  image_ref: string;
  name?: string;
  annotations?: Record<string, string>;
  revision: number;
  max_instances: number;
  limits?: Record<string, string> | null;
  /**
   * Trellis extension: `running`, `restarting` (its worker thread is being restarted), `disconnected` (its worker's
   * NATS connection is down and reconnecting) or `failed` (a restart failed and is retried with backoff; `error` says
   * why). ADR 0014.
   */
  status?: string;
  /** Trellis extension: why the component is `failed`. */
  error?: string;
  /** Trellis extension: the claims issuer (`A…`) when the component is signed. */
  issuer?: string;
  /** Trellis extension: the claims subject (`M…`) when the component is signed. */
  subject?: string;
}

/** One running capability provider in an inventory (reference §1.4 `ProviderDescription`). */
export interface ProviderDescription {
  id: string;
  image_ref?: string;
  name?: string;
  revision: number;
  annotations?: Record<string, string>;
  /** Trellis extension: `running`, `starting`, `restarting`, `unhealthy` or `failed`. */
  status?: string;
  /** Trellis extension: the claims issuer (`A…`) when the provider is signed. */
  issuer?: string;
  /** Trellis extension: the claims subject (`V…`) when the provider is signed. */
  subject?: string;
}

/** Reply of `host.get.{host}` and data of `host_heartbeat` (reference §1.4). */
export interface HostInventory {
  components: ComponentDescription[];
  providers: ProviderDescription[];
  host_id: string;
  friendly_name: string;
  labels: Record<string, string>;
  version: string;
  uptime_human: string;
  uptime_seconds: number;
  /**
   * Trellis extension: call metrics of the last minute on this host, per component served and per link used
   * (docs/control-interface.md "Metrics", ADR 0026).
   */
  metrics?: HostMetrics;
}

/** Figures of calls over the metrics window (docs/control-interface.md "Metrics", ADR 0026). */
export interface CallFigures {
  calls: number;
  errors: number;
  /** Calls per second over the window (`calls / 60`). */
  rate_per_s: number;
  /** Latency quantiles, milliseconds (±2.5 %); 0 without calls. */
  p50_ms: number;
  p99_ms: number;
}

/** One link's figures: import calls made over it from this host. */
export interface LinkFigures extends CallFigures {
  source_id: string;
  target: string;
  wit_namespace: string;
  wit_package: string;
  /** Interfaces of the link that were called, sorted. */
  interfaces: string[];
  link_name: string;
}

/** The `metrics` field of {@link HostInventory} (a Trellis extension; absent on hosts that do not record them). */
export interface HostMetrics {
  /** Window length, milliseconds (60000). */
  window_ms: number;
  /** Calls served by each component on this host, by component id. */
  components: Record<string, CallFigures>;
  /** Import calls made over each link from this host. */
  links: LinkFigures[];
}

/**
 * `COMPONENT_{id}` in `LATTICEDATA_{lattice}`: the component's url and its outbound links
 * (reference §3.2, seed component_spec.rs.txt). `url` is `""` when a link put created the spec first.
 */
export interface ComponentSpecification {
  url: string;
  links: Link[];
}

/** Formats seconds as wasmCloud does for `uptime_human`, e.g. `1h 2m 3s`. */
export function humanUptime(seconds: number): string {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts: string[] = [];
  if (d) parts.push(`${d}d`);
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  parts.push(`${s % 60}s`);
  return parts.join(" ");
}
