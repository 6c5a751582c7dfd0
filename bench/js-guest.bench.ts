/**
 * Benchmark "js-guest" (issue 12, item 1; docs/adr/0022-javascript-toolchain.md): what one call costs **inside** the
 * demo's JavaScript components, built from examples/ exactly as `npm run demo` builds them (src/demo/build.ts, the
 * pinned componentize-js, or the one `TRELLIS_COMPONENTIZE_JS` points to), against the Rust hello-world fixture run
 * the same way in the same run.
 *
 * Each component runs in this process in a {@link GuestComponent} (the class a host's worker uses: jco 1.10.2 glue,
 * JSPI, Trellis's own WASI imports), and is called with `wasi:http/incoming-handler.handle` in its wire form, one call
 * at a time. The counter's key-value import calls go over NATS to two in-memory targets served in this process
 * (links `default` and `cache`), so they suspend the guest as in a host.
 *
 * Per component: **guest CPU per call** — CPU time of this thread while guest code runs (between the worker's
 * watchdog marks: guest code, its glue and Trellis's synchronous imports; not the time suspended in lattice calls);
 * **guest wall time per call** — the same spans timed with `performance.now()`: on a quiet machine it is the CPU time,
 * and it stays precise where the thread CPU clock is coarse (on this VM, `process.threadCpuUsage()` often reads the same
 * value before and after a span of a few hundred µs, so the CPU figure of a component whose call is split into several
 * short spans by its import calls — the counter — comes out far too low); monotonic/wall clock reads per call while
 * guest code runs; thread CPU per call (everything, counter targets included). Rounds alternate the components; the figure is the median of the rounds.
 * Env: BENCH_JS_CALLS (calls per round, default 500), BENCH_JS_ROUNDS (default 3).
 *
 * Fixture (../shared/fixtures/components/, read in place): http_hello_world_rust.wasm, Apache-2.0, from
 * wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { compileComponent } from "../src/component/compile.ts";
import { GuestComponent } from "../src/component/guest.ts";
import type { LinkTable } from "../src/component/routing.ts";
import { WatchdogWriter } from "../src/component/watchdog.ts";
import { buildExamples, componentizeVersion } from "../src/demo/build.ts";
import { decodeResult, encodeParams } from "../packages/wire/src/invocation/codec.ts";
import { HTTP_HANDLE_TYPE, INCOMING_HANDLER, type HttpResponse } from "../packages/wire/src/invocation/http.ts";
import { serveInterfaces, type InvocationRequest, type InvocationServer } from "../packages/wire/src/invocation/server.ts";
import { uniqueLattice } from "../src/testing/index.ts";
import { KEYVALUE_ATOMICS, KEYVALUE_STORE } from "trellis/provider-sdk";
import { FIXTURES } from "./component-support.ts";
import { quantile, ratio } from "./harness.ts";

const CALLS = Number(process.env["BENCH_JS_CALLS"] ?? 500);
const ROUNDS = Number(process.env["BENCH_JS_ROUNDS"] ?? 3);
const WARMUP = 50;

/** Counts clock reads and guest CPU between the watchdog's "guest running" marks. */
class Meter extends WatchdogWriter {
  inGuest = false;
  guestCpuUs = 0;
  /** Wall time between the marks, µs (performance.now: precise, where this VM's thread CPU clock is coarse). */
  guestWallUs = 0;
  mono = 0;
  wall = 0;
  #cpu0 = 0;
  #wall0 = 0;
  override running(slot: number): void {
    super.running(slot);
    if (slot >= 0 && !this.inGuest) {
      this.#cpu0 = threadCpuUs();
      this.#wall0 = performance.now();
      this.inGuest = true;
    } else if (slot < 0 && this.inGuest) {
      this.inGuest = false;
      this.guestCpuUs += threadCpuUs() - this.#cpu0;
      this.guestWallUs += (performance.now() - this.#wall0) * 1000;
    }
  }
  reset(): void {
    this.guestCpuUs = 0;
    this.guestWallUs = 0;
    this.mono = 0;
    this.wall = 0;
  }
}

function threadCpuUs(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}

interface Subject {
  name: string;
  file: string;
  bytes: number;
  guest: GuestComponent;
  meter: Meter;
  instantiateMs: number;
  body: string;
  rounds: { guestCpuUs: number; guestWallUs: number; threadCpuUs: number; mono: number; wall: number }[];
}

/** Two in-memory `wasi:keyvalue` targets (`kvdefault`, `kvcache`) served over NATS from this process. */
function serveKv(nc: NatsConnection, lattice: string): InvocationServer[] {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const resources = { toHandle: (_r: string, v: unknown) => enc.encode(String(v)), fromHandle: (_r: string, h: Uint8Array) => dec.decode(h) };
  return ["kvdefault", "kvcache"].map((targetId) => {
    const counts = new Map<string, bigint>();
    return serveInterfaces(nc, { lattice, targetId }, [
      { type: KEYVALUE_STORE, resources, handlers: { open: (id: string) => ({ tag: "ok", val: id }) } },
      {
        type: KEYVALUE_ATOMICS,
        resources,
        handlers: {
          increment: (bucket: string, key: string, delta: bigint) => {
            const v = (counts.get(`${bucket}/${key}`) ?? 0n) + delta;
            counts.set(`${bucket}/${key}`, v);
            return { tag: "ok", val: v };
          },
        },
      },
    ]);
  });
}

async function load(name: string, file: string, cacheDir: string, links: LinkTable, nc: NatsConnection, lattice: string): Promise<Subject> {
  const bytes = new Uint8Array(await readFile(file));
  const compiled = await compileComponent(bytes, cacheDir);
  const meter = new Meter(new SharedArrayBuffer(64 + 256 * 1024));
  const guest = new GuestComponent(
    { componentId: name, index: 0, dir: compiled.dir, meta: compiled.meta, maxInstances: 1, maxMemoryBytes: 256 << 20, timeoutMs: 30_000, links, config: {}, env: [] },
    { nc, lattice, watchdog: meter, log: () => undefined },
  );
  const t0 = performance.now();
  await guest.init();
  return { name, file, bytes: bytes.length, guest, meter, instantiateMs: Math.round(performance.now() - t0), body: "", rounds: [] };
}

const REQUEST: InvocationRequest = {
  targetId: "bench",
  iface: INCOMING_HANDLER,
  fn: "handle",
  sourceId: "http",
  linkName: "default",
  timeoutMs: undefined,
  json: false,
  headers: undefined,
  params: encodeParams(HTTP_HANDLE_TYPE, [{ method: "GET", pathWithQuery: "/bench", headers: [["host", new TextEncoder().encode("bench")]], body: new Uint8Array(0) }]),
  expectsReply: true,
  replySubject: undefined,
};

async function call(s: Subject): Promise<void> {
  const out = await s.guest.handle(REQUEST);
  const res = decodeResult(HTTP_HANDLE_TYPE, out) as HttpResponse;
  if (res.status !== 200) throw new Error(`${s.name} answered ${res.status}`);
  s.body = new TextDecoder().decode(res.body).trim();
}

async function round(s: Subject, meters: { current: Meter | undefined }): Promise<void> {
  meters.current = s.meter;
  s.meter.reset();
  const cpu0 = threadCpuUs();
  for (let i = 0; i < CALLS; i++) await call(s);
  const thread = threadCpuUs() - cpu0;
  // the figure rests on the worker's watchdog marks bracketing guest code (src/component/guest-exports.ts `runGuest`,
  // src/component/guest-imports.ts `suspended`)
  // (checked on wall time: this VM's thread CPU clock can read 0 over a round of a few-µs guest)
  if (s.meter.guestWallUs <= 0 || s.meter.guestCpuUs > thread) {
    throw new Error(`${s.name}: guest wall time ${Math.round(s.meter.guestWallUs)} µs, CPU ${s.meter.guestCpuUs} µs of ${thread} µs — the watchdog's running marks no longer bracket guest code`);
  }
  s.rounds.push({ guestCpuUs: s.meter.guestCpuUs / CALLS, guestWallUs: s.meter.guestWallUs / CALLS, threadCpuUs: thread / CALLS, mono: s.meter.mono / CALLS, wall: s.meter.wall / CALLS });
  meters.current = undefined;
}

const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);

