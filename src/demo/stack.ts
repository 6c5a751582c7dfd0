/**
 * What the demo (and the end-to-end tests and benchmarks) stand up: a NATS server with JetStream, a Redis server when
 * one can be had, and a Trellis host that runs both components (src/component) and capability providers
 * (src/provider) — docs/demo.md.
 * @module
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { ComponentPolicy } from "../component/index.ts";
import { defaultWorkloads } from "../host/default-workloads.ts";
import { Host } from "../host/host.ts";
import type { WorkloadFactories } from "../host/workloads.ts";
import { findNatsServerBinary, isNatsReachable, NATS_SERVER_INSTALL_HINT, startNatsServer, type NatsServerHandle } from "../lattice/nats-server.ts";
import { pingRedis } from "../testing/redis.ts";
import { DEFAULT_CACHE_DIR } from "./build.ts";

/**
 * What a demo host may load from files: the stable copies of the built examples that the example manifests reference
 * (`.cache/examples/`, docs/demo.md). First-party providers run by name; nothing else is loaded (docs/security.md).
 */
export const DEMO_ALLOWED_PATHS: readonly string[] = Object.freeze([path.join(DEFAULT_CACHE_DIR, "examples")]);

/** The NATS URL the demo uses (the default of every `trellis` command). */
export const DEMO_NATS_URL = "nats://127.0.0.1:4222";
/** The Redis URL the example manifest points its `default` key-value link at. */
export const DEMO_REDIS_URL = "redis://127.0.0.1:6379";

/** The workload managers of a demo host: the host defaults (component runtime and provider supervisor). */
export function demoWorkloads(policy?: ComponentPolicy): Partial<WorkloadFactories> {
  return defaultWorkloads(policy ? { components: policy } : {});
}

/** A NATS server the demo uses: `stop` is a no-op when it was already running. */
export interface DemoNats {
  url: string;
  /** True when the demo started it. */
  started: boolean;
  stop(): Promise<void>;
}

/**
 * Uses the NATS server at `url` when one answers; otherwise starts `nats-server` there, with JetStream in a fresh
 * temporary directory removed on stop (a demo lattice starts clean every time).
 * @throws TrellisError `LATTICE_ERROR` when nothing answers, the URL is not local or nats-server is not installed
 *   (the message says how to install it).
 */
export async function ensureNats(url: string): Promise<DemoNats> {
  if (await isNatsReachable(url, 1000)) return { url, started: false, stop: () => Promise.resolve() };
  const u = new URL(url);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) {
    throw new TrellisError(ErrorCode.Lattice, `nothing answers at ${url} and it is not local, so the demo cannot start a NATS server there`);
  }
  if (!(await findNatsServerBinary())) throw new TrellisError(ErrorCode.Lattice, `nats-server is not installed: ${NATS_SERVER_INSTALL_HINT}`);
  const handle: NatsServerHandle = await startNatsServer({ port: Number(u.port || 4222), keepProcessAlive: true });
  return { url: handle.url, started: true, stop: () => handle.stop() };
}

/** A Redis server the demo uses. */
export interface DemoRedis {
  url: string;
  started: boolean;
  stop(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

async function onPath(bin: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];
  const { access, constants } = await import("node:fs/promises");
  for (const d of dirs.filter(Boolean)) {
    try {
      await access(path.join(d, bin), constants.X_OK);
      return path.join(d, bin);
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * A Redis at 127.0.0.1:6379: the one that answers there, or a `redis-server` the demo starts there (no persistence)
 * when it is installed and the port is free; undefined when neither (the demo then uses NATS KV).
 */
export async function ensureRedis(dir: string): Promise<DemoRedis | undefined> {
  if (await pingRedis("127.0.0.1", 6379, 500)) return { url: DEMO_REDIS_URL, started: false, stop: () => Promise.resolve() };
  const bin = await onPath("redis-server");
  if (!bin || !(await portFree(6379))) return undefined;
  await mkdir(dir, { recursive: true });
  const child: ChildProcess = spawn(bin, ["--port", "6379", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: "ignore",
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.once("error", () => undefined);
  for (let i = 0; i < 50; i++) {
    if (await pingRedis("127.0.0.1", 6379, 200)) {
      return {
        url: DEMO_REDIS_URL,
        started: true,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill("SIGTERM");
          await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        },
      };
    }
    if (child.exitCode !== null) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  return undefined;
}

/** Options of {@link startDemoHost}. */
export interface DemoHostOptions {
  natsUrl: string;
  lattice: string;
  logger: Logger;
  /** Compiled-component cache. */
  cacheDir: string;
  /** Timeout of lattice calls (import calls, export execution), in ms. @default 2000 (the host default) */
  rpcTimeoutMs?: number;
  /** Component runtime policy (worker threads, limits). @default the runtime's defaults */
  policy?: ComponentPolicy;
  /** Directories whose components and providers the host may load (`--allowed-path`). @default {@link DEMO_ALLOWED_PATHS} */
  allowedPaths?: readonly string[];
}

/** Starts a host that runs components and providers ({@link demoWorkloads}). */
export async function startDemoHost(opts: DemoHostOptions): Promise<Host> {
  return Host.create({
    natsUrl: opts.natsUrl,
    lattice: opts.lattice,
    logger: opts.logger,
    cacheDir: opts.cacheDir,
    friendlyName: "trellis-demo",
    ...(opts.rpcTimeoutMs === undefined ? {} : { rpcTimeoutMs: opts.rpcTimeoutMs }),
    workloads: demoWorkloads(opts.policy),
    allowedPaths: [...(opts.allowedPaths ?? DEMO_ALLOWED_PATHS)],
  });
}
