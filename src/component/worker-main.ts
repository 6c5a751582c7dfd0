/**
 * Entry point of a component worker thread (docs/adr/0002): hosts several components, owns its own NATS
 * connection (exports are served and imports are called from here, with no thread hop on the hot path), and
 * obeys control messages from the main thread ({@link WorkerRequest}).
 * @module
 */
import { parentPort, threadId, workerData } from "node:worker_threads";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, type NatsConnectData } from "../core/connection.ts";
import { TrellisError } from "../core/errors.ts";
import { serveInvocations, type InvocationServer } from "../../packages/wire/src/invocation/server.ts";
import { type InvocationLimits, UploadBudget } from "../../packages/wire/src/invocation/uploads.ts";
import { GuestComponent, type GuestSpec } from "./guest.ts";
import type { LinkTable } from "./routing.ts";
import { WatchdogWriter } from "./watchdog.ts";
import { PolicyClient } from "../policy/service.ts";
import type { InvocationPolicySpec } from "../policy/admission.ts";
import { startTracing } from "../tracing/tracer.ts";
import type { TracingSettings } from "../tracing/settings.ts";
import { NOOP_TRACING, type HopSpan, type Tracing } from "../tracing/types.ts";
import { MetricsRecorder, type MetricsBatch } from "../metrics/recorder.ts";
import { INTROSPECT_IFACE, type InvocationRequest } from "../../packages/wire/src/invocation/server.ts";

/** Data a worker starts with. */
export interface WorkerInit {
  lattice: string;
  /** Settings of the worker's own NATS connection, credentials and TLS included (plain data, src/core/connection.ts). */
  nats: NatsConnectData;
  watchdog: SharedArrayBuffer;
  /** Heartbeat period in milliseconds. */
  heartbeatMs: number;
  /** Node compile cache directory (used by worker-entry.ts). */
  compileCacheDir?: string;
  /** Limits on callers, shared by every component of this worker (docs/protocol.md §7.1). @default the defaults */
  invocationLimits?: InvocationLimits;
  /** Tracing of the calls this worker serves and makes (src/tracing, ADR 0025). @default off */
  tracing?: TracingSettings;
  /** Id of the host, set on spans. @default "" */
  hostId?: string;
  /** How often recorded call metrics are sent to the main thread, in ms (ADR 0026). @default 1000 */
  metricsIntervalMs?: number;
}

/** Requests from the main thread (`id` pairs the answer). */
export type WorkerRequest =
  | { t: "load"; id: number; spec: GuestSpec }
  | { t: "unload"; id: number; componentId: string }
  | { t: "scale"; id: number; componentId: string; maxInstances: number }
  | { t: "links"; id: number; componentId: string; links: LinkTable }
  | { t: "config"; id: number; componentId: string; config: Record<string, string> }
  | { t: "stats"; id: number }
  | { t: "shutdown"; id: number };

/** Answer to a `stats` request. */
export interface WorkerStats {
  /** `threadId` of this worker thread. */
  threadId: number;
  /** Each component loaded here: its instances now and the invocations it has taken since it loaded. */
  components: { id: string; instances: number; served: number }[];
  /** CPU time this thread has used since it started (user + system), in microseconds. */
  cpuUs: number;
  /** V8 heap in use, in bytes. */
  heapUsed: number;
}

/** Messages to the main thread. */
export type WorkerMessage =
  | { t: "res"; id: number; ok: true; value?: unknown }
  | { t: "res"; id: number; ok: false; error: { code: string; message: string; details?: Record<string, unknown> } }
  | { t: "log"; componentId: string; level: "trace" | "debug" | "info" | "warn" | "error"; msg: string; meta?: Record<string, unknown> }
  | { t: "ready" }
  /** The worker's NATS connection dropped (`false`) or is back with its subscriptions flushed (`true`). ADR 0014. */
  | { t: "nats"; connected: boolean }
  /** Call metrics recorded since the last batch (ADR 0026). */
  | { t: "metrics"; batch: MetricsBatch };

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: WorkerMessage) => port.postMessage(m);
const watchdog = new WatchdogWriter(init.watchdog);
watchdog.heartbeat();
const beat = setInterval(() => watchdog.heartbeat(), init.heartbeatMs);

const guests = new Map<string, { guest: GuestComponent; server: InvocationServer }>();
/** One upload budget for the whole worker: its components share its memory. */
const uploadBudget = new UploadBudget(init.invocationLimits);
let nc: NatsConnection;
let shuttingDown = false;
let tracing: Tracing = NOOP_TRACING;
/** An invocation with the span {@link observed} started for it. */
type TracedRequest = InvocationRequest & { span?: HopSpan };
const metrics = new MetricsRecorder();
const metricsTimer = setInterval(() => {
  const batch = metrics.drain();
  if (batch) post({ t: "metrics", batch });
}, init.metricsIntervalMs ?? 1000);
metricsTimer.unref();

/**
 * Wraps a component's invocation handler: the call's server span (child of the caller's trace context; the
 * component's import calls are its children) and its count for the component's metrics. Introspection is neither.
 */
