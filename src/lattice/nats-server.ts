/**
 * Launch and supervise a local `nats-server` process (with JetStream, optionally WebSocket).
 *
 * Used by the test harness (`src/testing`), the benchmarks and the demo to get a
 * throwaway NATS server without any external setup other than the `nats-server`
 * binary itself (Debian/Ubuntu: `apt-get install nats-server`).
 *
 * A config file is always generated in a fresh temp directory; the server is
 * started with `--ports_file_dir` pointing there, so port 0 ("pick a free one")
 * is delegated to the server itself (no bind/close race) and read back from the
 * ports file. Readiness = a TCP connection to the client port receives `INFO`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { access, constants, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** Minimal structured logger accepted by {@link startNatsServer} (pino-compatible argument order is NOT assumed). */
export interface NatsServerLogger {
  info(msg: string, meta?: object): void;
  warn(msg: string, meta?: object): void;
  debug(msg: string, meta?: object): void;
}

/** Options for {@link startNatsServer}. All fields are optional. */
export interface NatsServerOptions {
  /** Bind host for the client (and WebSocket) listener. Default `"127.0.0.1"`. */
  host?: string;
  /** Client port; `0` = let the server pick a free one. Default `0`. */
  port?: number;
  /**
   * JetStream store directory. Default: a new temp directory that is removed on `stop()`.
   * A directory given here is created if missing and never removed.
   */
  storeDir?: string;
  /** Also open a WebSocket listener (no TLS) on this port; `0` = pick a free one; `undefined` = no WebSocket. */
  websocketPort?: number;
  /**
   * Path or name of the binary. Default: env `NATS_SERVER_BIN`, else `"nats-server"`
   * resolved with {@link findNatsServerBinary}.
   */
  binary?: string;
  /** Milliseconds to wait for the server to accept clients. Default `10000`. */
  startTimeoutMs?: number;
  /** Extra lines appended verbatim to the generated config file (NATS config syntax). */
  extraConfig?: readonly string[];
  /**
   * Files holding account entries (`NAME: { users: […] }`, as `trellis lattice secure init` writes them), included in
   * an `accounts { … }` block. Given as any path; written relative to the generated config file, since nats-server
   * 2.9 resolves `include` relative to the including file. Anonymous clients are then refused.
   */
  accountFiles?: readonly string[];
  /**
   * When `false` (default) the child process does not keep the Node.js event loop alive,
   * and it is SIGKILLed (and its temp dirs removed) when this process exits, so a forgotten
   * `stop()` never hangs a test run. Set `true` for a long-running server owned by a CLI.
   */
  keepProcessAlive?: boolean;
  /** Optional logger for lifecycle events; nothing is printed without one. */
  logger?: NatsServerLogger;
}

/** A running nats-server started by {@link startNatsServer}. */
export interface NatsServerHandle {
  /** Client URL, e.g. `"nats://127.0.0.1:40211"` (a wildcard bind host is reported as 127.0.0.1). */
  readonly url: string;
  /** Actual client port. */
  readonly port: number;
  /** WebSocket URL (`"ws://host:port"`), present only if `websocketPort` was given. */
  readonly websocketUrl?: string;
  /** JetStream store directory in use. */
  readonly storeDir: string;
  /** Path of the generated config file. */
  readonly configFile: string;
  /** OS process id of the server. */
  readonly pid: number;
  /** Last lines of the server's stdout/stderr (for diagnostics). */
  logTail(): string;
  /**
   * Stop the server: SIGTERM, wait up to 5 s, then SIGKILL. Removes the generated config dir and
   * the store dir if it was created by us. Idempotent; never rejects.
   */
  stop(): Promise<void>;
}

/** Error codes of {@link NatsServerError}. */
export type NatsServerErrorCode = "NATS_SERVER_START_FAILED" | "NATS_SERVER_NOT_FOUND";

/** Thrown by {@link startNatsServer}. `logTail` holds the server's last output lines, if any. */
export class NatsServerError extends Error {
  readonly code: NatsServerErrorCode;
  readonly logTail: string;

