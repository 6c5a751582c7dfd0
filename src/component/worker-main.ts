/**
 * Entry point of a component worker thread (docs/adr/0002): hosts several components, owns its own NATS
 * connection (exports are served and imports are called from here, with no thread hop on the hot path), and
 * obeys control messages from the main thread ({@link WorkerRequest}).
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, type NatsConnectData } from "../core/connection.ts";
import { TrellisError } from "../core/errors.ts";
import { serveInvocations, type InvocationServer } from "../invocation/server.ts";
import { GuestComponent, type GuestSpec } from "./guest.ts";
import type { LinkTable } from "./routing.ts";
import { WatchdogWriter } from "./watchdog.ts";

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

/** Messages to the main thread. */
export type WorkerMessage =
  | { t: "res"; id: number; ok: true; value?: unknown }
  | { t: "res"; id: number; ok: false; error: { code: string; message: string; details?: Record<string, unknown> } }
  | { t: "log"; componentId: string; level: "trace" | "debug" | "info" | "warn" | "error"; msg: string; meta?: Record<string, unknown> }
  | { t: "ready" };

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: WorkerMessage) => port.postMessage(m);
const watchdog = new WatchdogWriter(init.watchdog);
watchdog.heartbeat();
const beat = setInterval(() => watchdog.heartbeat(), init.heartbeatMs);

const guests = new Map<string, { guest: GuestComponent; server: InvocationServer }>();
let nc: NatsConnection;

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
      const server = serveInvocations(nc, {
        lattice: init.lattice,
        targetId: req.spec.componentId,
        handler: (r) => guest.handle(r),
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
        components: [...guests.values()].map((g) => ({ id: g.guest.spec.componentId, instances: g.guest.instances })),
        heapUsed: process.memoryUsage().heapUsed,
      };
    case "shutdown":
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

async function main(): Promise<void> {
  nc = await connectNats(init.nats, { name: `trellis-component-worker` });
  port.on("message", (req: WorkerRequest) => {
    handle(req).then(
      (value) => post({ t: "res", id: req.id, ok: true, value }),
      (err: unknown) => post({ t: "res", id: req.id, ok: false, error: TrellisError.from(err).toWire() }),
    );
  });
  post({ t: "ready" });
}

main().catch((err: unknown) => {
  post({ t: "res", id: -1, ok: false, error: TrellisError.from(err).toWire() });
  process.exit(1);
});
