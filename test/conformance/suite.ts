/**
 * The provider conformance suite (issue 4 part 7): runs any provider executable through a real Trellis host on a
 * real NATS server and checks the provider contract of docs/protocol.md "Provider contract" — link before start,
 * link after start, duplicate put, delete, changed link (delete + put), config update, health, shutdown, and
 * crash → restart with all its links.
 *
 * What it observes: the provider's conformance trace (`TRELLIS_TRACE {json}` lines on stdout, switched on by the
 * provider config `trellis_conformance_trace = stdout`; docs/protocol.md "Conformance trace"), the host's events and
 * log, and direct health / shutdown requests.
 *
 * ```ts
 * const report = await runConformance(["python3", "providers/python-kv/provider.py"]);
 * // or, as node:test tests: registerConformanceTests("python-kv", ["python3", "providers/python-kv/provider.py"]);
 * ```
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { CtlClient } from "../../src/control/client.ts";
import type { CloudEvent } from "../../src/core/events.ts";
import type { Logger, LogMeta } from "../../src/core/logger.ts";
import { Host } from "../../src/host/host.ts";
import { ProviderSupervisor, providerSupervisor } from "../../src/provider/supervisor.ts";
import { startTestNats, uniqueLattice, waitFor, type TestNats } from "../../src/testing/index.ts";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { eventWildcard } from "../../src/core/subjects.ts";
import { writeScript } from "../support/providers.ts";
import { CASES, type CaseContext } from "./cases.ts";

/** Prefix of trace lines. */
export const TRACE_PREFIX = "TRELLIS_TRACE ";
/** Config that switches the trace on. */
export const TRACE_CONFIG = { trellis_conformance_trace: "stdout" } as const;

/** Options of {@link runConformance}. */
export interface ConformanceOptions {
  /** NATS server to use. @default a throwaway server (or env NATS_URL) */
  natsUrl?: string;
  /** Run only these cases (names from {@link CONFORMANCE_CASES}). @default all */
  only?: readonly string[];
  /** How long to wait for each expected observation, in milliseconds. @default 5000 */
  timeoutMs?: number;
  /** How long to watch for unwanted extra callbacks, in milliseconds. @default 400 */
  settleMs?: number;
  /** Skip these cases (e.g. `json-handles` for a provider without the JSON form). @default none */
  except?: readonly string[];
  /** Target config of the key-value links cases put (e.g. `{url}` of a Redis), read when a case runs. @default {} */
  kvLinkConfig?: () => Record<string, string>;
}

/** The outcome of one case. */
export interface CaseResult {
  name: string;
  ok: boolean;
  /** Why it failed. */
  error?: string;
  /** Duration in milliseconds. */
  ms: number;
  /** Figures a case measured (e.g. restart time). */
  figures?: Record<string, number>;
}

/** The outcome of a run. */
export interface ConformanceReport {
  executable: string[];
  passed: number;
  failed: number;
  results: CaseResult[];
}

/** Names of every case, in the order they run. */
export const CONFORMANCE_CASES: readonly string[] = CASES.map((c) => c.name);

/** One trace record, with the provider id and arrival time added. */
export interface TraceRecord {
  event: string;
  providerId: string;
  at: number;
  [k: string]: unknown;
}

/** A log record of the host (for checks on the supervisor's side). */
export interface LogRecord {
  level: string;
  msg: string;
  meta: LogMeta;
}

function memoryLogger(records: LogRecord[], bindings: LogMeta = {}): Logger {
  const at = (level: string) => (msg: string, meta?: LogMeta) => void records.push({ level, msg, meta: { ...bindings, ...meta } });
  return { trace: () => {}, debug: () => {}, info: at("info"), warn: at("warn"), error: at("error"), child: (b) => memoryLogger(records, { ...bindings, ...b }) };
}

/**
 * The provider reference to give `provider.start` for `executable`: a single element is used as is (a path, a
 * `file://` URL or a first-party name); several become a wrapper script that `exec`s them.
 */
export async function providerRefFor(executable: readonly string[]): Promise<string> {
  if (executable.length === 1) return executable[0]!;
  const quoted = executable.map((a, i) => (i > 0 && !a.startsWith("/") && a.includes("/") ? path.resolve(a) : a)).map((a) => `'${a.replaceAll("'", "'\\''")}'`);
  return writeScript("provider-under-test.sh", `#!/bin/sh\nexec ${quoted.join(" ")} "$@"\n`);
}

