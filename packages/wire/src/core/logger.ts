/**
 * The structured logger interface every Trellis module takes by injection, and a pino-backed default.
 * @module
 */
import { pino } from "pino";

/** Structured metadata attached to a log record. */
export type LogMeta = Record<string, unknown>;

/** A structured logger. Records carry a `component` field (`host`, `ctl`, `link`, `runtime`, `provider`…). */
export interface Logger {
  trace(message: string, meta?: LogMeta): void;
  debug(message: string, meta?: LogMeta): void;
  info(message: string, meta?: LogMeta): void;
  warn(message: string, meta?: LogMeta): void;
  error(message: string, meta?: LogMeta): void;
  /** A logger whose records all carry `bindings`. */
  child(bindings: LogMeta): Logger;
}

/** Log levels, lowest first. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "silent";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. @default "info" */
  level?: LogLevel;
  /** Write one JSON object per line (true) or readable text (false). @default true */
  json?: boolean;
  /** Where records go: a writable with `write(string)`. @default process.stderr */
  destination?: { write(msg: string): unknown };
  /** Fields on every record. */
  base?: LogMeta;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

type PinoLike = {
  [K in "trace" | "debug" | "info" | "warn" | "error"]: (obj: LogMeta, msg: string) => void;
} & { child(b: LogMeta): PinoLike };

function wrap(p: PinoLike): Logger {
  return {
    trace: (m, meta) => p.trace(meta ?? {}, m),
    debug: (m, meta) => p.debug(meta ?? {}, m),
    info: (m, meta) => p.info(meta ?? {}, m),
    warn: (m, meta) => p.warn(meta ?? {}, m),
    error: (m, meta) => p.error(meta ?? {}, m),
    child: (b) => wrap(p.child(b)),
  };
}

function textLine(obj: Record<string, unknown>): string {
  const { level, time, msg, ...rest } = obj;
  const lv = typeof level === "number" ? (pino.levels.labels[level] ?? String(level)) : String(level);
  const fields = Object.entries(rest)
    .filter(([k]) => k !== "pid" && k !== "hostname")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  const t = typeof time === "number" ? new Date(time).toISOString().slice(11, 23) : "";
  return `${t} ${lv.toUpperCase().padEnd(5)} ${String(msg ?? "")}${fields ? `  ${fields}` : ""}\n`;
}

/** A pino-backed {@link Logger}. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const dest = options.destination ?? process.stderr;
  const json = options.json ?? true;
  const stream = json
    ? { write: (s: string) => dest.write(s) }
    : { write: (s: string) => dest.write(textLine(JSON.parse(s) as Record<string, unknown>)) };
  const p = pino({ level: options.level ?? "info", base: options.base ?? {} }, stream);
  return wrap(p as unknown as PinoLike);
}
