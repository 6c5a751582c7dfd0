/**
 * Test harness: a local NATS cluster of N nats-server processes with JetStream (docs/nats-cluster.md), for fault
 * tests that kill and restart nodes.
 *
 * Every node gets fixed client and route ports (picked free at start, kept across a restart), a `server_name`
 * (`n0`, `n1`, …) and its own JetStream store dir under one temp root, so a node killed with {@link TestNatsCluster.kill}
 * can be started again with its data by {@link TestNatsCluster.restart}. `stop()` stops every node by its pid and
 * removes the temp root.
 *
 * Config of one node (nats-server 2.9.10; the generated file adds `listen` and `jetstream { store_dir }`):
 * ```
 * server_name: "n0"
 * cluster { name: "trellis-test", listen: "127.0.0.1:PORT", routes: ["nats-route://127.0.0.1:PORT1", …] }
 * ```
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { getFreePort, startNatsServer, type NatsServerHandle } from "../lattice/nats-server.ts";

/** Options of {@link startTestNatsCluster}. */
export interface TestNatsClusterOptions {
  /** Number of nodes. @default 3 */
  size?: number;
  /** Cluster name. @default "trellis-test" */
  name?: string;
  /** Milliseconds to wait for JetStream to answer on every node after start. @default 20000 */
  readyTimeoutMs?: number;
}

/** One node of a {@link TestNatsCluster}. */
export interface TestNatsNode {
  /** `server_name`: `n0`, `n1`, … */
  readonly name: string;
  /** Client URL `nats://127.0.0.1:PORT` (the same after a restart). */
  readonly url: string;
  /** OS pid of the running process; undefined while the node is down. */
  readonly pid: number | undefined;
  /** True while the process runs. */
  readonly running: boolean;
}

/** A running local NATS cluster. */
export interface TestNatsCluster {
  readonly nodes: readonly TestNatsNode[];
  /** Every node's client URL, comma-separated: what a host's `natsUrl` takes. */
  readonly urls: string;
  /** Kills one node with SIGKILL (no goodbye to its peers) and waits for the process to exit. */
  kill(name: string): Promise<void>;
  /** Starts a killed node again on the same ports and store dir. */
  restart(name: string): Promise<void>;
  /**
   * Waits until JetStream answers `$JS.API.INFO` through `name` (or through every running node when omitted).
   * @throws Error after `timeoutMs` (default 20000).
   */
  waitJetStream(name?: string, timeoutMs?: number): Promise<void>;
  /** Stops every node by its pid and removes every store dir. Never rejects. */
  stop(): Promise<void>;
}

interface NodeState {
  name: string;
  clientPort: number;
  routePort: number;
  storeDir: string;
  handle: NatsServerHandle | undefined;
}

/**
 * Starts `size` nats-server processes forming one cluster with JetStream and waits until JetStream answers on each
 * (meta leader elected).
 * @throws NatsServerError when a node cannot start; Error when JetStream does not become ready in time.
 */
export async function startTestNatsCluster(opts: TestNatsClusterOptions = {}): Promise<TestNatsCluster> {
  const size = opts.size ?? 3;
  const clusterName = opts.name ?? "trellis-test";
  const readyMs = opts.readyTimeoutMs ?? 20_000;
  const root = await mkdtemp(path.join(os.tmpdir(), "trellis-cluster-"));
  const nodes: NodeState[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push({
      name: `n${i}`,
      clientPort: await getFreePort(),
      routePort: await getFreePort(),
      storeDir: path.join(root, `n${i}`),
      handle: undefined,
    });
  }
  const routes = nodes.map((n) => `"nats-route://127.0.0.1:${n.routePort}"`).join(", ");
  const startNode = async (n: NodeState): Promise<void> => {
    n.handle = await startNatsServer({
      port: n.clientPort,
      storeDir: n.storeDir,
      extraConfig: [
        `server_name: "${n.name}"`,
        `cluster {`,
        `  name: "${clusterName}"`,
        `  listen: "127.0.0.1:${n.routePort}"`,
        `  routes: [${routes}]`,
        `}`,
      ],
    });
  };
  const byName = (name: string): NodeState => {
    const n = nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name} in this cluster (have ${nodes.map((x) => x.name).join(", ")})`);
    return n;
  };
  const waitJs = async (n: NodeState, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    const url = `nats://127.0.0.1:${n.clientPort}`;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const nc = await connect({ servers: url, timeout: 1000, ignoreClusterUpdates: true, reconnect: false });
        try {
          const m = await nc.request("$JS.API.INFO", new Uint8Array(), { timeout: 1000 });
          const body = JSON.parse(new TextDecoder().decode(m.data)) as { error?: unknown };
          if (body.error === undefined) return;
          last = body.error;
        } finally {
          await nc.close();
        }
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`JetStream did not answer on ${n.name} within ${timeoutMs} ms: ${String((last as Error)?.message ?? JSON.stringify(last))}`);
  };

  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.handle?.stop()));
    for (const n of nodes) n.handle = undefined;
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    await Promise.all(nodes.map(startNode));
    for (const n of nodes) await waitJs(n, readyMs);
  } catch (err) {
    await stopAll();
    throw err;
  }

  return {
    nodes: nodes.map((n) => ({
      name: n.name,
      url: `nats://127.0.0.1:${n.clientPort}`,
      get pid() {
        return n.handle?.pid;
      },
      get running() {
        return n.handle !== undefined;
      },
    })),
    urls: nodes.map((n) => `nats://127.0.0.1:${n.clientPort}`).join(","),
    async kill(name) {
      const n = byName(name);
      const h = n.handle;
      if (!h) return;
      try {
        process.kill(h.pid, "SIGKILL");
      } catch {
        // already gone
      }
      // stop() waits for the exit; the store dir is ours (given explicitly), so it is kept for a restart.
      await h.stop();
      n.handle = undefined;
    },
    async restart(name) {
      const n = byName(name);
      if (n.handle) return;
      await startNode(n);
    },
    async waitJetStream(name, timeoutMs = readyMs) {
      const which = name === undefined ? nodes.filter((n) => n.handle) : [byName(name)];
      for (const n of which) await waitJs(n, timeoutMs);
    },
    stop: stopAll,
  };
}