/** The directory a file provider reference lies in (for the host's `allowedPaths`); none for a first-party name. */
function allowedPathsFor(ref: string): string[] {
  if (ref.startsWith("file://")) return [path.dirname(fileURLToPath(ref))];
  return ref.includes("/") || ref.startsWith(".") ? [path.dirname(path.resolve(ref))] : [];
}

/**
 * Runs the suite against `executable` and returns a report; never throws for a failing case.
 * @param executable the command: `["kv-memory"]`, `["/path/to/provider"]`, or `["python3", "provider.py"]`.
 * @throws only when the test lattice cannot be set up (no nats-server).
 */
export async function runConformance(executable: string | readonly string[], opts: ConformanceOptions = {}): Promise<ConformanceReport> {
  const exe = typeof executable === "string" ? [executable] : [...executable];
  const env = await ConformanceEnv.open(exe, opts);
  const results: CaseResult[] = [];
  try {
    for (const c of CASES) {
      if (opts.only && !opts.only.includes(c.name)) continue;
      if (opts.except?.includes(c.name)) continue;
      results.push(await env.run(c.name));
    }
  } finally {
    await env.close();
  }
  return { executable: exe, passed: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length, results };
}

/**
 * Registers the suite as node:test tests (one per case) under `describe(title)`. Figures measured by cases are
 * reported with `t.diagnostic`.
 */
export function registerConformanceTests(title: string, executable: string | readonly string[], opts: ConformanceOptions = {}): void {
  const exe = typeof executable === "string" ? [executable] : [...executable];
  describe(`conformance: ${title}`, () => {
    let env: ConformanceEnv;
    before(async () => {
      env = await ConformanceEnv.open(exe, opts);
    });
    after(async () => env?.close());
    for (const c of CASES) {
      if (opts.only && !opts.only.includes(c.name)) continue;
      if (opts.except?.includes(c.name)) continue;
      test(c.name, async (t) => {
        const r = await env.run(c.name);
        for (const [k, v] of Object.entries(r.figures ?? {})) t.diagnostic(`${c.name}: ${k} = ${v}`);
        if (!r.ok) throw new Error(r.error);
      });
    }
  });
}

/** The lattice, host and observers of one conformance run. */
export class ConformanceEnv implements CaseContext {
  readonly nats: TestNats;
  readonly lattice: string;
  readonly host: Host;
  readonly supervisor: ProviderSupervisor;
  readonly client: CtlClient;
  readonly nc: NatsConnection;
  readonly ref: string;
  readonly traces: TraceRecord[] = [];
  readonly events: CloudEvent[] = [];
  readonly logs: LogRecord[] = [];
  readonly timeoutMs: number;
  readonly settleMs: number;
  readonly #kvLinkConfig: () => Record<string, string>;
  #n = 0;

  private constructor(init: { nats: TestNats; lattice: string; host: Host; client: CtlClient; nc: NatsConnection; ref: string; opts: ConformanceOptions }, records: { traces: TraceRecord[]; logs: LogRecord[] }) {
    this.nats = init.nats;
    this.lattice = init.lattice;
    this.host = init.host;
    this.client = init.client;
    this.nc = init.nc;
    this.ref = init.ref;
    this.traces = records.traces;
    this.logs = records.logs;
    this.timeoutMs = init.opts.timeoutMs ?? 5000;
    this.settleMs = init.opts.settleMs ?? 400;
    this.#kvLinkConfig = init.opts.kvLinkConfig ?? (() => ({}));
    const sup = init.host.providers;
    if (!(sup instanceof ProviderSupervisor)) throw new Error("the conformance host has no ProviderSupervisor");
    this.supervisor = sup;
  }

