/**
 * What every CLI command gets: the global options, a lazily connected control client, and output in text or JSON.
 * Commands are thin: they call the library (`CtlClient`, `Host`) and return `{ text, json }`.
 * @module
 */
import type { Command } from "commander";
import { CtlClient } from "../control/client.ts";
import { InvalidArgumentError, TrellisError } from "../core/errors.ts";
import { type NatsAuth, parseNatsAuth } from "../core/connection.ts";
import { type Env, ENV, NATS_AUTH_FLAGS, withWasmcloudFallbacks } from "./env.ts";

/** Output format of every command. */
export type OutputFormat = "text" | "json";

/** Global options, after flags, their `TRELLIS_*` twins and the wash / wasmCloud fall-backs (env.ts). */
export interface GlobalOptions {
  lattice: string;
  natsUrl: string;
  timeoutMs: number;
  output: OutputFormat;
  /** Credentials and TLS from `--nats-creds`, `--nats-nkey`, `--nats-user`/`--nats-password`, `--nats-token`, `--nats-tls-*` (or `TRELLIS_NATS_*`). */
  natsAuth: NatsAuth;
}

/** Reads the NATS credential / TLS flags (flag over env twin) into validated auth options. @throws InvalidArgumentError */
export function natsAuthFrom(opts: Record<string, unknown>, env: Env): NatsAuth {
  const out: Record<string, string> = {};
  for (const f of NATS_AUTH_FLAGS) {
    const v = opts[f.key] ?? env[ENV[f.key]];
    if (typeof v === "string" && v !== "") out[f.field] = v;
  }
  try {
    return parseNatsAuth(out, "nats");
  } catch (err) {
    throw inFlagTerms(err);
  }
}

const FLAG_OF: Record<string, string> = Object.fromEntries(NATS_AUTH_FLAGS.map((f) => [f.field, f.flag.split(" ")[0]!]));

/** Rewrites an InvalidArgumentError about a `natsAuth` field (`nats.user`, `nkeyFile`, …) in terms of its CLI flag; other errors unchanged. */
export function inFlagTerms(err: unknown): unknown {
  if (!(err instanceof InvalidArgumentError)) return err;
  const field = err.field.replace(/^nats\./, "");
  const flag = FLAG_OF[field];
  if (!flag) return err;
  const message = err.message.replace(/\b(?:nats\.)?(credsFile|nkeyFile|user|password|token|tlsCaFile|tlsCertFile|tlsKeyFile)\b/g, (m, k: string) => FLAG_OF[k] ?? m);
  return new InvalidArgumentError(flag, message);
}

/** What a command prints: `text` for people, `json` for `--output json`. */
export interface CommandResult {
  text: string;
  json: unknown;
}

/** The context passed to every command module's `register…Commands(program, ctx)`. */
export interface CliContext {
  /**
   * The environment snapshot taken at start (read only here and in env.ts), with unset `TRELLIS_*` twins filled from
   * their wash / wasmCloud fall-backs (`WASMCLOUD_LATTICE`, `WASMCLOUD_CTL_HOST`/`_PORT`, …; env.ts).
   */
  readonly env: Env;
  /** Global options (valid once commander has parsed them). */
  globals(): GlobalOptions;
  /** A control client for the global lattice and NATS URL, connected on first use and closed at exit. */
  client(): Promise<CtlClient>;
  /** Prints a result in the chosen format. */
  print(result: CommandResult): void;
  /** Wraps a command action: awaits it, prints its result, maps errors to one line on stderr and exit code 1. */
  action<A extends unknown[]>(fn: (...args: A) => Promise<CommandResult | undefined>): (...args: A) => Promise<void>;
}

/** Parses a positive integer option. @throws InvalidArgumentError naming the option. */
export function parsePositiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(name, `${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** Parses `k=v` pairs. @throws InvalidArgumentError naming `what` for a pair without `=`. */
export function parsePairs(what: string, pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf("=");
    if (i <= 0) throw new InvalidArgumentError(what, `${what} must be KEY=VALUE, got ${JSON.stringify(p)}`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/**
 * The NATS URL from wash's `--ctl-host` / `--ctl-port` flags (either may be left out: 127.0.0.1, 4222), or undefined
 * when neither is given.
 */
export function ctlUrl(host: string | undefined, port: string | undefined): string | undefined {
  if (host === undefined && port === undefined) return undefined;
  if (port !== undefined) parsePositiveInt("--ctl-port", port);
  return `nats://${host ?? "127.0.0.1"}:${port ?? "4222"}`;
}

/**
 * Builds the CLI context over the root command. `rawEnv` is the process environment snapshot; wash / wasmCloud
 * variables in it fill unset `TRELLIS_*` twins, and each one that cannot be honoured gives one warning line on stderr,
 * written here, once (env.ts `withWasmcloudFallbacks`).
 */
export function createContext(program: Command, rawEnv: Env): CliContext & { close(): Promise<void> } {
  const { env, warnings } = withWasmcloudFallbacks(rawEnv);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  let client: Promise<CtlClient> | undefined;
  const globals = (): GlobalOptions => {
    const o = program.opts<{ lattice?: string; natsUrl?: string; ctlHost?: string; ctlPort?: string; timeoutMs?: string; output?: string }>();
    const output = (o.output ?? env[ENV.output] ?? "text") as OutputFormat;
    if (output !== "text" && output !== "json") throw new InvalidArgumentError("output", `--output must be text or json, got ${JSON.stringify(output)}`);
    return {
      lattice: o.lattice ?? env[ENV.lattice] ?? "default",
      natsUrl: o.natsUrl ?? ctlUrl(o.ctlHost, o.ctlPort) ?? env[ENV.natsUrl] ?? "nats://127.0.0.1:4222",
      timeoutMs: parsePositiveInt("--timeout-ms", o.timeoutMs ?? env[ENV.timeoutMs] ?? "2000"),
      output,
      natsAuth: natsAuthFrom(o, env),
    };
  };
  const ctx: CliContext & { close(): Promise<void> } = {
    env,
    globals,
    client: () => {
      const g = globals();
      client ??= CtlClient.connect({ natsUrl: g.natsUrl, lattice: g.lattice, timeoutMs: g.timeoutMs, natsAuth: g.natsAuth }).catch((err: unknown) => {
        throw inFlagTerms(err);
      });
      return client;
    },
    print: (r) => {
      let fmt: OutputFormat = "text";
      try {
        fmt = globals().output;
      } catch {
        // fall back to text
      }
      process.stdout.write(fmt === "json" ? `${JSON.stringify(r.json, null, 2)}\n` : r.text.endsWith("\n") || !r.text ? r.text : `${r.text}\n`);
    },
    action:
      (fn) =>
      async (...args) => {
        try {
          const r = await fn(...args);
          if (r) ctx.print(r);
        } catch (err) {
          const e = TrellisError.from(err);
          let json = false;
          try {
            json = globals().output === "json";
          } catch {
            // text
          }
          if (json) process.stdout.write(`${JSON.stringify({ success: false, error: e.toWire() }, null, 2)}\n`);
          process.stderr.write(`error: ${e.message}\n`);
          process.exitCode = 1;
        }
      },
    close: async () => {
      if (client) await (await client.catch(() => undefined))?.close();
    },
  };
  return ctx;
}
