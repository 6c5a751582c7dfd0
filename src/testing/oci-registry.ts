/**
 * Test harness: a real OCI registry (Debian's `docker-registry`, distribution 2.8) on a free loopback port with a
 * temporary filesystem store, optionally with htpasswd Basic auth. `stop()` kills it by pid and removes its store.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { getFreePort } from "../lattice/nats-server.ts";

/** A running registry. */
export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry host of references (`127.0.0.1:PORT/repo:tag`). */
  readonly host: string;
  /** Its filesystem store (blobs under `docker/registry/v2/blobs/sha256/…`), for tampering tests. */
  readonly storeDir: string;
  /** The registry process id. */
  readonly pid: number;
  /** Kill the registry (SIGTERM, then SIGKILL) and remove its store. Never rejects. */
  stop(): Promise<void>;
}

/** Options of {@link startTestRegistry}. */
export interface TestRegistryOptions {
  /** Require Basic auth with this user and password (an htpasswd file with a bcrypt hash). */
  auth?: { user: string; password: string };
  /** The binary. @default env `DOCKER_REGISTRY_BIN`, else `docker-registry` */
  binary?: string;
  /** Milliseconds to wait for `/v2/` to answer. @default 10000 */
  startTimeoutMs?: number;
}

/**
 * Starts a registry. Never listens beyond 127.0.0.1.
 * @throws Error when the binary is missing (`apt-get install docker-registry`) or the registry does not answer in time.
 */
export async function startTestRegistry(opts: TestRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "trellis-registry-"));
  const port = await getFreePort();
  const host = `127.0.0.1:${port}`;
  const storeDir = path.join(dir, "store");
  let authBlock = "";
  if (opts.auth) {
    // distribution's htpasswd accepts bcrypt hashes only
    const { hashSync } = await import("bcryptjs");
    await writeFile(path.join(dir, "htpasswd"), `${opts.auth.user}:${hashSync(opts.auth.password, 8)}\n`);
    authBlock = `auth:\n  htpasswd:\n    realm: trellis-test\n    path: ${path.join(dir, "htpasswd")}\n`;
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storeDir}
  delete:
    enabled: true
http:
  addr: ${host}
  secret: ${createHash("sha256").update(dir).digest("hex")}
${authBlock}`;
  await writeFile(path.join(dir, "config.yml"), config);
  const child = spawn(opts.binary ?? process.env.DOCKER_REGISTRY_BIN ?? "docker-registry", ["serve", path.join(dir, "config.yml")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  for (;;) {
    const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
    if (failed) {
      await stop();
      throw new Error(`cannot start docker-registry (apt-get install docker-registry): ${failed.message}`);
    }
    try {
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on ${host}: ${stderr.trim() || "no output"}`);
    }
  }
  return { host, storeDir, pid: child.pid!, stop };
}
