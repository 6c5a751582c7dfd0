/**
 * `trellis up` (run a host, starting a local nats-server with JetStream when none answers, as `wash up` does — on
 * loopback only, WebSocket off unless `--nats-websocket-port`, credentials required when the host has them or an
 * accounts file is given; docs/security.md) and `trellis down` (stop a host started with `--detached`).
 * @module
 */
import { otelEnvOptions } from "../../tracing/settings.ts";
import { spawn } from "node:child_process";
import { openSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { Host } from "../../host/host.ts";
import type { HostOptions } from "../../host/options.ts";
import { parseAllowedPathList } from "../../policy/allow.ts";
import { type DefaultWorkloadOptions, defaultWorkloads } from "../../host/default-workloads.ts";
import { type LogLevel, createLogger } from "../../core/logger.ts";
import { InvalidArgumentError, TrellisError, ErrorCode } from "../../core/errors.ts";
import { type NatsAuth, redactUrl, resolveNatsConnection } from "../../core/connection.ts";
import { fromSeed } from "@nats-io/nkeys";
import {
  NATS_SERVER_INSTALL_HINT,
  type NatsServerHandle,
  findNatsServerBinary,
  getFreePort,
  isNatsReachable,
  startNatsServer,
} from "../../lattice/nats-server.ts";
import { type CliContext, inFlagTerms, parsePairs, parsePositiveInt } from "../context.ts";
import { addOciFlags, OCI_ENV, ociOptionsFrom, type OciFlags } from "./oci.ts";
import { type Env, ENV, envLabels } from "../env.ts";

interface UpFlags {
  hostSeed?: string;
  friendlyName?: string;
  label?: string[];
  heartbeatIntervalMs?: string;
  rpcTimeoutMs?: string;
  maxControlPayloadBytes?: string;
  cacheDir?: string;
  logLevel?: string;
  logFormat?: string;
  natsAutostart?: boolean;
  natsStoreDir?: string;
  natsWebsocketPort?: string;
  natsServerAccounts?: string;
  detached?: boolean;
  reconciler?: boolean;
  livenessIntervalMs?: string;
  reconcilerLeaseTtlMs?: string;
  requireSigned?: boolean;
  allowedIssuer?: string[];
  secretsTopic?: string;
  maxUploads?: string;
  maxUploadBytes?: string;
  maxCallTimeoutMs?: string;
  wadm?: boolean;
  kvReplicas?: string;
  jsDomain?: string;
  allowFileLoad?: boolean;
  allowedPath?: string[];
  policyTopic?: string;
  policyChangesTopic?: string;
  policyTimeoutMs?: string;
  policyInvocations?: boolean;
  tracing?: boolean;
  otlpEndpoint?: string;
  metricsListen?: string;
}

/**
 * Tracing and metrics (ADR 0025, 0026): `--no-tracing`, `--otlp-endpoint`, `--metrics-listen` over their `TRELLIS_*`
 * twins, and the standard `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used only without
 * `--otlp-endpoint`/`TRELLIS_OTLP_ENDPOINT`) and `OTEL_SERVICE_NAME`.
 */
function observeOptions(flags: UpFlags, env: Env): Pick<HostOptions, "tracing" | "otlpEndpoint" | "otlpTracesEndpoint" | "serviceName" | "metricsListen"> {
  const tracing = flags.tracing === false ? false : envBool(env, ENV.tracing);
  const own = flags.otlpEndpoint ?? env[ENV.otlpEndpoint];
  const otel = otelEnvOptions(env);
  const metricsListen = flags.metricsListen ?? env[ENV.metricsListen];
  return {
    ...(tracing === undefined ? {} : { tracing }),
    ...(own ? { otlpEndpoint: own } : { ...(otel.otlpEndpoint ? { otlpEndpoint: otel.otlpEndpoint } : {}), ...(otel.otlpTracesEndpoint ? { otlpTracesEndpoint: otel.otlpTracesEndpoint } : {}) }),
    ...(otel.serviceName ? { serviceName: otel.serviceName } : {}),
    ...(metricsListen ? { metricsListen } : {}),
  };
}

/**
 * Reads a boolean environment twin: `true`/`1`/`yes` or `false`/`0`/`no` (any case); undefined when unset or empty.
 * @throws InvalidArgumentError naming the variable for anything else.
 */
function envBool(env: Env, name: string): boolean | undefined {
  const v = env[name]?.trim().toLowerCase();
  if (v === undefined || v === "") return undefined;
  if (["true", "1", "yes"].includes(v)) return true;
  if (["false", "0", "no"].includes(v)) return false;
  throw new InvalidArgumentError(name, `${name} must be true or false, got ${JSON.stringify(env[name])}`);
}

/**
 * What the host may load and the policy service (docs/security.md): `--allow-file-load`, `--allowed-path` (a flag
 * replaces the variable's list), `--policy-topic`, `--policy-changes-topic`, `--policy-timeout-ms`,
 * `--no-policy-invocations`, each over its `TRELLIS_*` twin.
 */
function admissionOptions(flags: UpFlags, env: Env): Pick<HostOptions, "allowFileLoad" | "allowedPaths" | "policyTopic" | "policyChangesTopic" | "policyTimeoutMs" | "policyInvocations"> {
  const allowFileLoad = flags.allowFileLoad ?? envBool(env, ENV.allowFileLoad);
  const allowedPaths = flags.allowedPath ?? parseAllowedPathList(env[ENV.allowedPath]);
  const policyTopic = flags.policyTopic ?? env[ENV.policyTopic];
  const policyChangesTopic = flags.policyChangesTopic ?? env[ENV.policyChangesTopic];
  const timeout = flags.policyTimeoutMs ?? env[ENV.policyTimeoutMs];
  // commander sets `policyInvocations: true` by default for `--no-policy-invocations`; only `false` is a choice.
  const policyInvocations = flags.policyInvocations === false ? false : envBool(env, ENV.policyInvocations);
  return {
    ...(allowFileLoad === undefined ? {} : { allowFileLoad }),
    allowedPaths,
    ...(policyTopic ? { policyTopic } : {}),
    ...(policyChangesTopic ? { policyChangesTopic } : {}),
    ...(timeout === undefined || timeout === "" ? {} : { policyTimeoutMs: parsePositiveInt("--policy-timeout-ms", timeout) }),
    ...(policyInvocations === undefined ? {} : { policyInvocations }),
  };
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Numeric workload flags of `trellis up`: flag, env twin, where the value goes, and what it means. */
const WORKLOAD_FLAGS = [
  { flag: "--provider-health-interval-ms", key: "providerHealthIntervalMs", to: ["providers", "healthIntervalMs"], help: "interval of provider health checks, ms (default 30000)" },
  { flag: "--provider-first-health-check-ms", key: "providerFirstHealthCheckMs", to: ["providers", "firstHealthCheckMs"], help: "first provider health check after a (re)start, ms (default 1000)" },
  { flag: "--provider-shutdown-delay-ms", key: "providerShutdownDelayMs", to: ["providers", "shutdownDelayMs"], help: "wait after a provider's shutdown request before SIGKILL, ms (default 2000)" },
  { flag: "--provider-max-restarts", key: "providerMaxRestarts", to: ["providers", "maxRestarts"], help: "crashes in a row before a provider is marked failed (default 10)" },
  { flag: "--component-max-memory-mb", key: "componentMaxMemoryMb", to: ["components", "maxMemoryMb"], help: "linear memory cap per component instance, MiB (default 256)" },
  { flag: "--component-max-workers", key: "componentMaxWorkers", to: ["components", "maxWorkers"], help: "worker threads components run in (default max(2, CPUs))" },
  { flag: "--component-workers", key: "componentWorkers", to: ["components", "componentWorkers"], help: "most worker threads one component's instances are spread over; 1: no spread (default: half the CPUs, at least 1)" },
  { flag: "--component-worker-initial-heap-mb", key: "componentWorkerInitialHeapMb", to: ["components", "workerInitialHeapMb"], help: "initial old-generation size of a component worker's V8 heap, MiB; no full GC until it is outgrown (default 128; 0: V8's own sizing)", zero: true },
  { flag: "--component-call-timeout-ms", key: "componentCallTimeoutMs", to: ["components", "callTimeoutMs"], help: "execution limit of one component call, ms (default --rpc-timeout-ms)" },
] as const;

/** Keys of the numeric workload flags (`componentWorkers`, …). */
export type WorkloadFlagKey = (typeof WORKLOAD_FLAGS)[number]["key"];

/** Parses a whole number ≥ 0. @throws InvalidArgumentError naming `name`. */
function parseNonNegativeInt(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(name, `${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * Reads the numeric workload flags of `trellis up` (a flag wins over its `TRELLIS_*` env twin) into `defaultWorkloads`
 * options. `flags` is keyed by the flag's camelCase key (`componentWorkers` for `--component-workers`).
 * @throws InvalidArgumentError naming the flag when a value is not a whole number in range.
 */
export function workloadOptions(flags: Partial<Record<WorkloadFlagKey, string>>, env: Env): DefaultWorkloadOptions {
  const out: { components: Record<string, number>; providers: Record<string, number> } = { components: {}, providers: {} };
  for (const f of WORKLOAD_FLAGS) {
    const raw = flags[f.key] ?? env[ENV[f.key]];
    if (raw === undefined) continue;
    out[f.to[0]][f.to[1]] = "zero" in f ? parseNonNegativeInt(f.flag, raw) : parsePositiveInt(f.flag, raw);
  }
  return out;
}

/** `$TRELLIS_DATA_DIR`, else `$XDG_DATA_HOME/trellis`, else `~/.local/share/trellis`. */
export function dataDir(env: Env): string {
  return env[ENV.dataDir] ?? join(env.XDG_DATA_HOME ?? join(homedir(), ".local", "share"), "trellis");
}

function stateFile(env: Env, lattice: string): string {
  return join(dataDir(env), `up-${lattice}.json`);
}

function isLoopback(url: string): boolean {
  try {
    const h = new URL(url.split(",")[0]?.trim() ?? url).hostname;
    return h === "127.0.0.1" || h === "localhost" || h === "[::1]" || h === "::1";
  } catch {
    return false;
  }
}

async function portFree(port: number): Promise<boolean> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/**
 * The auth lines of a nats-server that `trellis up` starts: the accounts file when given (`--nats-server-accounts`),
 * else the host's own credentials as the server's only user (so the client and WebSocket listeners both demand them),
 * else none (an anonymous, loopback-only server).
 * @throws InvalidArgumentError for a `.creds` file without an accounts file (JWT users need an operator set-up).
 */
export async function startedServerAuth(auth: NatsAuth, accountsFile: string | undefined): Promise<{ accountFiles?: string[]; extraConfig?: string[] }> {
  if (accountsFile) return { accountFiles: [accountsFile] };
  if (auth.credsFile) {
    throw new InvalidArgumentError("--nats-creds", "trellis up cannot start a nats-server for a .creds (JWT) user; start your own server in operator mode, or use --nats-nkey with --nats-server-accounts (trellis lattice secure init)");
  }
  const q = JSON.stringify;
  if (auth.nkeyFile) {
    const data = await resolveNatsConnection("nats://127.0.0.1", { nkeyFile: auth.nkeyFile });
    const pub = fromSeed(new TextEncoder().encode(data.seed!)).getPublicKey();
    return { extraConfig: ["authorization {", `  users: [ { nkey: ${q(pub)} } ]`, "}"] };
  }
  if (auth.user !== undefined) return { extraConfig: ["authorization {", `  user: ${q(auth.user)}`, `  password: ${q(auth.password ?? "")}`, "}"] };
  if (auth.token !== undefined) return { extraConfig: ["authorization {", `  token: ${q(auth.token)}`, "}"] };
  return {};
}

async function ensureNats(natsUrl: string, flags: UpFlags, env: Env, auth: NatsAuth, log: (m: string) => void): Promise<NatsServerHandle | undefined> {
  if (await isNatsReachable(natsUrl, 1000)) return undefined;
  const autostart = flags.natsAutostart !== false && env[ENV.natsAutostart] !== "false";
  if (!autostart || !isLoopback(natsUrl)) {
    throw new TrellisError(ErrorCode.Lattice, `nothing answers at ${natsUrl}; start a NATS server with JetStream (nats-server -js) there`);
  }
  if (!(await findNatsServerBinary())) {
    throw new TrellisError(ErrorCode.Lattice, `nothing answers at ${natsUrl} and nats-server is not installed: ${NATS_SERVER_INSTALL_HINT}`);
  }
  const port = Number(new URL(natsUrl.split(",")[0]?.trim() ?? natsUrl).port || 4222);
  const wsFlag = flags.natsWebsocketPort ?? env[ENV.natsWebsocketPort];
  let websocketPort = wsFlag === undefined ? undefined : Number(wsFlag);
  if (websocketPort !== undefined && (!Number.isInteger(websocketPort) || websocketPort < 0 || websocketPort > 65535)) {
    throw new InvalidArgumentError("--nats-websocket-port", "--nats-websocket-port must be a port number");
  }
  if (websocketPort !== undefined && websocketPort !== 0 && !(await portFree(websocketPort))) websocketPort = await getFreePort();
  const storeDir = flags.natsStoreDir ?? env[ENV.natsStoreDir] ?? join(dataDir(env), "nats");
  await mkdir(storeDir, { recursive: true });
  const serverAuth = await startedServerAuth(auth, flags.natsServerAccounts ?? env[ENV.natsServerAccounts]);
  const server = await startNatsServer({
    host: "127.0.0.1",
    port,
    storeDir,
    ...(websocketPort === undefined ? {} : { websocketPort }),
    ...serverAuth,
    keepProcessAlive: true,
  });
  const secured = serverAuth.accountFiles || serverAuth.extraConfig ? "credentials required" : "no credentials";
  log(`started nats-server ${server.url} (loopback only, ${secured}, JetStream in ${storeDir}, WebSocket ${server.websocketUrl ?? "off"})`);
  return server;
}

/** `1`, `true`, `yes`, `on` (any case) → true. */
function truthy(v: string | undefined): boolean {
  return v !== undefined && ["1", "true", "yes", "on"].includes(v.trim().toLowerCase());
}

/** Registers `up` and `down`. */
export function registerUpCommands(program: Command, ctx: CliContext): void {
  const up = program
    .command("up")
    .description("run a host on the lattice; starts a local nats-server (loopback, JetStream) when none answers")
    .option("--host-seed <seed>", `server nkey seed fixing the host id (${ENV.hostSeed})`)
    .option("--friendly-name <name>", `friendly name (${ENV.friendlyName})`)
    .option("-l, --label <k=v>", "host label (repeat; TRELLIS_LABEL_k=v)", collect)
    .option("--heartbeat-interval-ms <ms>", `heartbeat interval, ms (${ENV.heartbeatIntervalMs}; default 30000)`)
    .option("--rpc-timeout-ms <ms>", `default timeout of lattice calls, ms (${ENV.rpcTimeoutMs}; default 2000)`)
    .option("--max-control-payload-bytes <n>", `largest control request, bytes (${ENV.maxControlPayloadBytes})`)
    .option("--cache-dir <dir>", `cache directory (${ENV.cacheDir})`)
    .option("--log-level <level>", `trace|debug|info|warn|error (${ENV.logLevel}; default info)`)
    .option("--log-format <fmt>", `json|text (${ENV.logFormat}; default text)`)
    .option("--no-nats-autostart", `never start a nats-server (${ENV.natsAutostart}=false)`)
    .option("--nats-store-dir <dir>", `JetStream store of a started nats-server (${ENV.natsStoreDir})`)
    .option("--nats-websocket-port <port>", `open a WebSocket listener (loopback) on a started nats-server at this port; 0 picks one (${ENV.natsWebsocketPort}; default: none)`)
    .option("--nats-server-accounts <file>", `accounts file for a started nats-server, e.g. from \`trellis lattice secure init\` (${ENV.natsServerAccounts})`)
    .option("--detached", "run the host in the background; stop it with `trellis down`")
    .option("--max-uploads <n>", `chunked uploads a component worker holds at once (${ENV.maxUploads}; default 16)`)
    .option("--max-upload-bytes <n>", `bytes a component worker buffers for chunked uploads (${ENV.maxUploadBytes}; default 134217728)`)
    .option("--max-call-timeout-ms <ms>", `longest caller trellis-timeout-ms honoured, ms (${ENV.maxCallTimeoutMs}; default 60000)`)
    .option("--no-wadm", `do not serve wadm's API nor write wadm_state (${ENV.wadm}=false)`)
    .option("--kv-replicas <n>", `replicas (1-5) of lattice KV buckets this host creates (${ENV.kvReplicas}; default 3 on a NATS cluster of 3 or more, else 1)`)
    .option("--js-domain <domain>", `JetStream domain holding the lattice data, for a host on a leaf node (${ENV.jsDomain})`)
    .option("--allow-file-load", `load components and providers from any file path, and components from http(s) URLs (${ENV.allowFileLoad}=true)`)
    .option("--allowed-path <dir>", `load components and providers from files under this directory (repeat; ${ENV.allowedPath}=DIR:DIR)`, collect)
    .option("--policy-topic <subject>", `ask the policy service on this subject before starts and invocations (${ENV.policyTopic})`)
    .option("--policy-changes-topic <subject>", `receive policy decision overrides on this subject (${ENV.policyChangesTopic})`)
    .option("--policy-timeout-ms <ms>", `wait for a policy decision, ms; no answer denies (${ENV.policyTimeoutMs}; default 1000)`)
    .option("--no-policy-invocations", `do not ask the policy service before each invocation (${ENV.policyInvocations}=false)`)
    .option("--no-reconciler", `do not run the app reconciler in this host (${ENV.noReconciler}=1)`)
    .option("--liveness-interval-ms <ms>", `interval of liveness beats, ms (${ENV.livenessIntervalMs}; default 1000)`)
    .option("--reconciler-lease-ttl-ms <ms>", `reconciler lease time-to-live, ms (${ENV.reconcilerLeaseTtlMs}; default 3000)`)
    .option("--require-signed", `refuse components and providers without valid claims (${ENV.requireSigned}=true)`)
    .option("--allowed-issuer <key>", `accept only claims from this issuer, A… (repeat; ${ENV.allowedIssuers}, comma-separated)`, collect)
    .option("--secrets-topic <prefix>", `subject prefix of the secrets backend, e.g. wasmcloud.secrets (${ENV.secretsTopic}; WASMCLOUD_SECRETS_TOPIC honoured)`)
    .option("--no-tracing", `send no W3C trace context and record no spans (${ENV.tracing}=false)`)
    .option("--otlp-endpoint <url>", `export spans by OTLP/HTTP to this base URL (${ENV.otlpEndpoint}; OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_SERVICE_NAME honoured)`)
    .option("--metrics-listen <addr>", `serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9090 (${ENV.metricsListen})`);
  addOciFlags(up).option("--no-builtin-aliases", `do not start first-party providers for wasmcloud+builtin:// and wasmCloud provider images (${OCI_ENV.builtinAliases[0]}=false)`);
  for (const f of WORKLOAD_FLAGS) up.option(`${f.flag} <n>`, `${f.help} (${ENV[f.key]})`);
  up
    .action(
      ctx.action(async (flags: UpFlags & OciFlags & Partial<Record<WorkloadFlagKey, string>>) => {
        const g = ctx.globals();
        const env = ctx.env;
        if (flags.detached) return upDetached(env, g.lattice, g.output);
        const num = (flag: string, v: string | undefined) => (v === undefined ? undefined : parsePositiveInt(flag, v));
        const level = (flags.logLevel ?? env[ENV.logLevel] ?? "info") as LogLevel;
        if (!["trace", "debug", "info", "warn", "error", "silent"].includes(level)) throw new InvalidArgumentError("--log-level", `unknown log level ${level}`);
        const format = flags.logFormat ?? env[ENV.logFormat] ?? "text";
        if (format !== "json" && format !== "text") throw new InvalidArgumentError("--log-format", "--log-format must be json or text");
        const logger = createLogger({ level, json: format === "json" });
        const say = (m: string) => {
          if (g.output === "text") process.stderr.write(`${m}\n`);
        };
        const nats = await ensureNats(g.natsUrl, flags, env, g.natsAuth, say);
        let host: Host;
        try {
          host = await Host.create({
            lattice: g.lattice,
            natsUrl: g.natsUrl,
            natsAuth: g.natsAuth,
            hostSeed: flags.hostSeed ?? env[ENV.hostSeed],
            friendlyName: flags.friendlyName ?? env[ENV.friendlyName],
            labels: { ...envLabels(env), ...parsePairs("--label", flags.label ?? []) },
            heartbeatIntervalMs: num("--heartbeat-interval-ms", flags.heartbeatIntervalMs ?? env[ENV.heartbeatIntervalMs]),
            rpcTimeoutMs: num("--rpc-timeout-ms", flags.rpcTimeoutMs ?? env[ENV.rpcTimeoutMs]),
            maxControlPayloadBytes: num("--max-control-payload-bytes", flags.maxControlPayloadBytes ?? env[ENV.maxControlPayloadBytes]),
            cacheDir: flags.cacheDir ?? env[ENV.cacheDir],
            logger,
            workloads: defaultWorkloads(workloadOptions(flags, env)),
            maxUploads: num("--max-uploads", flags.maxUploads ?? env[ENV.maxUploads]),
            maxUploadBytes: num("--max-upload-bytes", flags.maxUploadBytes ?? env[ENV.maxUploadBytes]),
            maxCallTimeoutMs: num("--max-call-timeout-ms", flags.maxCallTimeoutMs ?? env[ENV.maxCallTimeoutMs]),
            wadm: flags.wadm !== false && env[ENV.wadm] !== "false",
            kvReplicas: num("--kv-replicas", flags.kvReplicas ?? env[ENV.kvReplicas]),
            jsDomain: flags.jsDomain ?? env[ENV.jsDomain],
            ...admissionOptions(flags, env),
            ...securityOptions(flags, env),
            ...observeOptions(flags, env),
            reconciler: flags.reconciler !== false && !truthy(env[ENV.noReconciler]),
            livenessIntervalMs: num("--liveness-interval-ms", flags.livenessIntervalMs ?? env[ENV.livenessIntervalMs]),
            reconcilerLeaseTtlMs: num("--reconciler-lease-ttl-ms", flags.reconcilerLeaseTtlMs ?? env[ENV.reconcilerLeaseTtlMs]),
            oci: ociOptionsFrom(flags, env, undefined),
          });
        } catch (err) {
          await nats?.stop();
          throw inFlagTerms(err);
        }
        const info = { host_id: host.id, friendly_name: host.friendlyName, lattice: g.lattice, nats_url: redactUrl(g.natsUrl), nats_started: nats !== undefined, pid: process.pid };
        await mkdir(dataDir(env), { recursive: true });
        await writeFile(stateFile(env, g.lattice), JSON.stringify(info));
        ctx.print({ text: `host ${host.id} (${host.friendlyName}) is up on lattice ${g.lattice} at ${info.nats_url}; Ctrl-C stops it`, json: info });
        const stop = () => void host.stop();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        await host.stopped;
        await rm(stateFile(env, g.lattice), { force: true });
        await nats?.stop();
        return undefined;
      }),
    );

  program
    .command("down")
    .description("stop the host that `trellis up --detached` started on this lattice")
    .action(
      ctx.action(async () => {
        const g = ctx.globals();
        const file = stateFile(ctx.env, g.lattice);
        let state: { pid: number; host_id: string };
        try {
          state = JSON.parse(await readFile(file, "utf8")) as { pid: number; host_id: string };
        } catch {
          throw new TrellisError(ErrorCode.NotFound, `no host started with \`trellis up --detached\` runs on lattice ${g.lattice}`);
        }
        try {
          process.kill(state.pid, "SIGTERM");
        } catch {
          await rm(file, { force: true });
          return { text: `host ${state.host_id} was not running`, json: { success: true, host_id: state.host_id } };
        }
        const deadline = Date.now() + 15_000;
        while (Date.now() < deadline) {
          try {
            process.kill(state.pid, 0);
          } catch {
            break;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        await rm(file, { force: true });
        return { text: `host ${state.host_id} stopped`, json: { success: true, host_id: state.host_id } };
      }),
    );
}

async function upDetached(env: Env, lattice: string, output: string) {
  const dir = dataDir(env);
  await mkdir(dir, { recursive: true });
  const file = stateFile(env, lattice);
  await rm(file, { force: true });
  const logPath = join(dir, `host-${lattice}.log`);
  const out = openSync(logPath, "a");
  const args = process.argv.slice(1).filter((a) => a !== "--detached");
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", out, out], env: { ...env } as NodeJS.ProcessEnv });
  child.unref();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const state = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
      return { text: `host ${String(state.host_id)} is up in the background (pid ${String(state.pid)}, log ${logPath}); \`trellis down\` stops it`, json: { ...state, log: logPath } };
    } catch {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  void output;
  throw new TrellisError(ErrorCode.Internal, `the background host did not come up; see ${logPath}`);
}

/** `--require-signed`, `--allowed-issuer`, `--secrets-topic` and their env twins (flag over env). */
function securityOptions(flags: UpFlags, env: Env): { requireSigned: boolean; allowedIssuers: string[]; secretsTopic?: string } {
  const req = env[ENV.requireSigned];
  if (req !== undefined && !["true", "false", "1", "0", ""].includes(req)) {
    throw new InvalidArgumentError(ENV.requireSigned, `${ENV.requireSigned} must be true or false`);
  }
  const issuers = flags.allowedIssuer ?? (env[ENV.allowedIssuers] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const topic = flags.secretsTopic ?? env[ENV.secretsTopic] ?? env.WASMCLOUD_SECRETS_TOPIC;
  return {
    requireSigned: flags.requireSigned === true || req === "true" || req === "1",
    allowedIssuers: issuers,
    ...(topic ? { secretsTopic: topic } : {}),
  };
}
