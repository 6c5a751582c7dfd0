/**
 * Test harness: a throwaway redis-server for one test file.
 *
 * If env `REDIS_URL` is set, that server is used and `stop()` is a no-op. Otherwise
 * `redis-server --port <free> --save "" --appendonly no --bind 127.0.0.1` runs in a temp dir
 * (removed by `stop()`), and we wait until it answers a raw `PING` with `+PONG`.
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { getFreePort, probeTcp } from "../lattice/nats-server.ts";

/** A Redis server for tests. */
export interface TestRedis {
  /** Connection URL, e.g. `"redis://127.0.0.1:6390"`. */
  readonly url: string;
  /** TCP port. */
  readonly port: number;
  /** `true` if the server came from env `REDIS_URL`. */
  readonly external: boolean;
  /** Stop the server if we started it (SIGTERM, SIGKILL after 5 s) and remove its temp dir; no-op for an external one. Never rejects. */
  stop(): Promise<void>;
}

/** Options for {@link startTestRedis}. */
export interface TestRedisOptions {
  /** Ignore env `REDIS_URL` and always start a private server. Default `false`. */
  private?: boolean;
  /** Binary name or path. Default env `REDIS_SERVER_BIN`, else `"redis-server"` (on PATH). */
  binary?: string;
  /** Milliseconds to wait for `+PONG`. Default `10000`. */
  startTimeoutMs?: number;
}

/** Error thrown when a test redis-server cannot be started; `code` is `"REDIS_SERVER_START_FAILED"`. */
export class TestRedisError extends Error {
  readonly code = "REDIS_SERVER_START_FAILED";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TestRedisError";
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait for `p` at most `ms` milliseconds (the timer is always cleared, so it never holds the event loop). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Send a raw `PING` to a Redis server.
 *
 * @param timeoutMs default `1000`.
 * @returns `true` if it answered `+PONG` in time. Never throws.
 */
export async function pingRedis(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return probeTcp(host, port, timeoutMs, {
    send: "PING\r\n",
    verdict: (buf) => (buf.includes("\r\n") ? buf.startsWith("+PONG") : undefined),
  });
}

/**
 * Get a Redis server for a test: env `REDIS_URL` if set (no-op `stop()`), else a fresh
 * redis-server without persistence on a free port of 127.0.0.1.
 *
 * @throws {TestRedisError} if the binary is missing (`apt-get install redis-server`), exits early,
 *   or does not answer PING within `startTimeoutMs`; the message includes its output tail.
 */
export async function startTestRedis(opts: TestRedisOptions = {}): Promise<TestRedis> {
  const envUrl = process.env["REDIS_URL"];
  if (envUrl !== undefined && envUrl !== "" && opts.private !== true) {
    const u = new URL(envUrl);
    return { url: envUrl, port: u.port === "" ? 6379 : Number(u.port), external: true, stop: () => Promise.resolve() };
  }
  const binary = opts.binary ?? process.env["REDIS_SERVER_BIN"] ?? "redis-server";
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  let lastError = "";
  // getFreePort() is racy; retry a few times if the port was taken in between.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await getFreePort("127.0.0.1");
    const dir = await mkdtemp(path.join(os.tmpdir(), "trellis-redis-"));
    const args = ["--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--dir", dir];
    const child = spawn(binary, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const onData = (c: Buffer): void => {
      output = (output + c.toString("utf8")).slice(-4000);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    let exited = false;
    let spawnError: Error | undefined;
    const exitPromise = new Promise<void>((resolve) => {
      child.once("exit", () => {
        exited = true;
        resolve();
      });
      child.once("error", (err) => {
        spawnError = err;
        exited = true;
        resolve();
      });
    });
    // Like the nats-server harness: never keep the event loop alive; kill on process exit.
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    const onExit = (): void => {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    };
    process.on("exit", onExit);

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        if (!exited) {
          child.kill("SIGTERM");
          await settlesWithin(exitPromise, 5000);
          if (!exited) {
            child.kill("SIGKILL");
            await settlesWithin(exitPromise, 2000);
          }
        }
        process.off("exit", onExit);
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      })();
      return stopping;
    };

    const deadline = Date.now() + timeoutMs;
    let ready = false;
    // Our own process must log "Ready to accept connections" (so a *different* server that grabbed
    // the port cannot fool us) and the port must answer PING.
    while (!ready && !exited && Date.now() < deadline) {
      ready = /ready to accept connections/i.test(output) && (await pingRedis("127.0.0.1", port, 500));
      if (!ready) await sleep(20);
    }
    if (ready && !exited) {
      return { url: `redis://127.0.0.1:${port}`, port, external: false, stop };
    }
    await stop();
    const err = spawnError as Error | undefined;
    if (err !== undefined && (err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new TestRedisError(
        `redis-server not found (${JSON.stringify(binary)}). Install it with \`apt-get install redis-server\` on Debian/Ubuntu, or set REDIS_URL.`,
        { cause: err },
      );
    }
    lastError = err !== undefined ? err.message : exited ? `exited during startup` : `no PONG within ${timeoutMs} ms`;
    lastError += output === "" ? "" : `\n--- redis-server output (tail) ---\n${output}`;
    if (!/address already in use/i.test(output)) break;
  }
  throw new TestRedisError(`redis-server (${binary}) failed to start: ${lastError}`);
}
