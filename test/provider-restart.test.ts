/**
 * Crash recovery while calls are flowing (issue 4 "Done when"): kv-memory is killed with SIGKILL in the middle of a
 * stream of `wasi:keyvalue` calls — made on behalf of a linked component, and then made by a real component through
 * its link; the host restarts it, the new process has its links (kv-memory refuses calls without a link, so a
 * successful call proves it), and calls succeed again within 5 s (≈0.3 s on a quiet machine). The measured gaps are reported as test
 * diagnostics (docs/benchmarks.md records a run).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { componentRuntime } from "../src/component/index.ts";
import { invoke, invokeJson } from "../src/invocation/index.ts";
import { type ProviderSupervisor, providerSupervisor } from "../src/provider/supervisor.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { KEYVALUE_ATOMICS, KEYVALUE_STORE } from "trellis/provider-sdk";
import { testLattice } from "./support/lattice.ts";
import { buildCounterGuest, FAST_SUPERVISION, startProviderHost, testLink } from "./support/providers.ts";

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats.stop();
});

const handles = { toHandle: (_r: string, v: unknown) => new TextEncoder().encode(String(v)), fromHandle: (_r: string, h: Uint8Array) => new TextDecoder().decode(h) };

test("SIGKILL while calls flow: restarted with its links, calls succeed again within 5 s", async (t) => {
  const lat = await testLattice(nats);
  try {
    const ph = await startProviderHost(lat);
    await lat.client.putLink(testLink({ source_id: "counter", target: "kv" }));
    await lat.client.startProvider(ph.host.id, { provider_id: "kv", provider_ref: "kv-memory" });
    await waitFor(() => ph.snapshot("kv")?.status === "running", { message: "kv running" });
    const nc = await lat.connection();
    const call = (fn: string, args: unknown[]) => {
      const iface = fn === "increment" ? KEYVALUE_ATOMICS : KEYVALUE_STORE;
      return invoke(nc, { lattice: lat.lattice, targetId: "kv", iface: iface.name, fn, sourceId: "counter", linkName: "default", timeoutMs: 500 }, iface.functions[fn]!, args, handles);
    };
    const log: { at: number; ok: boolean; error?: string }[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          const r = (await call("increment", ["b", "hits", 1n])) as { tag: string };
          log.push({ at: Date.now(), ok: r.tag === "ok" });
        } catch (err) {
          log.push({ at: Date.now(), ok: false, error: (err as Error).message });
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    })();
    await waitFor(() => log.filter((l) => l.ok).length >= 50, { message: "calls flowing" });
    const pid = ph.snapshot("kv")!.pid!;
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    const back = await waitFor(() => log.find((l) => l.at > killedAt && l.ok && log.some((f) => f.at > killedAt && !f.ok && f.at < l.at)), {
      timeoutMs: 8000,
      message: "a successful call after failures following the kill",
    });
    running = false;
    await loop;
    const gapMs = back.at - killedAt;
    const failed = log.filter((l) => l.at > killedAt && !l.ok);
    t.diagnostic(`SIGKILL → first successful call: ${gapMs} ms (${failed.length} failed calls in between; first error: ${failed[0]?.error ?? "-"})`);
    assert.ok(gapMs < 5000, `calls succeed again within 5 s (took ${gapMs} ms)`);
    const snap = ph.snapshot("kv")!;
    assert.notEqual(snap.pid, pid);
    assert.equal(snap.starts, 2);
    const r = (await call("increment", ["b", "hits", 1n])) as { tag: string; val: bigint };
    assert.equal(r.tag, "ok", "the restarted process serves the linked caller");
  } finally {
    await lat.close();
  }
});

test("SIGKILL while a real component calls the provider: the component's calls succeed again within 5 s (≈0.3 s on a quiet machine)", async (t) => {
  const wasm = await buildCounterGuest();
  const lat = await testLattice(nats);
  try {
    // the counter guest is built in a temporary directory: the host may load from there
    const host = await lat.startHost({ allowedPaths: [path.dirname(wasm)], workloads: { components: componentRuntime(), providers: providerSupervisor(FAST_SUPERVISION) } });
    const sup = host.providers as ProviderSupervisor;
    await lat.client.startProvider(host.id, { provider_id: "kv", provider_ref: "kv-memory" });
    await lat.client.putLink(testLink({ source_id: "counter", target: "kv" }));
    await lat.client.scaleComponent(host.id, { component_ref: wasm, component_id: "counter", count: 4 });
    await waitFor(async () => (await lat.client.getInventory(host.id)).components.length === 1, { timeoutMs: 20_000, message: "component running" });
    await waitFor(() => sup.snapshot("kv")?.status === "running", { message: "kv running" });
    const hit = () => invokeJson(lat.client.nc, { lattice: lat.lattice, targetId: "counter", iface: "test:counter/api", fn: "hit", timeoutMs: 5000 }, ["k"]);
    // Calls arrive at a steady rate (one every 10 ms, whatever the answers), as from independent clients. A call in
    // flight at the kill is lost with the process and fails only at the component's import timeout (the host RPC
    // timeout, 2 s); the calls made after the kill show the recovery.
    const log: { start: number; end: number; ok: boolean; error?: string }[] = [];
    const pending = new Set<Promise<void>>();
    const fire = () => {
      const start = Date.now();
      const p: Promise<void> = hit().then(
        () => void log.push({ start, end: Date.now(), ok: true }),
        (err: unknown) => void log.push({ start, end: Date.now(), ok: false, error: (err as Error).message }),
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    };
    const ticker = setInterval(fire, 10);
    await waitFor(() => log.filter((l) => l.ok).length >= 40, { message: "calls flowing" });
    const pid = sup.snapshot("kv")!.pid!;
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    const back = await waitFor(() => log.find((l) => l.ok && l.start > killedAt && log.some((f) => !f.ok && f.start > killedAt && f.end < l.end)), {
      timeoutMs: 8000,
      message: "a successful component call started after the kill, after calls that failed during the outage",
    });
    await new Promise((r) => setTimeout(r, 2500));
    clearInterval(ticker);
    await Promise.all(pending);
    const gapMs = back.end - killedAt;
    const failed = log.filter((l) => l.end > killedAt && !l.ok);
    const lost = failed.filter((l) => l.start < killedAt);
    t.diagnostic(
      `component calls: SIGKILL → first successful call: ${gapMs} ms; ${failed.length} failed calls ` +
        `(${lost.length} in flight at the kill, failing after ${lost.map((l) => l.end - l.start).join("/") || "-"} ms; first error: ${failed[0]?.error ?? "-"})`,
    );
    // ≈0.3 s on a quiet 2-core machine; 3.7 s was seen with a load average of 20 (the respawned provider is a new
    // Node process). Without the restart, or with a slow back-off, no call succeeds again at all within the bound.
    assert.ok(gapMs < 5000, `component calls succeed again within 5 s (took ${gapMs} ms)`);
    assert.ok(log.filter((l) => l.ok && l.start > killedAt).length > 10, "calls keep succeeding");
    assert.equal(sup.snapshot("kv")!.starts, 2);
  } finally {
    await lat.close();
  }
});
