/**
 * A target under hostile callers (issue 8 item 6, docs/protocol.md §7.1): forged chunked-upload starts that declare
 * 64 MiB each but send one byte take an upload slot each up to the target's limit and nothing more (memory is
 * allocated as data arrives, not as declared); callers past the limit get `TOO_MANY_UPLOADS` at once; the target keeps
 * serving normal calls; a huge `trellis-timeout-ms` is cut to the target's maximum, so held slots come free; bytes
 * buffered across uploads are bounded (`UPLOAD_BUFFER_FULL`, `PAYLOAD_TOO_LARGE`). The target is a provider built on
 * the SDK (test/support/bounded-provider.ts) in its own process, measured through /proc/PID/status. Forged messages
 * are sent with a plain NATS client, headers exactly as docs/protocol.md §3 and §7 give them.
 * Also: labels are validated (`label.put`, host options).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, type TrellisError } from "../src/core/errors.ts";
import { invocationSubject } from "../src/core/subjects.ts";
import { compileHostOptions } from "../src/host/options.ts";
import { componentRuntime } from "../src/component/index.ts";
import { decodeResult, DEFAULT_MAX_UPLOADS, encodeParams, invoke, t as t2 } from "../src/invocation/index.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { SINK } from "./support/bounded-sink.ts";
import { fixture, needsFixtures, RUNTIME_TEST_LOADS } from "./support/components.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MiB = 1024 * 1024;
const utf8 = new TextDecoder();

/** `VmRSS` and `VmSize` of a process, in MiB. */
function memory(pid: number): { rss: number; vm: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN) / 1024;
  return { rss: kb("VmRSS"), vm: kb("VmSize") };
}

/** A reply decoded just enough: its status byte, the rest, and for errors the code and message. */
interface Reply {
  status: number;
  rest: Uint8Array;
  code?: string;
  message?: string;
  ms: number;
}

let nats: TestNats;
let t: TestLattice;
let nc: NatsConnection;
const children: ChildProcess[] = [];

/** Starts test/support/bounded-provider.ts as `id` with `limits`; resolves with its process once it serves. */
async function startTarget(id: string, limits: Record<string, number>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, "test", "support", "bounded-provider.ts"), "--provider-id", id, "--lattice", t.lattice, "--nats-url", nats.url], {
    env: { ...process.env, BOUNDS_LIMITS: JSON.stringify(limits), TRELLIS_LOG_LEVEL: "error" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  child.stderr!.resume();
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
  await waitFor(() => out.includes("READY") || child.exitCode !== null, { timeoutMs: 20_000, message: `${id} ready` });
  assert.equal(child.exitCode, null, `${id} is running`);
  return child;
}

/** A request with the protocol's headers from a plain NATS client; `timeoutMs` is what is sent as `trellis-timeout-ms`. */
async function raw(subject: string, body: Uint8Array, h: Record<string, string> = {}): Promise<Reply> {
  const hdrs = natsHeaders();
  for (const [k, v] of Object.entries(h)) hdrs.set(k, v);
  const started = Date.now();
  const m = await nc.request(subject, body, { timeout: 3000, headers: hdrs });
  const status = m.data[0]!;
  const rest = m.data.subarray(1);
  const reply: Reply = { status, rest, ms: Date.now() - started };
  if (status === 1) {
    const e = JSON.parse(utf8.decode(rest)) as { code: string; message: string };
    reply.code = e.code;
    reply.message = e.message;
  }
  return reply;
}

/** The first message of a chunked request to `target`'s `size` (docs/protocol.md §7 step 1), with a `declared` total. */
function uploadStart(target: string, declared: number | string, body: Uint8Array, timeoutMs = "2000000000"): Promise<Reply> {
  return raw(invocationSubject(t.lattice, target, SINK.name, "size"), body, {
    "source-id": "mallory",
    "target-id": target,
    "link-name": "default",
    "trellis-timeout-ms": timeoutMs,
    "trellis-body-length": String(declared),
  });
}

/** `size(data)` through the real invocation client (chunked when `n` is over one message). */
function size(target: string, n: number): Promise<unknown> {
  return invoke(nc, { lattice: t.lattice, targetId: target, iface: SINK.name, fn: "size", sourceId: "alice", timeoutMs: 5000 }, SINK.functions.size!, [new Uint8Array(n)]);
}

before(async () => {
  nats = await startTestNats();
  t = await testLattice(nats);
  await t.startHost(); // answers the remote providers' link.get
  nc = await t.connection();
});

after(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.pid !== undefined) {
      process.kill(c.pid, "SIGKILL");
      await new Promise((r) => c.once("exit", r));
    }
  }
  await t?.close();
  await nats?.stop();
});