  constructor(code: NatsServerErrorCode, message: string, options?: { cause?: unknown; logTail?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NatsServerError";
    this.code = code;
    this.logTail = options?.logTail ?? "";
  }
}

/** How to get a nats-server binary; included in NATS_SERVER_NOT_FOUND messages. */
export const NATS_SERVER_INSTALL_HINT =
  "Install it with `apt-get install nats-server` on Debian/Ubuntu (`brew install nats-server` on macOS), " +
  "or download a release from https://github.com/nats-io/nats-server/releases (see https://nats.io/download/), " +
  "and put it on PATH or set NATS_SERVER_BIN.";

/** Directories searched after PATH: Debian installs to /usr/sbin, which is not on a non-root user's PATH. */
const FALLBACK_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"];

const DEFAULT_START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const LOG_TAIL_LINES = 60;

async function isExecutableFile(p: string): Promise<boolean> {
  try {
    const st = await stat(p);
    if (!st.isFile()) return false;
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolve the nats-server binary.
 *
 * @param binary a path (contains a `/`), or a command name looked up on `PATH` and then in
 *   /usr/sbin, /usr/local/sbin, /usr/local/bin, /usr/bin, /opt/homebrew/bin.
 *   Default: env `NATS_SERVER_BIN`, else `"nats-server"`.
 * @returns the absolute path of an executable file, or `undefined` if none is found. Never throws.
 */
export async function findNatsServerBinary(binary?: string): Promise<string | undefined> {
  const name = binary ?? process.env["NATS_SERVER_BIN"] ?? "nats-server";
  if (name.includes("/") || name.includes(path.sep)) {
    const abs = path.resolve(name);
    return (await isExecutableFile(abs)) ? abs : undefined;
  }
  const dirs = (process.env["PATH"] ?? "").split(path.delimiter).filter((d) => d !== "");
  for (const dir of [...dirs, ...FALLBACK_DIRS]) {
    const candidate = path.resolve(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Parse `nats://host:port`, `host:port` or `host` (default port 4222) into host and port. */
function parseNatsUrl(url: string): { host: string; port: number } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `nats://${url}`;
  const u = new URL(withScheme);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const port = u.port === "" ? 4222 : Number(u.port);
  return { host, port };
}

/**
 * Check that a NATS server answers at `url`: opens a TCP connection and waits for the
 * server's `INFO` line.
 *
 * @param url `nats://host:port`, `host:port` or `host` (port defaults to 4222). Only the first
 *   server of a comma-separated list is probed.
 * @param timeoutMs overall timeout in milliseconds, default `2000`.
 * @returns `true` if an `INFO` line arrived in time, else `false`. Never throws.
 */
export async function isNatsReachable(url: string, timeoutMs = 2000): Promise<boolean> {
  let target: { host: string; port: number };
  try {
    target = parseNatsUrl(url.split(",")[0]?.trim() ?? url);
  } catch {
    return false;
  }
  return probeTcp(target.host, target.port, timeoutMs, {
    // the server speaks first: an `INFO {...}` line
    verdict: (buf) => (buf.length < 5 ? undefined : !buf.startsWith("INFO") ? false : buf.includes("\n") ? true : undefined),
  });
}

/**
 * Opens a TCP connection to `host:port`, optionally writes `send` once connected, and reads until `verdict` of what
 * arrived so far says true or false (undefined: keep reading). A timeout, an error or a close before a verdict is
 * `false`. Used to check that a server of a known protocol answers (NATS `INFO`, Redis `+PONG`).
 * @param timeoutMs overall timeout, in milliseconds.
 * @returns the verdict. Never throws.
 */
export function probeTcp(
  host: string,
  port: number,
  timeoutMs: number,
  opts: { send?: string; verdict: (received: string) => boolean | undefined },
): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let buf = "";
    let done = false;
    const socket = net.connect({ host, port });
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.setEncoding("utf8");
    if (opts.send !== undefined) socket.on("connect", () => socket.write(opts.send!));
    socket.on("data", (chunk: string) => {
      buf += chunk;
      const v = opts.verdict(buf);
      if (v !== undefined) finish(v);
    });
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
  });
}

/**
 * Find a free TCP port by binding a server on port 0 and closing it again.
 * (Racy by nature: another process may take the port before it is used.)
 *
 * @param host bind host, default `"127.0.0.1"`.
 * @returns the port number.
 */
export async function getFreePort(host = "127.0.0.1"): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("could not determine a free port"))));
    });
  });
}

/** Bounded buffer of the last output lines of a child process. */
class LineTail {
  #lines: string[] = [];
  #partial = "";

