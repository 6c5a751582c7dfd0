/**
 * A component's instances spread over several worker threads (issue 12 item 2, docs/adr/0023-component-workers.md):
 * each shard has its own subscription in the component's queue group, so calls are served from distinct threads;
 * scale, update, link changes and the watchdog keep working across shards. Test guests are built here from WAT;
 * fixtures: see test/support/components.ts (Apache-2.0).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "@bytecodealliance/jco";
import { invokeJson, serveInterfaces, t } from "../src/invocation/index.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { EventType } from "../src/core/events.ts";
import { waitFor } from "../src/testing/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { ComponentRuntime, type ComponentRuntimeOptions } from "../src/component/index.ts";
import { fixture, needsFixtures, startRuntime, spinOkGuestWat, type RuntimeEnv } from "./support/components.ts";

/** A component exporting test:guest/api: `ok` returns `value`, `spin` loops forever. */
const guestWat = spinOkGuestWat;

const scaleReq = (componentId: string, count: number) => ({ componentId, componentRef: "", count, annotations: {}, config: [], limits: {}, allowUpdate: false, hostId: undefined });

/** Sends `n` calls, `concurrency` at a time; returns their results in order. */
async function burst<T>(n: number, concurrency: number, call: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += concurrency) out.push(...(await Promise.all(Array.from({ length: Math.min(concurrency, n - i) }, call))));
  return out;
}