void describe("a target under hostile callers", () => {
  const CAP_MS = 2000;

  void test("40 forged 64 MiB upload starts: memory stays flat, callers past the slot limit are refused at once, normal calls are served, held slots come free after the capped timeout", async () => {
    const child = await startTarget("sink", { maxCallTimeoutMs: CAP_MS });
    // Warm up every path once (plain call, chunked upload) so the baseline includes code and buffers they need.
    assert.equal(await size("sink", 10), 10);
    assert.equal(await size("sink", 3 * MiB), 3 * MiB);
    await new Promise((r) => setTimeout(r, 200));
    const before = memory(child.pid!);

    const forged = await Promise.all(Array.from({ length: 40 }, () => uploadStart("sink", 64 * MiB, Uint8Array.of(7))));
    const forgedAt = Date.now();
    const held = forged.filter((r) => r.status === 2);
    const refused = forged.filter((r) => r.status === 1);
    assert.equal(held.length, DEFAULT_MAX_UPLOADS, "as many uploads held as the default slot limit");
    assert.equal(refused.length, 40 - DEFAULT_MAX_UPLOADS);
    for (const r of refused) {
      assert.equal(r.code, ErrorCode.TooManyUploads);
      assert.match(r.message!, /already holds 16 chunked uploads \(limit 16\)/);
    }
    assert.ok(Math.max(...forged.map((r) => r.ms)) < 1000, `every caller answered at once (slowest ${Math.max(...forged.map((r) => r.ms))} ms)`);

    await new Promise((r) => setTimeout(r, 200));
    const during = memory(child.pid!);
    const rssGrowth = during.rss - before.rss;
    const vmGrowth = during.vm - before.vm;
    process.stdout.write(`# target RSS ${before.rss.toFixed(1)} → ${during.rss.toFixed(1)} MiB (+${rssGrowth.toFixed(1)}), VmSize +${vmGrowth.toFixed(1)} MiB\n`);
    assert.ok(rssGrowth < 50, `RSS grew ${rssGrowth.toFixed(1)} MiB`);
    // Untouched zero pages are not resident, so a body allocated as declared shows in the address space, not in RSS.
    assert.ok(vmGrowth < 256, `address space grew ${vmGrowth.toFixed(1)} MiB: something allocated as declared`);

    // Normal calls are still served; a real chunked call is refused at once, with the clear error.
    assert.equal(await size("sink", 100), 100);
    const t0 = Date.now();
    await assert.rejects(size("sink", 2 * MiB), (e: TrellisError) => e.code === ErrorCode.TooManyUploads && /retry later/.test(e.message));
    assert.ok(Date.now() - t0 < 1000, "refused at once");

    // The forged uploads asked for 2000000000 ms (23 days); the target keeps them at most CAP_MS, then chunked calls work again.
    const served = await waitFor(() => size("sink", 2 * MiB).catch(() => undefined), { timeoutMs: CAP_MS + 3000, intervalMs: 100, message: "slots free again" });
    assert.equal(served, 2 * MiB);
    const freedAfter = Date.now() - forgedAt;
    assert.ok(freedAfter >= CAP_MS - 300, `slots were held until the cap (${freedAfter} ms)`);
  });

  void test("a huge trellis-timeout-ms is cut to the target's maximum before the handler sees it", async () => {
    const call = (tmo: string) =>
      raw(invocationSubject(t.lattice, "sink", SINK.name, "timeout"), encodeParams(SINK.functions.timeout!, []), { "source-id": "mallory", "trellis-timeout-ms": tmo });
    const seen = async (tmo: string) => {
      const r = await call(tmo);
      assert.equal(r.status, 0, r.message);
      return decodeResult(SINK.functions.timeout!, r.rest);
    };
    assert.equal(await seen("2000000000"), CAP_MS);
    assert.equal(await seen("999999999999"), CAP_MS);
    assert.equal(await seen("1e400"), CAP_MS);
    assert.equal(await seen("750"), 750);
    assert.equal(await seen("-5"), 1);
  });

  void test("bytes are counted as they arrive: uploads declaring more than the buffer start, the chunk that would overflow it is refused; a declaration over the limit is refused at once", async () => {
    await startTarget("small", { maxUploadBytes: 6 * MiB, maxCallTimeoutMs: 10_000 });
    const tooBig = await uploadStart("small", 7 * MiB, Uint8Array.of(1));
    assert.equal(tooBig.code, ErrorCode.PayloadTooLarge);
    assert.match(tooBig.message!, /7340032 bytes exceeds this target's limit of 6291456 bytes/);
    const bad = await uploadStart("small", "12abc", Uint8Array.of(1));
    assert.equal(bad.code, ErrorCode.InvalidArgument);

    // Three uploads of 5 MiB each start (15 MiB declared > 6 MiB buffer: nothing is reserved as declared) …
    const starts = await Promise.all([1, 2, 3].map(() => uploadStart("small", 5 * MiB, new Uint8Array(512 * 1024), "10000")));
    for (const s of starts) assert.equal(s.status, 2, s.message);
    // … and each grows as its chunks arrive, until the buffer is full.
    const subjects = starts.map((s) => utf8.decode(s.rest));
    const chunk = new Uint8Array(512 * 1024);
    let full: Reply | undefined;
    let accepted = 0;
    for (let round = 0; round < 10 && !full; round++) {
      for (const subj of subjects) {
        const r = await raw(subj, chunk);
        if (r.status === 1) {
          full = r;
          break;
        }
        assert.equal(r.status, 2);
        accepted += chunk.length;
      }
    }
    assert.ok(full, "the buffer filled up");
    assert.equal(full.code, ErrorCode.UploadBufferFull);
    assert.match(full.message!, /upload buffer is full \(limit 6291456 bytes\)/);
    assert.ok(accepted + 3 * 512 * 1024 <= 6 * MiB, `no more than the limit was accepted (${accepted} bytes in later chunks)`);
    assert.ok(accepted + 3 * 512 * 1024 >= 3 * MiB, "uploads grew well past their first chunks");
    assert.equal(await size("small", 100), 100, "normal calls are still served");
  });
});

void describe("a host's limits reach its component workers", () => {
  void test("maxUploads and maxCallTimeoutMs of the host bound uploads to a component (adder fixture, Apache-2.0, bytecodealliance/jco dae02a06)", { skip: needsFixtures("adder.wasm") }, async () => {
    const host = await t.startHost({ ...RUNTIME_TEST_LOADS, workloads: { components: componentRuntime({ policy: { maxWorkers: 1, prewarm: false } }) }, maxUploads: 2, maxCallTimeoutMs: 1500 });
    await t.client.scaleComponent(host.id, { component_ref: fixture("adder.wasm"), component_id: "adder", count: 1 });
    const subject = invocationSubject(t.lattice, "adder", "docs:adder/add@0.1.0", "add");
    const add = () => invoke(nc, { lattice: t.lattice, targetId: "adder", iface: "docs:adder/add@0.1.0", fn: "add", timeoutMs: 5000 }, t2.func([["x", t2.u32], ["y", t2.u32]], t2.u32), [2, 3]);
    assert.equal(await waitFor(() => add().catch(() => undefined), { timeoutMs: 20_000, message: "adder serves" }), 5);
    const forge = () => raw(subject, Uint8Array.of(1), { "trellis-timeout-ms": "2000000000", "trellis-body-length": String(64 * MiB) });
    const replies = await Promise.all([forge(), forge(), forge()]);
    assert.deepEqual(replies.map((r) => r.status).sort(), [1, 2, 2]);
    assert.equal(replies.find((r) => r.status === 1)!.code, ErrorCode.TooManyUploads);
    assert.equal(await add(), 5, "normal calls are served");
    // 1500 ms later (not 23 days) the slots are free again.
    await waitFor(async () => (await forge()).status === 2, { timeoutMs: 4000, intervalMs: 200, message: "slots free after maxCallTimeoutMs" });
  });
});

void describe("labels are validated like identifiers", () => {
  void test("label.put refuses a bad key or value with an error naming the label; a good one is set", async () => {
    const host = t.hosts[0]!;
    const refuse = async (key: string, value: string, re: RegExp) =>
      assert.rejects(t.client.putLabel(host.id, key, value), (e: TrellisError) => e.code === ErrorCode.InvalidArgument && re.test(e.message));
    await refuse("zone name", "east", /label key "zone name" has a character not allowed in label keys \(" "\)/);
    await refuse("zone>", "east", /label key "zone>"/);
    await refuse("k".repeat(300), "v", /label key "k{64}…" is too long \(300 > 256/);
    await refuse("zone", "east\nwest", /value of label "zone" holds a control character/);
    await refuse("zone", "e".repeat(257), /value of label "zone" is too long/);
    assert.equal(await t.client.putLabel(host.id, "app.example.com/tier", "web"), "successfully put label");
    assert.equal(host.info().labels["app.example.com/tier"], "web");
    assert.equal(host.info().labels["zone name"], undefined);
  });

  void test("host options (--label, TRELLIS_LABEL_*) refuse bad labels; limits are validated", () => {
    assert.throws(() => compileHostOptions({ labels: { "a*b": "x" }, workloads: {} }), /label key "a\*b" has a character not allowed/);
    assert.throws(() => compileHostOptions({ labels: { ok: "tab\there" }, workloads: {} }), /value of label "ok" holds a control character/);
    assert.deepEqual(compileHostOptions({ labels: { region: "eu-1" }, workloads: {} }).labels, { region: "eu-1" });
    assert.deepEqual(compileHostOptions({ workloads: {} }).invocationLimits, { maxUploads: 16, maxUploadBytes: 128 * MiB, maxCallTimeoutMs: 60_000 });
    assert.equal(compileHostOptions({ maxCallTimeoutMs: 5000, workloads: {} }).invocationLimits.maxCallTimeoutMs, 5000);
    assert.throws(() => compileHostOptions({ maxUploads: -1, workloads: {} }), /maxUploads must be an integer in \[0, /);
    assert.throws(() => compileHostOptions({ maxUploadBytes: 0, workloads: {} }), /maxUploadBytes must be an integer in \[1, /);
    assert.throws(() => compileHostOptions({ maxCallTimeoutMs: 2 ** 31, workloads: {} }), /maxCallTimeoutMs must be an integer in \[1, 2147483647\]/);
  });
});
