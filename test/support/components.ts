/**
 * Test helpers for the component runtime: in-memory LinkSource / ConfigSource / EventPublisher, a logger that records
 * records, and a runtime on a real NATS server.
 *
 * Fixtures (../shared/fixtures/components/, read in place, never copied): Apache-2.0; adder.wasm from
 * bytecodealliance/jco examples/transpile/adder (dae02a06); http_hello_world_rust.wasm, http_counter.wasm and
 * inter_component_call_{caller,middleware,callee}.wasm from wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e).
 */
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "@bytecodealliance/jco";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { ComponentRuntime, type ComponentPolicy } from "../../src/component/index.ts";
import { NotFoundError } from "../../src/core/errors.ts";
import { linksEqual, parseLink, type Link } from "../../src/core/link.ts";
import type { Logger, LogMeta } from "../../src/core/logger.ts";
import type { ConfigSource, EventPublisher, LinkChange, LinkSource } from "../../src/core/ports.ts";
import { latticeDataBucket } from "../../src/core/subjects.ts";
import { startTestNats, uniqueLattice, type TestNats } from "../../src/testing/index.ts";
import { Admission } from "../../src/policy/admission.ts";
import type { LoadPermissionOptions } from "../../src/policy/allow.ts";

/**
 * Folder of the third-party fixture components: `TRELLIS_FIXTURES_DIR` when set, else
 * `../shared/fixtures/components` beside the repository (how the workplace lays it out).
 */
export const FIXTURES_DIR =
  process.env.TRELLIS_FIXTURES_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../shared/fixtures/components");

/**
 * What the component runtime tests load from: the fixture components and the temporary directories tests build
 * components in (docs/security.md: a runtime loads no file outside its allowed directories).
 */
export const RUNTIME_TEST_LOADS: LoadPermissionOptions = { allowedPaths: [FIXTURES_DIR, tmpdir()] };

/** Absolute path of a fixture component. */
export function fixture(name: string): string {
  return path.resolve(FIXTURES_DIR, name);
}

/**
 * For node:test's `skip` option: `false` when every named fixture exists, else a one-line reason that the test
 * summary prints (a clone without `../shared/` still passes, with these tests reported as skipped).
 */
export function needsFixtures(...names: string[]): string | false {
  const missing = names.filter((n) => !existsSync(fixture(n)));
  return missing.length === 0 ? false : `fixture ${missing.join(", ")} not found in ${FIXTURES_DIR} (set TRELLIS_FIXTURES_DIR)`;
}

/**
 * WAT of a component built from this repository's own source with the adder fixture's interface:
 * `docs:adder/add@0.1.0` `add(x: u32, y: u32) -> u32` — for tests that need an adder, not that particular binary.
 */
export const ADDER_WAT = `(component
  (core module $m (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
  (core instance $i (instantiate $m))
  (func $add (param "x" u32) (param "y" u32) (result u32) (canon lift (core func $i "add")))
  (instance $api (export "add" (func $add)))
  (export "docs:adder/add@0.1.0" (instance $api)))`;

/** Builds {@link ADDER_WAT} into a new temporary directory and returns the file's path (`…/adder.wasm`). */
/**
 * WAT of a `test:guest/api@0.1.0` component: `spin` loops forever, `ok` returns `value` (a runaway next to a
 * well-behaved export, for watchdog and worker tests).
 */
export function spinOkGuestWat(value = 7): string {
  return `(component
  (core module $m
    (func (export "spin") (loop $l (br $l)))
    (func (export "ok") (result i32) i32.const ${value})
  )
  (core instance $i (instantiate $m))
  (func $spin (canon lift (core func $i "spin")))
  (func $ok (result u32) (canon lift (core func $i "ok")))
  (instance $api (export "spin" (func $spin)) (export "ok" (func $ok)))
  (export "test:guest/api@0.1.0" (instance $api))
)`;
}

export async function buildOwnAdder(): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), "trellis-own-adder-")), "adder.wasm");
  await writeFile(file, await parse(ADDER_WAT));
  return file;
}

