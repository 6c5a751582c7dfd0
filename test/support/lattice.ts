/**
 * Shared set-up for lattice tests: a test nats-server (or NATS_URL), hosts and clients on a fresh lattice.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Host } from "../../src/host/host.ts";
import type { HostOptions } from "../../src/host/options.ts";
import { CtlClient } from "../../src/control/client.ts";
import { silentLogger } from "../../src/core/logger.ts";
import { eventWildcard } from "../../src/core/subjects.ts";
import type { CloudEvent } from "../../src/core/events.ts";
import { startTestNats, uniqueLattice, type TestNats } from "../../src/testing/index.ts";

/** A running test lattice: server, lattice name, and what was started on it (stopped by `close`). */
export interface TestLattice {
  nats: TestNats;
  lattice: string;
  hosts: Host[];
  client: CtlClient;
  /** Starts one more host on this lattice; with no `workloads` it runs none (pass them for components/providers); no reconciler unless `reconciler: true`. */
  startHost(opts?: HostOptions): Promise<Host>;
  /** Records every event of the lattice from now on. */
  recordEvents(): Promise<EventRecorder>;
  /** A fresh NATS connection, closed by `close`. */
  connection(): Promise<NatsConnection>;
  close(): Promise<void>;
}

/** Events seen so far. */
export interface EventRecorder {
  events: CloudEvent[];
  ofType(name: string): CloudEvent[];
}

/** Starts NATS (or uses NATS_URL), picks a fresh lattice and connects a control client. */
export async function testLattice(nats?: TestNats): Promise<TestLattice> {
  const server = nats ?? (await startTestNats());
  const lattice = uniqueLattice();
  const hosts: Host[] = [];
  const conns: NatsConnection[] = [];
  const client = await CtlClient.connect({ natsUrl: server.url, lattice, timeoutMs: 5000 });
  const t: TestLattice = {
    nats: server,
    lattice,
    hosts,
    client,
    async startHost(opts = {}) {
      const h = await Host.create({ natsUrl: server.url, lattice, logger: silentLogger, cacheDir: "/tmp/trellis-test-cache", workloads: {}, reconciler: false, ...opts });
      hosts.push(h);
      return h;
    },
    async connection() {
      const nc = await connect({ servers: server.url });
      conns.push(nc);
      return nc;
    },
    async recordEvents() {
      const nc = await t.connection();
      const events: CloudEvent[] = [];
      nc.subscribe(eventWildcard(lattice), {
        callback: (_e, m) => {
          events.push(m.json<CloudEvent>());
        },
      });
      await nc.flush();
      return { events, ofType: (name) => events.filter((e) => e.type === `com.wasmcloud.lattice.${name}`) };
    },
    async close() {
      await Promise.allSettled(hosts.map((h) => h.stop()));
      await client.close();
      await Promise.allSettled(conns.map((c) => c.close()));
      if (!nats) await server.stop();
    },
  };
  return t;
}
