/**
 * The component runtime's host policy for guests (issue 3 §3, §4; ADR 0023 for `componentWorkers`): the options and
 * their validation, once at start.
 * @module
 */
import { availableParallelism } from "node:os";
import { z } from "zod";
import { InvalidArgumentError } from "../core/errors.ts";
import { DEFAULT_MAX_COMPONENT_BYTES } from "./loader.ts";
import { DEFAULT_WORKER_INITIAL_HEAP_MB } from "./worker-heap.ts";

/** Host policy for guests (issue 3 §3, §4). Every field is optional. */
export interface ComponentPolicy {
  /** Environment variables every guest sees (none by default: the host's environment is never passed). */
  env?: Record<string, string>;
  /** Largest component file accepted, in bytes. @default 134217728 (128 MiB) */
  maxComponentBytes?: number;
  /** Linear memory cap per component instance, in MiB; `component_limits.max_linear_memory` (bytes) overrides it. @default 256 */
  maxMemoryMb?: number;
  /** Execution limit of one call, in ms; `component_limits.max_execution_time` (ms) overrides it. @default the host's rpcTimeoutMs */
  callTimeoutMs?: number;
  /** Worker threads components are spread over. @default max(2, number of CPUs) */
  maxWorkers?: number;
  /**
   * Most worker threads one component's instances are spread over (docs/adr/0023-component-workers.md): a component
   * with max instances n runs in min(n, componentWorkers, maxWorkers) workers, each with its own subscription in the
   * component's queue group and an even share of the n instances, so one busy component can use several cores.
   * 1 keeps every component in one worker (as before ADR 0023). A positive integer.
   * @default {@link defaultComponentWorkers}: half the number of CPUs, at least 1 (a 2-CPU machine does not spread by
   *   default; 8 CPUs: 4)
   */
  componentWorkers?: number;
  /** V8 heap limit of each worker thread, in MiB. @default 512 */
  workerHeapMb?: number;
  /**
   * Initial old-generation size of each worker thread's V8 heap, in MiB (docs/adr/0028-worker-heap.md): V8 runs no
   * full (mark-compact) collection in a worker until its old generation outgrows this, so the short-lived objects of
   * calls in flight are reclaimed without 4–10 ms full pauses. Capped at `workerHeapMb`. 0: V8's own sizing.
   * Process-wide: applies to every worker thread created after the first component worker.
   * @default 128 ({@link DEFAULT_WORKER_INITIAL_HEAP_MB})
   */
  workerInitialHeapMb?: number;
  /**
   * Host directories (and everything below them) that components may be given as filesystem preopens, besides the
   * host's `--allowed-path` directories (./preopens.ts `isPathAllowed`). @default [] (with `--allow-file-load`: any)
   */
  preopenRoots?: string[];
  /** Start the first worker thread when the runtime is created, so the first component start does not pay for it. @default true */
  prewarm?: boolean;
}

/** {@link ComponentPolicy} with every default filled in and every field checked (see {@link resolvePolicy}). */
export interface ResolvedPolicy {
  env: [string, string][];
  maxComponentBytes: number;
  maxMemoryBytes: number;
  callTimeoutMs: number;
  maxWorkers: number;
  componentWorkers: number;
  workerHeapMb: number;
  workerInitialHeapMb: number;
  preopenRoots: string[];
  prewarm: boolean;
}

/**
 * `v` when it is a positive finite number, `dflt` when undefined.
 * @throws InvalidArgumentError naming `field` otherwise.
 */
export function positive(field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(field, `${field} must be a positive number, got ${String(v)}`);
  return v;
}

/** `policy.componentWorkers`: a positive integer, {@link defaultComponentWorkers} when absent (ADR 0023). */
const COMPONENT_WORKERS = z
  .number()
  .int()
  .positive()
  .optional()
  .transform((v) => v ?? defaultComponentWorkers());

/** `policy.workerInitialHeapMb`: a non-negative integer, {@link DEFAULT_WORKER_INITIAL_HEAP_MB} when absent (ADR 0028). */
const WORKER_INITIAL_HEAP_MB = z
  .number()
  .int()
  .nonnegative()
  .optional()
  .transform((v) => v ?? DEFAULT_WORKER_INITIAL_HEAP_MB);

/**
 * Default of `policy.componentWorkers` (docs/adr/0023-component-workers.md): half of `os.availableParallelism()`,
 * rounded down, at least 1 (2 CPUs: 1, 4: 2, 8: 4, 16: 8). A spread component gains only while cores are idle;
 * measured, the component's own work is 0.4–0.6 of a request's CPU over every process of its path (nats-server, the
 * HTTP and key-value providers and the host take the rest), so beyond about half of the cores more workers only add
 * overhead.
 */
export function defaultComponentWorkers(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2));
}

/**
 * Parses one policy field with `schema`.
 * @throws InvalidArgumentError naming the field and what was wrong.
 */
function parseField<T>(field: string, schema: z.ZodType<T, unknown>, v: unknown, what = "a positive integer"): T {
  const r = schema.safeParse(v);
  if (!r.success) throw new InvalidArgumentError(field, `${field} must be ${what}, got ${String(v)}`);
  return r.data;
}

/**
 * Checks a component policy and fills in its defaults.
 * @param rpcTimeoutMs the host's RPC timeout, the default of `callTimeoutMs`, in ms.
 * @throws InvalidArgumentError naming the first field that is wrong.
 */
export function resolvePolicy(p: ComponentPolicy | undefined, rpcTimeoutMs: number): ResolvedPolicy {
  const env = p?.env ?? {};
  for (const [k, v] of Object.entries(env)) {
    if (typeof v !== "string") throw new InvalidArgumentError(`policy.env.${k}`, `policy.env.${k} must be a string`);
  }
  const workerHeapMb = positive("policy.workerHeapMb", p?.workerHeapMb, 512);
  return {
    env: Object.entries(env),
    maxComponentBytes: positive("policy.maxComponentBytes", p?.maxComponentBytes, DEFAULT_MAX_COMPONENT_BYTES),
    maxMemoryBytes: positive("policy.maxMemoryMb", p?.maxMemoryMb, 256) * 1024 * 1024,
    callTimeoutMs: positive("policy.callTimeoutMs", p?.callTimeoutMs, rpcTimeoutMs),
    maxWorkers: Math.floor(positive("policy.maxWorkers", p?.maxWorkers, Math.max(2, availableParallelism()))),
    componentWorkers: parseField("policy.componentWorkers", COMPONENT_WORKERS, p?.componentWorkers),
    workerHeapMb,
    workerInitialHeapMb: Math.min(workerHeapMb, parseField("policy.workerInitialHeapMb", WORKER_INITIAL_HEAP_MB, p?.workerInitialHeapMb, "a non-negative integer")),
    preopenRoots: [...(p?.preopenRoots ?? [])],
    prewarm: p?.prewarm ?? true,
  };
}