export default async function jsGuest(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const loadBefore = loadavg()[0] ?? 0;
  const version = await componentizeVersion();
  const built = await buildExamples(["hello", "counter"]);
  const cacheDir = await mkdtemp(path.join(tmpdir(), "trellis-js-guest-"));
  const lattice = uniqueLattice("jsguest");
  const nc = await connect({ servers: ctx.natsUrl });
  const servers = serveKv(nc, lattice);
  await nc.flush();
  // clock reads are counted while guest code runs (the meter of the subject being measured says when)
  const meters: { current: Meter | undefined } = { current: undefined };
  const hrBigint = process.hrtime.bigint;
  const dateNow = Date.now;
  process.hrtime.bigint = () => {
    if (meters.current?.inGuest) meters.current.mono++;
    return hrBigint();
  };
  Date.now = () => {
    if (meters.current?.inGuest) meters.current.wall++;
    return dateNow();
  };
  const kvLinks: LinkTable = {
    default: { "wasi:keyvalue/store": "kvdefault", "wasi:keyvalue/atomics": "kvdefault" },
    cache: { "wasi:keyvalue/store": "kvcache", "wasi:keyvalue/atomics": "kvcache" },
  };
  let subjects: Subject[] = [];
  try {
    subjects = [
      await load("rust-hello (fixture)", path.join(FIXTURES, "http_hello_world_rust.wasm"), cacheDir, {}, nc, lattice),
      await load("hello (examples/hello)", built[0]!.file, cacheDir, {}, nc, lattice),
      await load("counter (examples/counter)", built[1]!.file, cacheDir, kvLinks, nc, lattice),
    ];
    for (const s of subjects) for (let i = 0; i < WARMUP; i++) await call(s);
    for (let r = 0; r < ROUNDS; r++) for (const s of subjects) await round(s, meters);
  } finally {
    process.hrtime.bigint = hrBigint;
    Date.now = dateNow;
    for (const s of subjects) s.guest.close();
    for (const srv of servers) srv.stop();
    await nc.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
  const rows = subjects.map((s) => ({
    component: s.name,
    bytes: s.bytes,
    instantiateMs: s.instantiateMs,
    guestCpuUsPerCall: Math.round(median(s.rounds.map((r) => r.guestCpuUs))),
    guestCpuUsPerCallRounds: s.rounds.map((r) => Math.round(r.guestCpuUs)),
    guestWallUsPerCall: Math.round(median(s.rounds.map((r) => r.guestWallUs))),
    guestWallUsPerCallRounds: s.rounds.map((r) => Math.round(r.guestWallUs)),
    threadCpuUsPerCall: Math.round(median(s.rounds.map((r) => r.threadCpuUs))),
    monotonicClockReadsPerCall: Math.round(median(s.rounds.map((r) => r.mono)) * 10) / 10,
    wallClockReadsPerCall: Math.round(median(s.rounds.map((r) => r.wall)) * 10) / 10,
    lastAnswer: s.body,
  }));
  const [rust, hello, counter] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
  const result = {
    componentizeJs: version,
    callsPerRound: CALLS,
    rounds: ROUNDS,
    loadAverage1m: { before: Math.round(loadBefore * 100) / 100, after: Math.round((loadavg()[0] ?? 0) * 100) / 100 },
    components: rows,
    ratios: {
      helloGuestCpuVsRustHello: ratio(hello.guestCpuUsPerCall, rust.guestCpuUsPerCall),
      counterGuestCpuVsRustHello: ratio(counter.guestCpuUsPerCall, rust.guestCpuUsPerCall),
      counterGuestCpuVsHello: ratio(counter.guestCpuUsPerCall, hello.guestCpuUsPerCall),
      helloGuestWallVsRustHello: ratio(hello.guestWallUsPerCall, rust.guestWallUsPerCall),
      counterGuestWallVsHello: ratio(counter.guestWallUsPerCall, hello.guestWallUsPerCall),
    },
  };
  process.stdout.write(
    `js-guest (componentize-js ${version}): guest CPU per call — Rust hello ${rust.guestCpuUsPerCall} µs, JS hello ${hello.guestCpuUsPerCall} µs ` +
      `(×${result.ratios.helloGuestCpuVsRustHello}), JS counter ${counter.guestCpuUsPerCall} µs; monotonic clock reads per call: ` +
      `${rust.monotonicClockReadsPerCall} / ${hello.monotonicClockReadsPerCall} / ${counter.monotonicClockReadsPerCall}; guest wall time per call ` +
      `${rust.guestWallUsPerCall} / ${hello.guestWallUsPerCall} / ${counter.guestWallUsPerCall} µs\n`,
  );
  return result;
}
