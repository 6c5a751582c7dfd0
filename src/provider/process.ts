/**
 * One operating-system process of a capability provider: spawned with a cleared environment, given its host data on
 * stdin (reference §4.1 step 5), its stdout and stderr forwarded line by line to the host log.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import type { Logger, LogLevel } from "../core/logger.ts";
import type { ProviderCommand } from "./ref.ts";

/** How a provider process ended. */
export interface ProcessExit {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
}

/** Lines kept for error messages. */
const TAIL_LINES = 20;
/** Longest line forwarded to the log, in characters (longer lines are cut). */
const MAX_LINE = 16 * 1024;

const PINO_LEVELS: Record<number, Exclude<LogLevel, "silent">> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "error" };

/** A running provider process. Create it with {@link ProviderProcess.spawn}. */
export class ProviderProcess {
  readonly #child: ChildProcess;
  readonly #tail: string[] = [];
  readonly exited: Promise<ProcessExit>;
  /** When the process was spawned (ms since the epoch). */
  readonly startedAt = Date.now();
  #exit: ProcessExit | undefined;

  private constructor(child: ChildProcess, logger: Logger, onLine: ((stream: "stdout" | "stderr", line: string) => void) | undefined) {
    this.#child = child;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
    for (const [name, stream] of [["stdout", child.stdout], ["stderr", child.stderr]] as const) {
      if (stream) this.#pipe(stream, name, logger, onLine);
    }
  }

  /**
   * Spawns `cmd` with exactly `env`, writes `hostData` to its stdin and closes stdin.
   * @param onLine also called with every output line (tests, conformance traces).
   * @returns once the process has a pid.
   * @throws TrellisError `PROVIDER_ERROR` when the process cannot be spawned (missing executable, no permission).
   */
  static async spawn(
    cmd: ProviderCommand,
    env: Record<string, string>,
    hostData: string,
    logger: Logger,
    onLine?: (stream: "stdout" | "stderr", line: string) => void,
  ): Promise<ProviderProcess> {
    const child = spawn(cmd.command, cmd.args, { env, stdio: ["pipe", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new TrellisError(ErrorCode.Provider, `cannot spawn ${cmd.command}: ${err.message}`, { cause: err }));
      child.once("error", onError);
      child.once("spawn", () => {
        child.off("error", onError);
        resolve();
      });
    });
    child.on("error", (err) => logger.warn("provider process error", { error: err.message }));
    const p = new ProviderProcess(child, logger, onLine);
    child.stdin?.on("error", (err) => logger.debug("provider stdin closed early", { error: err.message }));
    child.stdin?.end(hostData);
    return p;
  }

  #pipe(stream: Readable, name: "stdout" | "stderr", logger: Logger, onLine: ((s: "stdout" | "stderr", l: string) => void) | undefined): void {
    let buf = "";
    stream.setEncoding("utf8");
    const emit = (raw: string) => {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (!line) return;
      this.#tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
      if (this.#tail.length > TAIL_LINES) this.#tail.shift();
      try {
        onLine?.(name, line);
      } catch (err) {
        logger.debug("provider output listener failed", { error: String(err) });
      }
      forward(logger, name, line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
    };
    stream.on("data", (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        emit(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      if (buf.length > MAX_LINE) {
        emit(buf);
        buf = "";
      }
    });
    stream.on("end", () => {
      if (buf) emit(buf);
      buf = "";
    });
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** How it ended, once it has. */
  get exit(): ProcessExit | undefined {
    return this.#exit;
  }

  /** The last output lines (stdout and stderr interleaved), for error messages. */
  tail(): string[] {
    return [...this.#tail];
  }

  /** Sends `signal` unless the process has already exited. */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.#exit === undefined) this.#child.kill(signal);
  }
}

/** Forwards one output line: a JSON log record keeps its level and message, anything else is logged at info. */
function forward(logger: Logger, stream: "stdout" | "stderr", line: string): void {
  if (line.startsWith("{")) {
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      const { level, msg, time: _t, pid: _p, hostname: _h, ...rest } = rec;
      const lv = typeof level === "number" ? PINO_LEVELS[level] : typeof level === "string" ? (level.toLowerCase() as LogLevel) : undefined;
      if (typeof msg === "string" && lv && lv !== "silent" && lv in logger) {
        logger[lv](msg, { stream, ...rest });
        return;
      }
    } catch {
      // not JSON: log the line as is
    }
  }
  logger.info(line, { stream });
}

/** A one-line description of how a process ended, with its last output lines. */
export function describeExit(exit: ProcessExit, tail: readonly string[]): string {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
  const last = tail.slice(-5).join(" | ");
  return last ? `${how}; last output: ${last}` : how;
}
