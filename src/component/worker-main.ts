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
import { serveInvocations, type InvocationServer } from "../invocation/server.ts";
import { type InvocationLimits, UploadBudget } from "../invocation/uploads.ts";
import { GuestComponent, type GuestSpec } from "./guest.ts";
import type { LinkTable } from "./routing.ts";
import { WatchdogWriter } from "./watchdog.ts";
import { PolicyClient } from "../policy/service.ts";
import type { InvocationPolicySpec } from "../policy/admission.ts";

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
  | { t: "nats"; connected: boolean };

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
      });
      await guest.init();
      const old = guests.get(req.spec.componentId);
      const pol = req.spec.invocationPolicy;
      const handle = (r: Parameters<GuestComponent["handle"]>[0]) => guest.handle(r);
      const server = serveInvocations(nc, {
        lattice: init.lattice,
        targetId: req.spec.componentId,
        budget: uploadBudget,
        // Per-invocation policy decisions (reference §6.4), cached: a map lookup per call once decided.
        handler: pol ? (await policyClient(pol)).guard(pol.target, handle) : handle,
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