  push(chunk: string): void {
    const parts = (this.#partial + chunk).split("\n");
    this.#partial = parts.pop() ?? "";
    for (const line of parts) {
      this.#lines.push(line);
      if (this.#lines.length > LOG_TAIL_LINES) this.#lines.shift();
    }
  }

  text(): string {
    const all = this.#partial === "" ? this.#lines : [...this.#lines, this.#partial];
    return all.join("\n");
  }
}

interface Tracked {
  child: ChildProcess;
  dirs: string[];
}

/** Servers still running; killed synchronously if this process exits without stopping them. */
const live = new Set<Tracked>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const t of live) {
      try {
        t.child.kill("SIGKILL");
      } catch {
        // already gone
      }
      for (const d of t.dirs) {
        try {
          rmSync(d, { recursive: true, force: true });
        } catch {
          // best effort
        }
      }
    }
    live.clear();
  });
}

function confString(s: string): string {
  return JSON.stringify(s);
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function validatePort(name: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new NatsServerError("NATS_SERVER_START_FAILED", `${name} must be an integer in 0..65535, got ${port}`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait for `p` at most `ms` milliseconds; `true` if it settled in time. The timer is always cleared. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Read `<name>_<pid>.ports` written by nats-server into `dir`, if present. */
async function readPortsFile(dir: string, pid: number): Promise<{ nats?: string[]; websocket?: string[] } | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const file = names.find((n) => n.endsWith(`_${pid}.ports`));
  if (file === undefined) return undefined;
  try {
    return JSON.parse(await readFile(path.join(dir, file), "utf8")) as { nats?: string[]; websocket?: string[] };
  } catch {
    return undefined; // partially written; retry
  }
}

function portOf(url: string | undefined): number | undefined {
  if (url === undefined) return undefined;
  try {
    const p = Number(new URL(url).port);
    return p > 0 ? p : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Start a local nats-server with JetStream enabled (and optionally a WebSocket listener) and wait
 * until it accepts clients.
 *
 * @param opts see {@link NatsServerOptions}; all optional.
 * @returns a {@link NatsServerHandle}; call `stop()` when done.
 * @throws {NatsServerError} code `NATS_SERVER_NOT_FOUND` if the binary cannot be resolved (message
 *   explains how to install it); code `NATS_SERVER_START_FAILED` if the process fails to spawn, exits
 *   early, or is not ready within `startTimeoutMs` (message and `logTail` include its last output).
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const host = opts.host ?? "127.0.0.1";
  const requestedPort = opts.port ?? 0;
  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const log = opts.logger;
  validatePort("port", requestedPort);
  if (opts.websocketPort !== undefined) validatePort("websocketPort", opts.websocketPort);

  const binary = await findNatsServerBinary(opts.binary);
  if (binary === undefined) {
    const what = opts.binary ?? process.env["NATS_SERVER_BIN"] ?? "nats-server";
    const where = what.includes("/") ? "no executable file there" : `looked on PATH and in ${FALLBACK_DIRS.join(", ")}`;
    throw new NatsServerError(
      "NATS_SERVER_NOT_FOUND",
      `nats-server binary not found: ${JSON.stringify(what)} (${where}). ${NATS_SERVER_INSTALL_HINT}`,
    );
  }

  const workDir = await mkdtemp(path.join(os.tmpdir(), "trellis-nats-"));
  const storeDir = opts.storeDir === undefined ? path.join(workDir, "store") : path.resolve(opts.storeDir);
  const configFile = path.join(workDir, "nats-server.conf");
  const ownedDirs = [workDir];
  const cleanup = async (): Promise<void> => {
    for (const d of ownedDirs) await rm(d, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    await mkdir(storeDir, { recursive: true });
    const lines = [
      "# Generated by trellis src/lattice/nats-server.ts",
      `listen: ${confString(hostPort(host, requestedPort === 0 ? -1 : requestedPort))}`,
      `jetstream {`,
      `  store_dir: ${confString(storeDir)}`,
      `}`,
    ];
    if (opts.websocketPort !== undefined) {
      const wsPort = opts.websocketPort === 0 ? -1 : opts.websocketPort;
      lines.push(`websocket {`, `  listen: ${confString(hostPort(host, wsPort))}`, `  no_tls: true`, `}`);
    }
    if (opts.accountFiles?.length) {
      lines.push("accounts {", ...opts.accountFiles.map((f) => `  include ${confString(path.relative(workDir, path.resolve(f)))}`), "}");
    }
    lines.push(...(opts.extraConfig ?? []));
    await writeFile(configFile, lines.join("\n") + "\n", "utf8");
  } catch (err) {
    await cleanup();
    throw new NatsServerError("NATS_SERVER_START_FAILED", `cannot prepare nats-server config: ${String(err)}`, {
      cause: err,
    });
  }

  const tail = new LineTail();
  log?.debug("starting nats-server", { binary, configFile, storeDir });
  const child = spawn(binary, ["-c", configFile, "--ports_file_dir", workDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let spawnError: Error | undefined;
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once("error", (err) => {
      spawnError = err;
      if (child.pid === undefined) {
        exited = { code: null, signal: null };
        resolve();
      }
    });
  });
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (c: string) => tail.push(c));
  child.stderr?.on("data", (c: string) => tail.push(c));

  // An own store dir lives inside workDir, so removing workDir removes it too.
  const tracked: Tracked = { child, dirs: ownedDirs };
  live.add(tracked);
  installExitHook();
  if (opts.keepProcessAlive !== true) {
    child.unref();
    for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }

  const killNow = async (): Promise<void> => {
    if (exited === undefined) {
      child.kill("SIGKILL");
      await settlesWithin(exitPromise, 2000);
    }
    live.delete(tracked);
    await cleanup();
  };

  const fail = async (why: string, cause?: unknown): Promise<never> => {
    await killNow();
    const logText = tail.text();
    throw new NatsServerError(
      "NATS_SERVER_START_FAILED",
      `nats-server (${binary}) ${why}` + (logText === "" ? "" : `\n--- nats-server output (tail) ---\n${logText}`),
      { cause, logTail: logText },
    );
  };

  // Wait for readiness. The ports file is written by *our* pid once its listeners are up (so a
  // different server already bound to a fixed port cannot fool us); then INFO on the client port.
  const deadline = Date.now() + timeoutMs;
  let clientPort: number | undefined;
  let wsPort: number | undefined;
  let ready = false;
  while (!ready) {
    if (spawnError !== undefined && child.pid === undefined) {
      return fail(`failed to spawn: ${spawnError.message}`, spawnError);
    }
    if (exited !== undefined) {
      return fail(`exited during startup (code ${String(exited.code)}, signal ${String(exited.signal)})`);
    }
    if (Date.now() > deadline) return fail(`not ready within ${timeoutMs} ms`);
    if (clientPort === undefined) {
      const ports = await readPortsFile(workDir, child.pid ?? -1);
      clientPort = portOf(ports?.nats?.[0]);
      wsPort = portOf(ports?.websocket?.[0]);
      if (clientPort !== undefined && opts.websocketPort !== undefined && wsPort === undefined) {
        return fail(`started without the requested WebSocket listener (ports file: ${JSON.stringify(ports)})`);
      }
    }
    if (clientPort !== undefined) {
      const probeHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
      const probeMs = Math.min(1000, Math.max(50, deadline - Date.now()));
      ready = await isNatsReachable(`nats://${hostPort(probeHost, clientPort)}`, probeMs);
    }
    if (!ready) await sleep(25);
  }

  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  const port = clientPort as number;
  const url = `nats://${hostPort(urlHost, port)}`;
  const websocketUrl = wsPort === undefined ? undefined : `ws://${hostPort(urlHost, wsPort)}`;
  const pid = child.pid as number;
  log?.info("nats-server ready", { url, websocketUrl, pid, storeDir });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exited === undefined) {
        child.kill("SIGTERM");
        const timedOut = !(await settlesWithin(exitPromise, STOP_GRACE_MS));
        if (timedOut && exited === undefined) {
          log?.warn("nats-server did not exit after SIGTERM; sending SIGKILL", { pid });
        }
      }
      await killNow();
      log?.debug("nats-server stopped", { pid });
    })();
    return stopping;
  };

  const handle: NatsServerHandle = {
    url,
    port,
    storeDir,
    configFile,
    pid,
    logTail: () => tail.text(),
    stop,
    ...(websocketUrl === undefined ? {} : { websocketUrl }),
  };
  return handle;
}