/** A LinkSource kept in memory; `put`/`del` notify listeners like the host's KV watch. */
export class MemoryLinks implements LinkSource {
  readonly links: Link[] = [];
  readonly #listeners = new Set<(c: LinkChange) => void>();
  /** In memory: always current. */
  async sync(): Promise<void> {}
  linksFrom(sourceId: string): readonly Link[] {
    return this.links.filter((l) => l.source_id === sourceId);
  }
  linksTo(targetId: string): readonly Link[] {
    return this.links.filter((l) => l.target === targetId);
  }
  onChange(listener: (change: LinkChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  /** Adds a link (JSON as on the wire; `name` defaults to `default`). */
  put(value: Record<string, unknown>): Link {
    const l = parseLink(value);
    this.links.push(l);
    this.#emit(l.source_id, [l], []);
    return l;
  }
  del(l: Link): void {
    const i = this.links.findIndex((x) => linksEqual(x, l));
    if (i >= 0) this.links.splice(i, 1);
    this.#emit(l.source_id, [], [l]);
  }
  #emit(sourceId: string, added: Link[], removed: Link[]): void {
    for (const f of this.#listeners) f({ sourceId, added, removed, links: this.linksFrom(sourceId) });
  }
}

/** A ConfigSource kept in memory. */
export class MemoryConfig implements ConfigSource {
  readonly configs = new Map<string, Record<string, string>>();
  readonly #listeners = new Set<(name: string) => void>();
  async resolve(names: readonly string[]): Promise<Record<string, string>> {
    for (const n of names) if (!this.configs.has(n)) throw new NotFoundError(`Config ${n} does not exist`, { config: n });
    return this.current(names);
  }
  current(names: readonly string[]): Record<string, string> {
    return Object.assign({}, ...names.map((n) => this.configs.get(n) ?? {})) as Record<string, string>;
  }
  onChange(listener: (name: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  put(name: string, values: Record<string, string>): void {
    this.configs.set(name, values);
    for (const f of this.#listeners) f(name);
  }
}

/** An EventPublisher that records events. */
export class RecordingEvents implements EventPublisher {
  readonly events: { name: string; data: Record<string, unknown> }[] = [];
  publish(eventName: string, data: Record<string, unknown>): void {
    this.events.push({ name: eventName, data });
  }
  named(name: string): Record<string, unknown>[] {
    return this.events.filter((e) => e.name === name).map((e) => e.data);
  }
}

/** One recorded log line. */
export interface LogRecord {
  level: string;
  msg: string;
  meta: LogMeta;
}

/** A Logger that keeps every record (bindings merged into meta); set `TEST_LOG=1` to also print them. */
export function recordingLogger(records: LogRecord[], bindings: LogMeta = {}): Logger {
  const rec = (level: string) => (msg: string, meta?: LogMeta) => {
    const r = { level, msg, meta: { ...bindings, ...meta } };
    records.push(r);
    if (process.env["TEST_LOG"]) process.stderr.write(`${level} ${msg} ${JSON.stringify(r.meta)}\n`);
  };
  return {
    trace: rec("trace"),
    debug: rec("debug"),
    info: rec("info"),
    warn: rec("warn"),
    error: rec("error"),
    child: (b) => recordingLogger(records, { ...bindings, ...b }),
  };
}

/** A runtime on a real NATS server with in-memory ports. */
export interface RuntimeEnv {
  server: TestNats;
  nc: NatsConnection;
  lattice: string;
  runtime: ComponentRuntime;
  links: MemoryLinks;
  config: MemoryConfig;
  events: RecordingEvents;
  logs: LogRecord[];
  cacheDir: string;
  close(): Promise<void>;
}

/** Starts NATS (or uses NATS_URL), a LATTICEDATA bucket and a runtime. */
export async function startRuntime(
  opts: { policy?: ComponentPolicy; rpcTimeoutMs?: number; cacheDir?: string; server?: TestNats; lattice?: string; hostId?: string; loads?: LoadPermissionOptions } = {},
): Promise<RuntimeEnv> {
  const server = opts.server ?? (await startTestNats());
  const nc = await connect({ servers: server.url });
  const lattice = opts.lattice ?? uniqueLattice("c");
  await new Kvm(nc).create(latticeDataBucket(lattice), { history: 1 });
  const links = new MemoryLinks();
  const config = new MemoryConfig();
  const events = new RecordingEvents();
  const logs: LogRecord[] = [];
  const cacheDir = opts.cacheDir ?? (await mkdtemp(path.join(tmpdir(), "trellis-cc-")));
  const runtime = await ComponentRuntime.create({
    nc,
    lattice,
    hostId: opts.hostId ?? "NTESTHOST",
    logger: recordingLogger(logs),
    rpcTimeoutMs: opts.rpcTimeoutMs ?? 5000,
    cacheDir,
    links,
    config,
    events,
    admission: new Admission(opts.loads ?? RUNTIME_TEST_LOADS),
    ...(opts.policy ? { policy: opts.policy } : {}),
  });
  return {
    server,
    nc,
    lattice,
    runtime,
    links,
    config,
    events,
    logs,
    cacheDir,
    close: async () => {
      await runtime.close();
      if (!opts.lattice) {
        try {
          await (await new Kvm(nc).open(latticeDataBucket(lattice))).destroy();
        } catch {
          // best effort
        }
      }
      await nc.close();
      if (!opts.server) await server.stop();
    },
  };
}
