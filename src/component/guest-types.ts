/**
 * The shapes of one component inside a worker thread (issue 3 §3–§5), shared by ./guest.ts (instance pool and call
 * dispatch), ./guest-imports.ts (link-routed import calls) and ./guest-exports.ts (the export call path): the spec a
 * worker gets, the worker services a component uses, and one instance with the call it is serving.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { CompiledMeta } from "./compile.ts";
import type { LinkTable } from "./routing.ts";
import type { WatchdogWriter } from "./watchdog.ts";
import type { InvocationPolicySpec } from "../policy/admission.ts";
import type { GuestSecrets } from "../secrets/client.ts";
import type { Preopen } from "./wasi/filesystem.ts";
import type { HopSpan, Tracing } from "../tracing/types.ts";
import type { MetricsRecorder } from "../metrics/recorder.ts";

/** Everything a worker needs to run one component (plain data: it crosses the thread boundary). */
export interface GuestSpec {
  componentId: string;
  /** Index of the component in its worker's watchdog table. */
  index: number;
  /** Compile cache entry directory. */
  dir: string;
  meta: CompiledMeta;
  maxInstances: number;
  /** Linear memory cap per instance, in bytes. */
  maxMemoryBytes: number;
  /** Execution limit per call, in milliseconds. */
  timeoutMs: number;
  links: LinkTable;
  config: Record<string, string>;
  env: [string, string][];
  /** When the host's policy service checks invocations: what the worker asks it before each call (src/policy). */
  invocationPolicy?: InvocationPolicySpec | undefined;
  /** The component's secrets, sealed (src/secrets `SecretBundle.sealForGuest`); opened only inside the guest. */
  secrets?: GuestSecrets | undefined;
  /** Host directories the guest sees through `wasi:filesystem` (./preopens.ts). */
  preopens?: Preopen[];
}

/** Services of the worker a component uses. */
export interface GuestDeps {
  nc: NatsConnection;
  lattice: string;
  watchdog: WatchdogWriter;
  /** Sends a log record to the host's logger (tagged with the component id there). */
  log(componentId: string, level: "trace" | "debug" | "info" | "warn" | "error", msg: string, meta?: Record<string, unknown>): void;
  /** Starts the client span of each import call (src/tracing, ADR 0025). @default none: no trace context sent */
  tracing?: Tracing;
  /** Counts each import call per link (src/metrics, ADR 0026). @default none */
  metrics?: MetricsRecorder;
}

/** The call an instance is serving. */
export interface CallCtx {
  /** Its slot in the worker's watchdog table. */
  slot: number;
  /** When its execution limit runs out, in epoch milliseconds (`Date.now()` clock). */
  deadline: number;
  /** The span of the call being served: parent of the import calls it makes. */
  span?: HopSpan | undefined;
}

/** One instance of a component (it serves one call at a time). */
export interface Instance {
  exports: Record<string, Record<string, (...a: unknown[]) => Promise<unknown>>>;
  /** The call this instance is serving. */
  call: CallCtx | undefined;
  /** Link names chosen with `set-link-name` during the current call, by unversioned interface. */
  linkNames: Map<string, string>;
  /** True after a trap, an exit or an abandoned call: never reused. */
  broken: boolean;
  memory: () => WebAssembly.Memory | undefined;
  /** True once the instance has served a call (a command's `run` only gets instances that never did). */
  used?: boolean;
}
