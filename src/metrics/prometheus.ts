/**
 * The Prometheus endpoint of a host's call metrics (`--metrics-listen ADDR`, ADR 0026): `GET /metrics` in the text
 * exposition format, built with prom-client from the host's {@link MetricsWindow} at each scrape.
 * @module
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Registry } from "prom-client";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { MetricsWindow } from "./window.ts";

/** A running metrics endpoint. */
export interface MetricsServer {
  /** `http://host:port/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

const COMPONENT_LABELS = ["host_id", "component_id"] as const;
const LINK_LABELS = ["host_id", "source_id", "target", "wit_namespace", "wit_package", "link_name"] as const;

/** The registry of one host's metrics, filled from `window` at each collection. */
export function metricsRegistry(window: MetricsWindow, hostId: string): Registry {
  const registry = new Registry();
  const g = (name: string, help: string, labels: readonly string[]) => new Gauge({ name, help, labelNames: labels, registers: [registry] });
  const c = (name: string, help: string, labels: readonly string[]) => new Counter({ name, help, labelNames: labels, registers: [registry] });
  const comp = {
    total: c("trellis_component_calls_total", "Calls served by the component on this host since it started", COMPONENT_LABELS),
    errors: c("trellis_component_errors_total", "Failed calls served by the component on this host since it started", COMPONENT_LABELS),
    rate: g("trellis_component_calls_per_second", "Calls per second served by the component over the last minute", COMPONENT_LABELS),
    p50: g("trellis_component_latency_p50_milliseconds", "Median latency of the component's calls over the last minute", COMPONENT_LABELS),
    p99: g("trellis_component_latency_p99_milliseconds", "99th percentile latency of the component's calls over the last minute", COMPONENT_LABELS),
  };
  const link = {
    total: c("trellis_link_calls_total", "Import calls made over the link from this host since it started", LINK_LABELS),
    errors: c("trellis_link_errors_total", "Failed import calls made over the link from this host since it started", LINK_LABELS),
    rate: g("trellis_link_calls_per_second", "Import calls per second over the link over the last minute", LINK_LABELS),
    p50: g("trellis_link_latency_p50_milliseconds", "Median latency of import calls over the link over the last minute", LINK_LABELS),
    p99: g("trellis_link_latency_p99_milliseconds", "99th percentile latency of import calls over the link over the last minute", LINK_LABELS),
  };
  // One collector fills every metric from one snapshot (prom-client calls `collect` of each metric per scrape).
  let filled = 0;
  const fill = () => {
    const now = Date.now();
    if (now === filled) return;
    filled = now;
    for (const m of [...Object.values(comp), ...Object.values(link)]) m.reset();
    for (const t of window.totals()) {
      const k = t.key;
      if (k.kind === "component") {
        comp.total.inc({ host_id: hostId, component_id: k.componentId }, t.calls);
        comp.errors.inc({ host_id: hostId, component_id: k.componentId }, t.errors);
      } else {
        const l = { host_id: hostId, source_id: k.sourceId, target: k.target, wit_namespace: k.namespace, wit_package: k.package, link_name: k.linkName };
        link.total.inc(l, t.calls);
        link.errors.inc(l, t.errors);
      }
    }
    const snap = window.snapshot();
    for (const [id, f] of Object.entries(snap.components)) {
      const l = { host_id: hostId, component_id: id };
      comp.rate.set(l, f.rate_per_s);
      comp.p50.set(l, f.p50_ms);
      comp.p99.set(l, f.p99_ms);
    }
    for (const f of snap.links) {
      const l = { host_id: hostId, source_id: f.source_id, target: f.target, wit_namespace: f.wit_namespace, wit_package: f.wit_package, link_name: f.link_name };
      link.rate.set(l, f.rate_per_s);
      link.p50.set(l, f.p50_ms);
      link.p99.set(l, f.p99_ms);
    }
  };
  // prom-client calls each metric's collect(); the first one of a scrape fills all.
  for (const m of [...Object.values(comp), ...Object.values(link)]) (m as unknown as { collect: () => void }).collect = fill;
  return registry;
}

/**
 * Serves `GET /metrics` on `host:port` (port 0: any free port).
 * @throws TrellisError `INVALID_ARGUMENT` when the address cannot be bound.
 */
export async function startMetricsServer(listen: { host: string; port: number }, window: MetricsWindow, hostId: string, logger?: Logger): Promise<MetricsServer> {
  const registry = metricsRegistry(window, hostId);
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "/").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: unknown) => {
        logger?.warn("metrics collection failed", { error: String(err) });
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new TrellisError(ErrorCode.InvalidArgument, `cannot serve metrics on ${listen.host}:${listen.port}: ${err.code ?? err.message}`, { details: { field: "metricsListen" }, cause: err })),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const host = a.address.includes(":") ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
