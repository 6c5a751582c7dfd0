/**
 * Test helpers for capability providers: a host with a fast provider supervisor whose provider output is captured,
 * conformance-trace parsing, throwaway executable scripts, event waits, and a key-value guest component.
 */
import { chmod, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { componentize } from "componentize-qjs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { CloudEvent } from "../../src/core/events.ts";
import type { Host } from "../../src/host/host.ts";
import type { HostOptions } from "../../src/host/options.ts";
import { ProviderSupervisor, providerSupervisor, type ProviderSupervisorFactoryOptions } from "../../src/provider/supervisor.ts";
import type { ProviderSnapshot } from "../../src/provider/managed.ts";
import { waitFor } from "../../src/testing/index.ts";
import type { EventRecorder, TestLattice } from "./lattice.ts";

/** Prefix of conformance trace lines (packages/provider-sdk/src/trace.ts, docs/protocol.md). */
export const TRACE_PREFIX = "TRELLIS_TRACE ";

/** One conformance trace record. */
export interface TraceRecord {
  event: string;
  providerId: string;
  /** When the line was seen (ms since the epoch). */
  at: number;
  [k: string]: unknown;
}

/** A host whose provider supervisor runs fast (short health intervals, quick restarts) and records provider output. */
export interface ProviderHost {
  host: Host;
  supervisor: ProviderSupervisor;
  /** Every output line, per provider id. */
  lines: Map<string, string[]>;
  /** Conformance trace records, in arrival order (all providers). */
  traces: TraceRecord[];
  /** Trace records of one provider, optionally of one event. */
  trace(providerId: string, event?: string): TraceRecord[];
  snapshot(id: string): ProviderSnapshot | undefined;
}

/** Supervisor settings that keep tests fast. */
export const FAST_SUPERVISION: ProviderSupervisorFactoryOptions = {
  firstHealthCheckMs: 150,
  healthIntervalMs: 500,
  healthTimeoutMs: 400,
  startupGraceMs: 3000,
  shutdownDelayMs: 1000,
  restartBackoffMs: 50,
  maxRestartBackoffMs: 400,
  stableAfterMs: 3000,
  maxRestarts: 3,
};

/**
 * Where {@link writeScript} puts provider scripts (each in its own temporary subdirectory). Hosts of
 * {@link startProviderHost} may load providers from here, and only from here, unless told otherwise (docs/security.md).
 */
export const SCRIPTS_DIR = path.join(tmpdir(), "trellis-test-providers");

/**
 * Starts a host on `t` with a provider supervisor (fast settings unless overridden) and other host options; unless
 * `hostOpts` says what it may load, it may load providers from {@link SCRIPTS_DIR} (first-party ones run by name).
 */
export async function startProviderHost(t: TestLattice, opts: ProviderSupervisorFactoryOptions = {}, hostOpts: Omit<HostOptions, "workloads"> = {}): Promise<ProviderHost> {
  const lines = new Map<string, string[]>();
  const traces: TraceRecord[] = [];
  const loads = hostOpts.allowFileLoad !== undefined || hostOpts.allowedPaths !== undefined ? {} : { allowedPaths: [SCRIPTS_DIR] };
  const host = await t.startHost({
    ...loads,
    ...hostOpts,
    workloads: {
      providers: providerSupervisor({
        ...FAST_SUPERVISION,
        ...opts,
        onOutput: (id, stream, line) => {
          let l = lines.get(id);
          if (!l) lines.set(id, (l = []));
          l.push(line);
          if (stream === "stdout" && line.startsWith(TRACE_PREFIX)) {
            try {
              traces.push({ ...(JSON.parse(line.slice(TRACE_PREFIX.length)) as { event: string }), providerId: id, at: Date.now() });
            } catch {
              // not a trace line after all
            }
          }
          opts.onOutput?.(id, stream, line);
        },
      }),
    },
  });
  const supervisor = host.providers;
  if (!(supervisor instanceof ProviderSupervisor)) throw new Error("the host has no ProviderSupervisor");
  return {
    host,
    supervisor,
    lines,
    traces,
    trace: (id, event) => traces.filter((r) => r.providerId === id && (event === undefined || r.event === event)),
    snapshot: (id) => supervisor.snapshot(id),
  };
}

/** Writes an executable script into a fresh subdirectory of {@link SCRIPTS_DIR} and returns its path. */
export async function writeScript(name: string, body: string): Promise<string> {
  await mkdir(SCRIPTS_DIR, { recursive: true });
  const dir = await mkdtemp(path.join(SCRIPTS_DIR, "p-"));
  const file = path.join(dir, name);
  await writeFile(file, body, "utf8");
  await chmod(file, 0o755);
  return file;
}

/** Waits for an event of `type` (optionally matching `pred`) and returns it. */
export async function waitForEvent(rec: EventRecorder, type: string, pred: (e: CloudEvent) => boolean = () => true, timeoutMs = 5000): Promise<CloudEvent> {
  return waitFor(() => rec.ofType(type).find(pred), { timeoutMs, message: `event ${type}` });
}

/** Link fields for a test link. */
export function testLink(over: Record<string, unknown> = {}) {
  return {
    source_id: "app",
    target: "kv",
    wit_namespace: "wasi",
    wit_package: "keyvalue",
    interfaces: ["atomics", "store"],
    ...over,
  };
}

// ---- a component that uses wasi:keyvalue (built with componentize-qjs in ≈ 1–2 s) ----

/** The guest's world, with the wasi:keyvalue 0.2.0-draft package inline. */
export const COUNTER_WIT = `package test:counter@0.1.0;

interface api {
  ping: func() -> u32;
  hit: func(key: string) -> u64;
  put: func(key: string, value: string);
  fetch: func(key: string) -> option<string>;
}

world counter {
  import wasi:keyvalue/store@0.2.0-draft;
  import wasi:keyvalue/atomics@0.2.0-draft;
  export api;
}

package wasi:keyvalue@0.2.0-draft {
  interface store {
    variant error { no-such-store, access-denied, other(string) }
    record key-response { keys: list<string>, cursor: option<u64> }
    open: func(identifier: string) -> result<bucket, error>;
    resource bucket {
      get: func(key: string) -> result<option<list<u8>>, error>;
      set: func(key: string, value: list<u8>) -> result<_, error>;
      delete: func(key: string) -> result<_, error>;
      exists: func(key: string) -> result<bool, error>;
      list-keys: func(cursor: option<u64>) -> result<key-response, error>;
    }
  }
  interface atomics {
    use store.{bucket, error};
    increment: func(bucket: borrow<bucket>, key: string, delta: u64) -> result<u64, error>;
  }
}
`;

/** The guest: ASCII-only text ↔ bytes, so it needs no TextEncoder; componentize-qjs maps `u64` to a JS number and `none` to null. */
export const COUNTER_JS = `
import { open } from "wasi:keyvalue/store@0.2.0-draft";
import { increment } from "wasi:keyvalue/atomics@0.2.0-draft";
export const api = {
  ping() { return 1; },
  hit(key) { return increment(open("counters"), key, 1); },
  put(key, value) { open("data").set(key, Uint8Array.from(value, (c) => c.charCodeAt(0))); },
  fetch(key) {
    const v = open("data").get(key);
    return v == null ? undefined : String.fromCharCode(...v);
  },
};
`;

/** Builds the counter guest into a temp dir and returns its path. */
export async function buildCounterGuest(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "trellis-counter-"));
  await writeFile(path.join(dir, "world.wit"), COUNTER_WIT);
  const { component } = await componentize({ witPath: path.join(dir, "world.wit"), jsSource: COUNTER_JS, sync: true, optSize: true });
  const file = path.join(dir, "counter.wasm");
  await writeFile(file, component);
  return file;
}
