/**
 * Chaos tests of the component runtime (issue 9 items 2 and 4, ADR 0014), bounded in time and load, loopback only;
 * every process started here is stopped by its pid (hosts stop their providers and workers, the harness its servers).
 *
 * 1. nats-server restarted under load: components and providers serve again, the inventory stays truthful, links and
 *    config are still there.
 * 2. an infinite-loop component next to a busy one on one worker: after the first timeout the looping component is on a
 *    worker of its own and the busy one loses no request.
 * 3. kill -9 of kv-redis behind a component under load: the calls waiting on it fail at once (target exit notice), no
 *    request waits longer than the provider's restart plus one call timeout, none is answered twice, and the Redis
 *    count matches the 200 answers (see the in-doubt rule in docs/reliability.md).
 * 4. a host stopping answers the calls its components had not finished (`TARGET_EXITED`), not the callers' timeouts.
 * 5. the target exit notice on the wire: only calls to that target fail, calls listed in `spared` keep waiting.
 *
 * Figures go to the test diagnostics (docs/reliability.md records a run). Fixtures: adder.wasm (bytecodealliance/jco,
 * Apache-2.0, see test/support/components.ts); the counter and looping guests are built here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "@bytecodealliance/jco";
import { connect, createInbox, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { componentRuntime } from "../src/component/index.ts";
import { invokeJson, serveInterfaces, serveInvocations, t as wit } from "../src/invocation/index.ts";
import { CONTENT_TYPE_JSON, HEADER_CONTENT_TYPE, HEADER_TIMEOUT_MS, Status } from "../packages/wire/src/invocation/protocol.ts";
import { invocationSubject, targetExitSubject } from "../src/core/subjects.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { startNatsServer, type NatsServerHandle } from "../src/lattice/nats-server.ts";
import { type ProviderSupervisor, providerSupervisor } from "../src/provider/supervisor.ts";
import { startTestNats, startTestRedis, waitFor, type TestNats } from "../src/testing/index.ts";
import { fixture, needsFixtures, startRuntime, RUNTIME_TEST_LOADS, spinOkGuestWat } from "./support/components.ts";
import { testLattice } from "./support/lattice.ts";
import { buildCounterGuest, FAST_SUPERVISION, testLink } from "./support/providers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dec = new TextDecoder();
const enc = new TextEncoder();

/** test:guest/api: spin loops forever, ok returns 7. */
const LOOP_WAT = spinOkGuestWat(7);

/** One call made by a load loop. */
interface Call {
  target: string;
  start: number;
  end: number;
  ok: boolean;
  code?: string;
  error?: string;
}