function observed(componentId: string, inner: (r: TracedRequest) => Promise<Uint8Array> | Uint8Array) {
  return async (r: TracedRequest): Promise<Uint8Array> => {
    if (r.iface === INTROSPECT_IFACE) return inner(r);
    const span = tracing.server(r.headers, { sourceId: r.sourceId, target: componentId, iface: r.iface, fn: r.fn, linkName: r.linkName });
    r.span = span;
    const t0 = performance.now();
    try {
      const out = await inner(r);
      span.end();
      metrics.served(componentId, performance.now() - t0, false);
      return out;
    } catch (err) {
      span.end(err);
      metrics.served(componentId, performance.now() - t0, true);
      throw err;
    }
  };
}
/** Policy service clients of this worker, by configuration (one per host, with its decision cache). */
const policies = new Map<string, PolicyClient>();

/** The (started) policy client for `spec`, shared by every component of this worker with the same configuration. */
async function policyClient(spec: InvocationPolicySpec): Promise<PolicyClient> {
  const key = JSON.stringify([spec.config, spec.host]);
  let p = policies.get(key);
  if (!p) {
    p = new PolicyClient(nc, spec.config, spec.host);
    policies.set(key, p);
    await p.start();
  }
  return p;
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.t) {
    case "load": {
      const guest = new GuestComponent(req.spec, {
        nc,
        lattice: init.lattice,
        watchdog,
        log: (componentId, level, msg, meta) => post({ t: "log", componentId, level, msg, ...(meta ? { meta } : {}) }),
        tracing,
        metrics,
      });
      await guest.init();
      const old = guests.get(req.spec.componentId);
      const pol = req.spec.invocationPolicy;
      const id = req.spec.componentId;
      const handle = (r: TracedRequest) => guest.handle(r, r.span);
      const server = serveInvocations(nc, {
        lattice: init.lattice,
        targetId: id,
        budget: uploadBudget,
        // Per-invocation policy decisions (reference §6.4), cached: a map lookup per call once decided.
        handler: observed(id, pol ? (await policyClient(pol)).guard(pol.target, handle) : handle),
      });
      await nc.flush();
      guests.set(req.spec.componentId, { guest, server });
      if (old) {
        old.server.stop();
        old.guest.close();
      }
      return { instances: guest.instances };
    }
    case "unload": {
      const g = guests.get(req.componentId);
      if (g) {
        g.server.stop();
        g.guest.close();
        guests.delete(req.componentId);
        await nc.flush();
      }
      return undefined;
    }
    case "scale":
      guests.get(req.componentId)?.guest.setMaxInstances(req.maxInstances);
      return undefined;
    case "links":
      guests.get(req.componentId)?.guest.setLinks(req.links);
      return undefined;
    case "config":
      guests.get(req.componentId)?.guest.setConfig(req.config);
      return undefined;
    case "stats":
      return {
        threadId,
        cpuUs: threadCpuUs(),
        components: [...guests.values()].map((g) => ({ id: g.guest.spec.componentId, instances: g.guest.instances, served: g.guest.served })),
        heapUsed: process.memoryUsage().heapUsed,
      } satisfies WorkerStats;
    case "shutdown":
      shuttingDown = true;
      for (const p of policies.values()) p.close();
      policies.clear();
      for (const g of guests.values()) {
        g.server.stop();
        g.guest.close();
      }
      guests.clear();
      clearInterval(beat);
      clearInterval(metricsTimer);
      await tracing.shutdown();
      await nc.drain();
      return undefined;
  }
}

/** CPU time of this thread, in microseconds (`process.threadCpuUsage`, Node ≥ 23.9). */
function threadCpuUs(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}

async function main(): Promise<void> {
  // a worker reconnects forever after a NATS restart (ADR 0014)
  nc = await connectNats(init.nats, { name: `trellis-component-worker`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  // A connection that is closed for good (reconnect attempts exhausted) cannot serve: exit, so the pool restarts this
  // worker with backoff and reports its components failed meanwhile (ADR 0014).
  void nc.closed().then(() => {
    if (!shuttingDown) process.exit(3);
  });
  void watchConnection(nc);
  if (init.tracing) tracing = startTracing(init.tracing, { nc, lattice: init.lattice, hostId: init.hostId ?? "" });
  port.on("message", (req: WorkerRequest) => {
    handle(req).then(
      (value) => post({ t: "res", id: req.id, ok: true, value }),
      (err: unknown) => post({ t: "res", id: req.id, ok: false, error: TrellisError.from(err).toWire() }),
    );
  });
  post({ t: "ready" });
}

/** Tells the main thread when the connection drops and when it is back (after the resubscriptions reached the server). */
async function watchConnection(c: NatsConnection): Promise<void> {
  for await (const s of c.status()) {
    if (s.type === "disconnect") post({ t: "nats", connected: false });
    else if (s.type === "reconnect") {
      try {
        await c.flush();
      } catch {
        continue; // dropped again: the next reconnect reports
      }
      post({ t: "nats", connected: true });
    }
  }
}

main().catch((err: unknown) => {
  post({ t: "res", id: -1, ok: false, error: TrellisError.from(err).toWire() });
  process.exit(1);
});