  /** Starts NATS (unless given), a host with a fast supervisor, a client and an event recorder. */
  static async open(executable: readonly string[], opts: ConformanceOptions): Promise<ConformanceEnv> {
    const nats: TestNats = opts.natsUrl ? { url: opts.natsUrl, external: true, stop: () => Promise.resolve() } : await startTestNats();
    const lattice = uniqueLattice("conf");
    const traces: TraceRecord[] = [];
    const logs: LogRecord[] = [];
    const ref = await providerRefFor(executable);
    const host = await Host.create({
      natsUrl: nats.url,
      lattice,
      logger: memoryLogger(logs),
      cacheDir: "/tmp/trellis-test-cache",
      // the provider under test is the one thing this host may load from a file: its own directory
      allowedPaths: allowedPathsFor(ref),
      workloads: {
        providers: providerSupervisor({
          firstHealthCheckMs: 200,
          healthIntervalMs: 500,
          healthTimeoutMs: 500,
          startupGraceMs: 5000,
          shutdownDelayMs: 2000,
          restartBackoffMs: 50,
          maxRestartBackoffMs: 500,
          stableAfterMs: 5000,
          maxRestarts: 5,
          onOutput: (id, stream, line) => {
            if (stream !== "stdout" || !line.startsWith(TRACE_PREFIX)) return;
            try {
              traces.push({ ...(JSON.parse(line.slice(TRACE_PREFIX.length)) as { event: string }), providerId: id, at: Date.now() });
            } catch {
              // not a trace line
            }
          },
        }),
      },
    });
    const client = await CtlClient.connect({ natsUrl: nats.url, lattice, timeoutMs: 5000 });
    const nc = await connect({ servers: nats.url });
    const env = new ConformanceEnv({ nats, lattice, host, client, nc, ref, opts }, { traces, logs });
    nc.subscribe(eventWildcard(lattice), { callback: (_e, m) => void env.events.push(m.json<CloudEvent>()) });
    await nc.flush();
    await client.putConfig("conformance-trace", { ...TRACE_CONFIG });
    return env;
  }

  /** Target config for key-value links ({@link ConformanceOptions.kvLinkConfig}). */
  kvLinkConfig(): Record<string, string> {
    return this.#kvLinkConfig();
  }

  /** A fresh provider id for a case. */
  nextId(caseName: string): string {
    return `conf-${caseName}-${++this.#n}`;
  }

  /** Trace records of one provider (optionally one event), in arrival order. */
  trace(providerId: string, event?: string): TraceRecord[] {
    return this.traces.filter((r) => r.providerId === providerId && (event === undefined || r.event === event));
  }

  /** Waits until `pred` holds, failing with `what`. */
  async until<T>(what: string, pred: () => T | Promise<T>, timeoutMs = this.timeoutMs): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
    return waitFor(pred, { timeoutMs, message: what });
  }

  /** Waits `settleMs` (to let unwanted extra messages arrive). */
  settle(ms = this.settleMs): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  /** Starts the provider under test as `id` with the trace config plus `configs`, and waits for its `init` trace. */
  async startProvider(id: string, configs: string[] = []): Promise<void> {
    await this.client.startProvider(this.host.id, { provider_id: id, provider_ref: this.ref, config: ["conformance-trace", ...configs] });
    await this.until(`${id}: the init trace line (is the conformance trace implemented?)`, () => this.trace(id, "init").length > 0);
  }

  /** Waits for the host's health_check_passed event for `id`. */
  async healthy(id: string): Promise<void> {
    await this.until(`${id}: health_check_passed`, () => this.events.some((e) => e.type.endsWith(".health_check_passed") && e.data.provider_id === id));
  }

  /** Stops `id` if it is still supervised. */
  async stopQuietly(id: string): Promise<void> {
    if (this.supervisor.snapshot(id)) await this.client.stopProvider(this.host.id, id).catch(() => undefined);
  }

  /** Runs one case by name. */
  async run(name: string): Promise<CaseResult> {
    const c = CASES.find((x) => x.name === name);
    if (!c) return { name, ok: false, error: `no case named ${name}`, ms: 0 };
    const t0 = Date.now();
    const figures: Record<string, number> = {};
    try {
      await c.run(this, figures);
      return { name, ok: true, ms: Date.now() - t0, ...(Object.keys(figures).length ? { figures } : {}) };
    } catch (err) {
      return { name, ok: false, error: err instanceof Error ? err.message : String(err), ms: Date.now() - t0 };
    }
  }

  /** Stops everything this run started. */
  async close(): Promise<void> {
    await this.host.stop().catch(() => undefined);
    await this.client.close().catch(() => undefined);
    await this.nc.close().catch(() => undefined);
    await this.nats.stop();
  }
}