test("nats-server restarted under load: every component and provider serves again, inventory truthful, nothing lost", { skip: needsFixtures("adder.wasm") }, async (t) => {
  const storeDir = await mkdtemp(path.join(tmpdir(), "trellis-chaos-js-"));
  const looperWasm = path.join(storeDir, "..", `${path.basename(storeDir)}-loop.wasm`);
  await writeFile(looperWasm, await parse(LOOP_WAT));
  let server: NatsServerHandle = await startNatsServer({ storeDir });
  const nats: TestNats = { url: server.url, external: false, stop: () => server.stop() };
  const wasm = await buildCounterGuest();
  const lat = await testLattice(nats);
  let cnc: NatsConnection | undefined;
  try {
    const host = await lat.startHost({
      ...RUNTIME_TEST_LOADS,
      rpcTimeoutMs: 3000,
      workloads: { components: componentRuntime({ policy: { maxWorkers: 2 } }), providers: providerSupervisor(FAST_SUPERVISION) },
    });
    const sup = host.providers as ProviderSupervisor;
    await lat.client.putConfig("chaos-settings", { mode: "chaos" });
    await lat.client.startProvider(host.id, { provider_id: "kv", provider_ref: "kv-memory" });
    await lat.client.putLink(testLink({ source_id: "counter", target: "kv" }));
    await lat.client.scaleComponent(host.id, { component_ref: wasm, component_id: "counter", count: 4, config: ["chaos-settings"] });
    await lat.client.scaleComponent(host.id, { component_ref: fixture("adder.wasm"), component_id: "adder", count: 2 });
    // a component that overruns its limit just as NATS goes away: its worker is killed while NATS is down, so the
    // restart fails (connection refused) and must be retried until NATS is back
    const looperReq = { component_ref: looperWasm, component_id: "looper", count: 1, component_limits: { max_execution_time: "800" } };
    await lat.client.scaleComponent(host.id, looperReq);
    await waitFor(async () => (await lat.client.getInventory(host.id)).components.length === 3, { timeoutMs: 20_000, message: "components running" });
    await waitFor(() => sup.snapshot("kv")?.status === "running", { message: "kv running" });
    const local = host.components!;

    // The load: one call to each component every 20 ms from a client that reconnects quickly.
    cnc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const c = cnc;
    const log: Call[] = [];
    const pending = new Set<Promise<void>>();
    const fire = (target: string, iface: string, fn: string, args: unknown[]) => {
      const start = Date.now();
      const p = invokeJson(c, { lattice: lat.lattice, targetId: target, iface, fn, timeoutMs: 2000 }, args).then(
        () => void log.push({ target, start, end: Date.now(), ok: true }),
        (err: TrellisError) => void log.push({ target, start, end: Date.now(), ok: false, code: err.code, error: err.message }),
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    };
    const ticker = setInterval(() => {
      fire("counter", "test:counter/api", "hit", ["n"]);
      fire("adder", "docs:adder/add", "add", [1, 2]);
      fire("looper", "test:guest/api", "ok", []);
    }, 20);
    try {
      await waitFor(() => log.filter((l) => l.ok && l.target === "counter").length >= 20, { message: "calls flowing" });
      const port = server.port;
      const spin = invokeJson(c, { lattice: lat.lattice, targetId: "looper", iface: "test:guest/api", fn: "spin", timeoutMs: 5000 }, []).catch(
        (err: TrellisError) => err.code,
      );
      await sleep(150);
      await server.stop();
      const downAt = Date.now();
      // the host's own view while NATS is down (nobody can ask it over NATS now)
      const during: string[] = [];
      const adderDuring: string[] = [];
      while (Date.now() - downAt < 3000) {
        const inv = local.inventory();
        const st = inv.find((x) => x.id === "looper");
        const s = `${st?.status}${st?.error ? `: ${st.error}` : ""}`;
        if (during.at(-1) !== s) during.push(s);
        const a = inv.find((x) => x.id === "adder")?.status ?? "missing";
        if (adderDuring.at(-1) !== a) adderDuring.push(a);
        await sleep(50);
      }
      server = await startNatsServer({ port, storeDir });
      const backAt = Date.now();

      // While recovering: poll the inventory and probe each component right after; a component listed `running` must
      // answer (the counter may still fail while its provider is not `running` in the same inventory).
      const probes: { at: number; comp: string; status: string | undefined; kv: string | undefined; ok: boolean; error?: string }[] = [];
      const probeCnc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const firstOk: Record<string, number> = {};
      try {
        const until = backAt + 8000;
        while (Date.now() < until && !(firstOk["counter"] && firstOk["adder"] && firstOk["looper"] && Date.now() - backAt > 5500)) {
          let inv;
          try {
            inv = await lat.client.getInventory(host.id);
          } catch {
            await sleep(100);
            continue; // the control client has not reconnected yet
          }
          const kv = inv.providers.find((p) => p.id === "kv")?.status;
          assert.deepEqual(inv.components.map((x) => x.id).sort(), ["adder", "counter", "looper"], "every component stays listed");
          assert.ok(kv !== undefined, "the provider stays listed");
          for (const comp of ["adder", "counter", "looper"]) {
            const status = inv.components.find((x) => x.id === comp)?.status;
            const args = comp === "adder" ? [1, 2] : comp === "counter" ? ["probe"] : [];
            const [iface, fn] = comp === "adder" ? ["docs:adder/add", "add"] : comp === "counter" ? ["test:counter/api", "hit"] : ["test:guest/api", "ok"];
            try {
              await invokeJson(probeCnc, { lattice: lat.lattice, targetId: comp, iface, fn, timeoutMs: 3000 }, args);
              probes.push({ at: Date.now(), comp, status, kv, ok: true });
              firstOk[comp] ??= Date.now();
            } catch (err) {
              probes.push({ at: Date.now(), comp, status, kv, ok: false, error: (err as Error).message });
            }
          }
          await sleep(150);
        }
      } finally {
        await probeCnc.close();
      }
      await sleep(500);
      clearInterval(ticker);
      await Promise.all(pending);

      const recovered = (target: string) => log.find((l) => l.target === target && l.ok && l.start >= backAt);
      const counterBack = recovered("counter");
      const adderBack = recovered("adder");
      const looperBack = recovered("looper");
      const lies = probes.filter((p) => !p.ok && p.status === "running" && (p.comp !== "counter" || p.kv === "running"));
      t.diagnostic(
        `NATS down ${backAt - downAt} ms; spin answered ${await spin}; looper while NATS was down: ${during.join(" → ")}; adder: ${adderDuring.join(" → ")}; ` +
          `after NATS is back: adder serves in ${(adderBack?.end ?? NaN) - backAt} ms, counter (component → kv-memory) in ` +
          `${(counterBack?.end ?? NaN) - backAt} ms, looper (worker restarted with retries) in ${(looperBack?.end ?? NaN) - backAt} ms; ` +
          `${probes.length} inventory probes, statuses seen: ` +
          `${[...new Set(probes.map((p) => `${p.comp}=${p.status}/kv=${p.kv}/${p.ok ? "ok" : "fail"}`))].join(", ")}; calls: ` +
          `${log.filter((l) => l.ok).length} ok, ${log.filter((l) => !l.ok).length} failed (codes ${[...new Set(log.filter((l) => !l.ok).map((l) => l.code))].join("/")})`,
      );
      assert.ok(adderBack && counterBack, "both components serve again");
      assert.ok(adderBack.end - backAt <= 5000, `adder serves within 5 s of NATS being back (${adderBack.end - backAt} ms)`);
      assert.ok(counterBack.end - backAt <= 5000, `counter serves within 5 s of NATS being back (${counterBack.end - backAt} ms)`);
      assert.ok(looperBack && looperBack.end - backAt <= 5000, "the component whose worker restart failed serves again within 5 s");
      assert.ok(during.some((d) => /^failed: .*could not be restarted/.test(d)), `it was reported failed meanwhile (${during.join(" → ")})`);
      // adder's worker was not restarted: it kept its thread, reconnected, and nats.js re-sent its subscriptions
      assert.ok(
        adderDuring.includes("disconnected") && adderDuring.every((x) => x === "running" || x === "disconnected"),
        `adder's worker only lost its connection meanwhile (${adderDuring.join(" → ")})`,
      );
      assert.deepEqual(lies, [], "no component listed running while it does not answer");
      // at the end, the inventory says running and all answer
      const inv = await lat.client.getInventory(host.id);
      assert.deepEqual(inv.components.map((x) => [x.id, x.status]).sort(), [["adder", "running"], ["counter", "running"], ["looper", "running"]]);
      assert.equal(inv.providers.find((p) => p.id === "kv")?.status, "running");
      assert.equal(log.filter((l) => l.start > backAt + 5000 && !l.ok).length, 0, "no failed call once recovered");
      // nothing lost: links and config survive in JetStream
      assert.ok((await lat.client.getLinks()).some((l) => l.source_id === "counter" && l.target === "kv"), "the link is still there");
      assert.deepEqual(await lat.client.getConfig("chaos-settings"), { mode: "chaos" });
    } finally {
      clearInterval(ticker);
    }
  } finally {
    await cnc?.close().catch(() => undefined);
    await lat.close();
    await server.stop();
    await rm(storeDir, { recursive: true, force: true });
    await rm(looperWasm, { force: true });
  }
});

test("an infinite loop next to a busy component: after the first timeout the busy one loses no request", { skip: needsFixtures("adder.wasm") }, async (t) => {
  const env = await startRuntime({ policy: { callTimeoutMs: 600, maxWorkers: 1 } });
  try {
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-loop-"));
    const looper = path.join(dir, "loop.wasm");
    await writeFile(looper, await parse(LOOP_WAT));
    await env.runtime.start(fixture("adder.wasm"), "adder", { count: 4 });
    await env.runtime.start(looper, "looper");
    assert.equal(env.runtime.workerOf("looper"), env.runtime.workerOf("adder"), "both start on the one shared worker");

    // open-loop load: 4 adder calls every 10 ms, whatever the answers
    const log: Call[] = [];
    const pending = new Set<Promise<void>>();
    const fire = () => {
      const start = Date.now();
      const p = invokeJson(env.nc, { lattice: env.lattice, targetId: "adder", iface: "docs:adder/add", fn: "add", timeoutMs: 4000 }, [1, 2]).then(
        () => void log.push({ target: "adder", start, end: Date.now(), ok: true }),
        (err: TrellisError) => void log.push({ target: "adder", start, end: Date.now(), ok: false, code: err.code, error: err.message }),
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    };
    const ticker = setInterval(() => {
      for (let i = 0; i < 4; i++) fire();
    }, 10);
    await waitFor(() => log.length >= 50, { message: "adder busy" });
    const spins: { end: number; code: string }[] = [];
    for (let i = 0; i < 3; i++) {
      try {
        await invokeJson(env.nc, { lattice: env.lattice, targetId: "looper", iface: "test:guest/api", fn: "spin", timeoutMs: 5000 }, []);
        assert.fail("spin returned");
      } catch (err) {
        spins.push({ end: Date.now(), code: (err as TrellisError).code });
      }
    }
    await sleep(1000);
    clearInterval(ticker);
    await Promise.all(pending);
    const firstTimeout = spins[0]!.end;
    const after = log.filter((l) => l.start >= firstTimeout);
    const lost = after.filter((l) => !l.ok);
    const before = log.filter((l) => l.start < firstTimeout && !l.ok);
    const worst = Math.max(...after.map((l) => l.end - l.start));
    const worstBefore = Math.max(0, ...before.map((l) => l.end - l.start));
    t.diagnostic(
      `spins answered ${spins.map((s) => s.code).join("/")}; adder calls after the first timeout: ${after.length}, lost ${lost.length}, ` +
        `slowest ${worst} ms; failed by the first restart: ${before.length} (${[...new Set(before.map((l) => l.code))].join("/") || "-"}), ` +
        `answered ${worstBefore} ms after they were sent at worst`,
    );
    assert.ok(worstBefore < 2000, `calls cut by the first restart were answered at once, not at the caller's timeout (${worstBefore} ms)`);
    assert.deepEqual(spins.map((s) => s.code), ["TIMEOUT", "TIMEOUT", "TIMEOUT"]);
    assert.notEqual(env.runtime.workerOf("looper"), env.runtime.workerOf("adder"), "the looping component moved to a worker of its own");
    assert.deepEqual(lost.map((l) => l.error), [], "no adder call lost after the first timeout");
    assert.ok(after.length > 50, `adder kept serving (${after.length} calls)`);
    assert.ok(env.logs.some((l) => /moved to a worker thread of its own/.test(l.msg)));
    // the looping component still serves its other export
    assert.equal(await invokeJson(env.nc, { lattice: env.lattice, targetId: "looper", iface: "test:guest/api", fn: "ok", timeoutMs: 5000 }, []), 7);
    // a new component is placed on the shared worker, never on the isolated one
    await env.runtime.start(fixture("adder.wasm"), "adder2");
    assert.equal(env.runtime.workerOf("adder2"), env.runtime.workerOf("adder"));
  } finally {
    await env.close();
  }
});

test("kill -9 of kv-redis under load: waiting calls fail at once, none answered twice, Redis count matches the 200s", async (t) => {
  const nats = await startTestNats();
  const redis = await startTestRedis({ private: true }); // private: the test pauses its writes
  const wasm = await buildCounterGuest();
  const lat = await testLattice(nats);
  const r = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let cnc: NatsConnection | undefined;
  const CALL_TIMEOUT_MS = 5000;
  try {
    const host = await lat.startHost({
      ...RUNTIME_TEST_LOADS,
      rpcTimeoutMs: CALL_TIMEOUT_MS,
      workloads: { components: componentRuntime({ policy: { maxWorkers: 1 } }), providers: providerSupervisor(FAST_SUPERVISION) },
    });
    const sup = host.providers as ProviderSupervisor;
    const key = `hits-${lat.lattice}`;
    await lat.client.putConfig("chaos-redis", { url: redis.url });
    await lat.client.putLink(testLink({ source_id: "counter", target: "kv", target_config: ["chaos-redis"] }));
    await lat.client.startProvider(host.id, { provider_id: "kv", provider_ref: "kv-redis" });
    await lat.client.scaleComponent(host.id, { component_ref: wasm, component_id: "counter", count: 16 });
    await waitFor(async () => (await lat.client.getInventory(host.id)).components.length === 1, { timeoutMs: 20_000, message: "component running" });
    await waitFor(() => sup.snapshot("kv")?.status === "running", { message: "kv running" });

    // Raw requests with our own inbox, so that a second answer to one request would be seen.
    cnc = await connect({ servers: nats.url });
    const c = cnc;
    const inbox = createInbox();
    const replies = new Map<number, { data: Uint8Array; at: number }[]>();
    const waiters = new Map<number, () => void>();
    c.subscribe(`${inbox}.*`, {
      callback: (_e, m) => {
        const id = Number(m.subject.slice(inbox.length + 1));
        const list = replies.get(id) ?? [];
        list.push({ data: m.data, at: Date.now() });
        replies.set(id, list);
        waiters.get(id)?.();
      },
    });
    await c.flush();
    const subject = invocationSubject(lat.lattice, "counter", "test:counter/api", "hit");
    const params = enc.encode(JSON.stringify([key]));
    const starts = new Map<number, number>();
    let seq = 0;
    const one = () => {
      const id = ++seq;
      const h = natsHeaders();
      h.set(HEADER_CONTENT_TYPE, CONTENT_TYPE_JSON);
      h.set(HEADER_TIMEOUT_MS, String(CALL_TIMEOUT_MS));
      starts.set(id, Date.now());
      const answered = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), CALL_TIMEOUT_MS + 3000);
        waiters.set(id, () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      c.publish(subject, params, { reply: `${inbox}.${id}`, headers: h });
      return answered;
    };
    // 16 closed loops (16 calls in flight), a short pause after a failure
    let running = true;
    const loop = async () => {
      while (running) {
        const id = seq + 1;
        await one();
        const first = replies.get(id)?.[0];
        if (!first || first.data[0] !== Status.Ok) await sleep(20);
      }
    };
    const okCount = () => [...replies.values()].filter((l) => l[0]!.data[0] === Status.Ok).length;
    const loops = Array.from({ length: 16 }, loop);
    await waitFor(() => okCount() >= 200, { timeoutMs: 10_000, message: "calls flowing" });
    // Redis holds writes for a moment, so the calls in flight are certainly waiting on the provider when it dies
    // (without the pause, whether any is at the provider at the kill is luck: runs saw 0 to 16).
    await r.connect();
    await r.call("CLIENT", "PAUSE", "2000", "WRITE");
    await sleep(300);
    const pid = sup.snapshot("kv")!.pid!;
    const inFlight = [...starts.keys()].filter((id) => !replies.has(id));
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    await r.call("CLIENT", "UNPAUSE");
    await waitFor(() => sup.snapshot("kv")?.status === "running" && sup.snapshot("kv")?.pid !== pid, { timeoutMs: 10_000, message: "kv restarted" });
    const restartedAt = Date.now();
    await waitFor(() => [...replies.entries()].some(([id, l]) => starts.get(id)! > restartedAt && l[0]!.data[0] === Status.Ok), {
      timeoutMs: 5000,
      message: "calls succeed again",
    });
    await sleep(1000);
    running = false;
    await Promise.all(loops);
    await sleep(300); // a late second answer would arrive now

    // Classify every request.
    let ok = 0;
    const errors = new Map<string, number>();
    let inDoubt = 0;
    let worst = 0;
    const twice: number[] = [];
    const unanswered: number[] = [];
    for (const [id, start] of starts) {
      const l = replies.get(id);
      if (!l) {
        unanswered.push(id);
        continue;
      }
      if (l.length > 1) twice.push(id);
      worst = Math.max(worst, l[0]!.at - start);
      if (l[0]!.data[0] === Status.Ok) ok++;
      else {
        const e = JSON.parse(dec.decode(l[0]!.data.subarray(1))) as { code: string };
        errors.set(e.code, (errors.get(e.code) ?? 0) + 1);
        // the provider may have done the work before it died (or before the caller gave up): in doubt
        if (e.code === "TARGET_EXITED" || e.code === "TIMEOUT") inDoubt++;
      }
    }
    const inFlightLatency = inFlight.map((id) => (replies.get(id)?.[0]?.at ?? Infinity) - killedAt);
    const count = Number((await r.get(`counters:${key}`)) ?? 0);
    const restartMs = restartedAt - killedAt;
    t.diagnostic(
      `${starts.size} requests: ${ok} ok, errors ${JSON.stringify(Object.fromEntries(errors))}, ${unanswered.length} unanswered, ${twice.length} answered twice; ` +
        `in flight at the kill: ${inFlight.length}, answered ${Math.max(...inFlightLatency)} ms after the kill at worst; slowest request ${worst} ms; ` +
        `provider restart ${restartMs} ms; Redis count ${count} (ok ${ok}, in doubt ${inDoubt})`,
    );
    assert.deepEqual(unanswered, [], "every request answered");
    assert.deepEqual(twice, [], "no request answered twice");
    assert.ok(inFlight.length > 0, "calls were in flight at the kill");
    assert.ok((errors.get("TARGET_EXITED") ?? 0) > 0, "calls were waiting on the provider at the kill (failed with TARGET_EXITED)");
    assert.ok(Math.max(...inFlightLatency) <= 1000, `calls in flight at the kill answered within 1 s of it (${inFlightLatency.join("/")} ms)`);
    assert.ok(worst <= restartMs + CALL_TIMEOUT_MS, `no request waited longer than the restart plus one call timeout (${worst} ms)`);
    assert.ok(count >= ok, `no increment lost: Redis ${count} ≥ ${ok} ok answers`);
    assert.ok(count <= ok + inDoubt, `no increment doubled or made by a refused call: Redis ${count} ≤ ${ok} ok + ${inDoubt} in doubt`);
  } finally {
    r.disconnect();
    await cnc?.close().catch(() => undefined);
    await lat.close();
    await redis.stop();
    await nats.stop();
  }
});

test("a host stopping answers the calls its components had not finished, instead of leaving them to the caller's timeout", async (t) => {
  const env = await startRuntime({ policy: { callTimeoutMs: 20_000 } });
  try {
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-loop-"));
    const looper = path.join(dir, "loop.wasm");
    await writeFile(looper, await parse(LOOP_WAT));
    await env.runtime.start(looper, "looper");
    const sent = Date.now();
    const spin = invokeJson(env.nc, { lattice: env.lattice, targetId: "looper", iface: "test:guest/api", fn: "spin", timeoutMs: 15_000 }, []).then(
      () => assert.fail("spin returned"),
      (err: TrellisError) => err,
    );
    await sleep(300);
    await env.runtime.close();
    const err = await spin;
    const took = Date.now() - sent;
    t.diagnostic(`a call running when its host stopped was answered after ${took} ms: ${err.code} ${err.message}`);
    assert.equal(err.code, "TARGET_EXITED");
    assert.match(err.message, /component looper was stopped with its host while the call was running/);
    assert.ok(took < 5000, `answered when the worker was stopped, not at the caller's 15 s timeout (${took} ms)`);
  } finally {
    await env.close();
  }
});

test("a target exit notice fails at once only the pending calls to that target (wire of docs/protocol.md §10.1)", async (t) => {
  const nats = await startTestNats();
  const lattice = `exit${Date.now().toString(36)}`;
  const server = await connect({ servers: nats.url });
  const caller = await connect({ servers: nats.url });
  const other = await connect({ servers: nats.url });
  try {
    const api = { name: "test:slow/api", resources: [], functions: { wait: wit.func([], wit.u32) } };
    serveInterfaces(server, { lattice, targetId: "slowB" }, [{ type: api, handlers: { wait: () => sleep(1500).then(() => 1) } }]);
    // slowA records the reply subjects it got (to name one as `spared` in the notice)
    const seen: string[] = [];
    serveInvocations(server, {
      lattice,
      targetId: "slowA",
      handler: async (req) => {
        if (req.replySubject) seen.push(req.replySubject);
        await sleep(1500);
        return enc.encode("1");
      },
    });
    await server.flush();
    const call = (targetId: string) => {
      const start = Date.now();
      return invokeJson(caller, { lattice, targetId, iface: "test:slow/api", fn: "wait", timeoutMs: 5000 }, []).then(
        (v) => ({ targetId, ms: Date.now() - start, ok: true, code: String(v), message: "" }),
        (err: TrellisError) => ({ targetId, ms: Date.now() - start, ok: false, code: err.code, message: err.message }),
      );
    };
    const spared = call("slowA");
    await waitFor(() => seen.length === 1, { message: "first call arrived" });
    const calls = [call("slowA"), call("slowA"), call("slowB"), call("slowB")];
    await sleep(200);
    // what a supervising host sends when slowA's process exits (a foreign caller or host could do the same); the first
    // call is listed as spared (as a host lists the calls it holds for a restarting component)
    other.publish(
      targetExitSubject(lattice, "slowA"),
      JSON.stringify({ target_id: "slowA", kind: "provider", host_id: "NHOST", instance_id: "i-1", reason: "provider process was killed by SIGKILL", at: Date.now(), spared: [seen[0]] }),
    );
    const results = await Promise.all(calls);
    const kept = await spared;
    t.diagnostic([kept, ...results].map((r) => `${r.targetId}: ${r.ok ? "ok" : r.code} after ${r.ms} ms`).join("; "));
    assert.ok(kept.ok, "a call listed in spared keeps waiting and gets its answer");
    for (const r of results.filter((x) => x.targetId === "slowA")) {
      assert.equal(r.code, "TARGET_EXITED");
      assert.ok(r.ms < 1000, `failed at once (${r.ms} ms)`);
      assert.match(r.message, /target slowA exited while the call was pending \(provider process was killed by SIGKILL on host NHOST\); the call may or may not have been carried out/);
    }
    for (const r of results.filter((x) => x.targetId === "slowB")) assert.ok(r.ok, "calls to another target are not affected");
  } finally {
    await Promise.all([server.close(), caller.close(), other.close()]);
    await nats.stop();
  }
});