describe("component instances spread over worker threads", { skip: needsFixtures("adder.wasm", "inter_component_call_middleware.wasm") }, () => {
  let env: RuntimeEnv;
  let dir: string;
  before(async () => {
    env = await startRuntime({ policy: { maxWorkers: 2, componentWorkers: 2, callTimeoutMs: 800 } });
    dir = await mkdtemp(path.join(tmpdir(), "trellis-spread-"));
  });
  after(async () => {
    await env?.close();
  });

  const add = () => invokeJson(env.nc, { lattice: env.lattice, targetId: "adder", iface: "docs:adder/add", fn: "add", timeoutMs: 5000 }, [1, 2]);

  test("max instances 4 on a host with 2 component workers: calls are served from 2 distinct threads, 2 instances each", async () => {
    await env.runtime.start(fixture("adder.wasm"), "adder", { count: 4 });
    const workers = env.runtime.workersOf("adder");
    assert.equal(new Set(workers).size, 2, `two workers host the adder (${workers.join(", ")})`);
    const results = await burst(200, 16, add);
    assert.deepEqual(new Set(results), new Set([3]));
    const shards = await env.runtime.shards("adder");
    const threads = new Set(shards.map((s) => s.threadId));
    assert.equal(threads.size, 2, `two distinct threads (${JSON.stringify(shards)})`);
    assert.ok(shards.every((s) => s.served > 0), `every thread served calls (${shards.map((s) => s.served).join(" + ")})`);
    assert.equal(shards.reduce((n, s) => n + s.served, 0), 200);
    assert.deepEqual(shards.map((s) => s.maxInstances), [2, 2], "the limit of 4 is split evenly");
    assert.ok(shards.every((s) => s.instances >= 1 && s.instances <= s.maxInstances));
    // the inventory and the event name the component's whole limit, once
    const inv = env.runtime.inventory().filter((c) => c.id === "adder");
    assert.deepEqual(inv.map((c) => [c.max_instances, c.status]), [[4, "running"]]);
    assert.equal(env.events.named(EventType.ComponentScaled).filter((e) => e["component_id"] === "adder").at(-1)?.["max_instances"], 4);
  });

  test("scale down to 1 gathers it in one worker; scale to 3 spreads it again (2 + 1); calls never fail", async () => {
    await env.runtime.scale(scaleReq("adder", 1));
    assert.equal(env.runtime.workersOf("adder").length, 1);
    assert.deepEqual((await env.runtime.shards("adder")).map((s) => s.maxInstances), [1]);
    assert.deepEqual(new Set(await burst(40, 8, add)), new Set([3]));
    await env.runtime.scale(scaleReq("adder", 3));
    const shards = await env.runtime.shards("adder");
    assert.deepEqual(shards.map((s) => s.maxInstances), [2, 1]);
    assert.equal(new Set(shards.map((s) => s.threadId)).size, 2);
    assert.deepEqual(new Set(await burst(40, 8, add)), new Set([3]));
    assert.deepEqual(env.runtime.inventory().find((c) => c.id === "adder")?.max_instances, 3);
  });

  test("a link change reaches every worker: after it, every call from both threads goes to the new target; concurrency stays within the limit", async () => {
    const hits = { rx1: 0, rx2: 0 };
    let inflight = 0;
    let peak = 0;
    for (const target of ["rx1", "rx2"] as const) {
      serveInterfaces(env.nc, { lattice: env.lattice, targetId: target }, [
        {
          type: { name: "wasmcloud:example/receiver@0.0.1", resources: [], functions: { invoke: t.func([], t.result(undefined, t.string)) } },
          handlers: {
            invoke: async () => {
              hits[target]++;
              peak = Math.max(peak, ++inflight);
              await new Promise((r) => setTimeout(r, 5));
              inflight--;
              return { tag: "ok" };
            },
          },
        },
      ]);
    }
    const first = env.links.put({ source_id: "mw", target: "rx1", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["receiver"] });
    await env.runtime.start(fixture("inter_component_call_middleware.wasm"), "mw", { count: 4 });
    const callMw = () => invokeJson(env.nc, { lattice: env.lattice, targetId: "mw", iface: "wasmcloud:example/middleware", fn: "invoke", timeoutMs: 5000 }, []);
    await burst(40, 8, callMw);
    assert.deepEqual(hits, { rx1: 40, rx2: 0 });
    assert.ok(peak <= 4, `at most 4 calls at once over both workers (peak ${peak})`);
    const before = await env.runtime.shards("mw");
    env.links.del(first);
    env.links.put({ source_id: "mw", target: "rx2", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["receiver"] });
    // link changes reach the workers asynchronously: wait until a burst over both threads goes to the new target only,
    // then every later call must (a worker left with the old table would keep sending a share of the calls to rx1)
    await waitFor(
      async () => {
        const rx1Before = hits.rx1;
        await burst(8, 8, callMw);
        return hits.rx1 === rx1Before;
      },
      { message: "every worker uses the new link" },
    );
    const rx1 = hits.rx1;
    await burst(60, 8, callMw);
    assert.equal(hits.rx1, rx1, "no call reached the old target after the change");
    const after = await env.runtime.shards("mw");
    assert.equal(after.length, 2);
    assert.ok(
      after.every((s) => s.served > before.find((b) => b.threadId === s.threadId)!.served),
      `both threads served calls after the change (${JSON.stringify(after)})`,
    );
    await env.runtime.stop("mw");
    assert.deepEqual(env.runtime.workersOf("mw"), []);
    await assert.rejects(callMw(), (e: TrellisError) => e.code === "NO_RESPONDERS" || e.code === "TIMEOUT");
  });

  test("update to a new image swaps the code in every worker", async () => {
    const v1 = path.join(dir, "guest-v1.wasm");
    const v2 = path.join(dir, "guest-v2.wasm");
    await writeFile(v1, await parse(guestWat(7)));
    await writeFile(v2, await parse(guestWat(8)));
    await env.runtime.start(v1, "guest", { count: 2 });
    const ok = () => invokeJson(env.nc, { lattice: env.lattice, targetId: "guest", iface: "test:guest/api", fn: "ok", timeoutMs: 5000 }, []);
    assert.deepEqual(new Set(await burst(40, 8, ok)), new Set([7]));
    assert.equal(env.runtime.workersOf("guest").length, 2);
    const before = await env.runtime.shards("guest");
    await env.runtime.update("guest", v2);
    const answers = await burst(60, 8, ok);
    assert.deepEqual(new Set(answers), new Set([8]), "no call answered by the old code");
    const after = await env.runtime.shards("guest");
    assert.equal(new Set(after.map((s) => s.threadId)).size, 2, "still spread over two threads");
    assert.deepEqual(new Set(after.map((s) => s.threadId)), new Set(before.map((s) => s.threadId)), "in the same workers");
    assert.ok(after.every((s) => s.served > 0), `both serve the new code (${after.map((s) => s.served).join(" + ")})`);
  });

  test("a spread component that loops is stopped, gathered in a worker of its own with its whole limit; its neighbour keeps its spread", async () => {
    const spins: string[] = [];
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        invokeJson(env.nc, { lattice: env.lattice, targetId: "guest", iface: "test:guest/api", fn: "spin", timeoutMs: 5000 }, []),
        (e: TrellisError) => (spins.push(e.code), e.code === "TIMEOUT"),
      );
    }
    const own = env.runtime.workersOf("guest");
    assert.equal(own.length, 1, "gathered in one worker");
    const adderWorkers = env.runtime.workersOf("adder");
    assert.ok(!adderWorkers.includes(own[0]!), `its own worker (${own[0]}) hosts no adder shard (${adderWorkers.join(", ")})`);
    // the gathered shard serves, and the shard left on the other worker has stopped
    await waitFor(async () => (await env.runtime.shards("guest")).filter((s) => !s.leaving).length === 1, { message: "the gathered guest serves" });
    await waitFor(async () => (await env.runtime.shards("guest")).length === 1, { message: "no shard left behind" });
    assert.deepEqual((await env.runtime.shards("guest")).map((s) => s.maxInstances), [2], "with its whole limit");
    // its shard in the other worker stopped: every call is served by the gathered one
    const served0 = (await env.runtime.shards("guest"))[0]!.served;
    const okGuest = () => invokeJson(env.nc, { lattice: env.lattice, targetId: "guest", iface: "test:guest/api", fn: "ok", timeoutMs: 5000 }, []);
    assert.deepEqual(new Set(await burst(20, 4, okGuest)), new Set([8]));
    assert.equal((await env.runtime.shards("guest"))[0]!.served - served0, 20, "no call went to a shard left behind");
    assert.ok(env.logs.some((l) => /moved to a worker thread of its own/.test(l.msg)));
    // the adder, co-located with a guest shard in the killed worker, still has both shards, both serving
    await waitFor(async () => (await env.runtime.shards("adder")).length === 2, { message: "adder shards back" });
    const before = await env.runtime.shards("adder");
    assert.deepEqual(new Set(await burst(60, 8, add)), new Set([3]));
    const after = await env.runtime.shards("adder");
    assert.ok(after.every((s) => s.served > (before.find((b) => b.worker === s.worker)?.served ?? 0)), "both adder shards serve");
    assert.deepEqual(env.runtime.inventory().map((c) => [c.id, c.status]).sort(), [["adder", "running"], ["guest", "running"]]);
    // scaling the gathered component keeps it in its own worker
    await env.runtime.scale(scaleReq("guest", 4));
    assert.deepEqual(env.runtime.workersOf("guest"), own);
    assert.deepEqual((await env.runtime.shards("guest")).map((s) => s.maxInstances), [4]);
  });
});

describe("componentWorkers policy", () => {
  test("1 keeps every component in one worker; a bad value is refused naming the field", async () => {
    const env = await startRuntime({ policy: { maxWorkers: 2, componentWorkers: 1 } });
    try {
      await env.runtime.start(fixture("adder.wasm"), "adder", { count: 4 });
      assert.equal(env.runtime.workersOf("adder").length, 1);
      assert.deepEqual((await env.runtime.shards("adder")).map((s) => s.maxInstances), [4]);
      // the policy is checked before anything starts
      for (const bad of [0, 1.5, -2, "2"]) {
        const opts = { nc: env.nc, lattice: env.lattice, cacheDir: env.cacheDir, logger: silentLogger, policy: { componentWorkers: bad } };
        await assert.rejects(ComponentRuntime.create(opts as unknown as ComponentRuntimeOptions), (e: TrellisError) => e.code === "INVALID_ARGUMENT" && /policy\.componentWorkers/.test(e.message));
      }
    } finally {
      await env.close();
    }
  });
});
