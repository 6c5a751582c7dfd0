/**
 * Isolation (issue 3 §3): a guest that loops forever, traps, or blows up its memory fails only its own call, with a
 * clear error within its timeout, while other components keep answering; `count` bounds concurrency.
 * Test guests are built here from WAT; fixtures: see test/support/components.ts (Apache-2.0).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "@bytecodealliance/jco";
import { invokeJson, serveInterfaces, t } from "../src/invocation/index.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { fixture, needsFixtures, startRuntime, type RuntimeEnv } from "./support/components.ts";

/** The tests that call the adder fixture next to the WAT guest skip when it is absent; the guest's own tests run. */
const NO_ADDER = needsFixtures("adder.wasm");

/** A component exporting test:guest/api with spin (loops forever), ok (returns 7), boom (traps), hog (grows memory until refused, then traps). */
const GUEST_WAT = `(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "spin") (loop $l (br $l)))
    (func (export "ok") (result i32) i32.const 7)
    (func (export "boom") unreachable)
    (func (export "hog") (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable)
  )
  (core instance $i (instantiate $m))
  (func $spin (canon lift (core func $i "spin")))
  (func $ok (result u32) (canon lift (core func $i "ok")))
  (func $boom (canon lift (core func $i "boom")))
  (func $hog (canon lift (core func $i "hog")))
  (instance $api (export "spin" (func $spin)) (export "ok" (func $ok)) (export "boom" (func $boom)) (export "hog" (func $hog)))
  (export "test:guest/api@0.1.0" (instance $api))
)`;

describe("component isolation", () => {
  let env: RuntimeEnv;
  let guestPath: string;
  before(async () => {
    // componentWorkers 1: "count bounds concurrency" expects `count` calls at once in one instance pool; spread over
    // workers, the queue group's random choice of worker may leave one idle (test/component-workers.test.ts, ADR 0023)
    env = await startRuntime({ policy: { callTimeoutMs: 800, maxMemoryMb: 32, maxWorkers: 2, componentWorkers: 1 } });
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-guest-"));
    guestPath = path.join(dir, "guest.wasm");
    await writeFile(guestPath, await parse(GUEST_WAT));
    await env.runtime.start(guestPath, "guest");
    if (!NO_ADDER) {
      await env.runtime.start(fixture("adder.wasm"), "adder");
      assert.notEqual(env.runtime.workerOf("guest"), env.runtime.workerOf("adder"));
    }
  });
  after(async () => {
    await env?.close();
  });

  const call = (fn: string, timeoutMs = 5000) =>
    invokeJson(env.nc, { lattice: env.lattice, targetId: "guest", iface: "test:guest/api", fn, timeoutMs }, []);
  const add = () => invokeJson(env.nc, { lattice: env.lattice, targetId: "adder", iface: "docs:adder/add", fn: "add", timeoutMs: 2000 }, [1, 2]);

  test("an infinite loop fails its call with a timeout error while another component keeps answering", { skip: NO_ADDER }, async () => {
    const started = Date.now();
    const spinning = call("spin").then(
      () => assert.fail("spin returned"),
      (e: TrellisError) => e,
    );
    let answered = 0;
    while (Date.now() - started < 1200) {
      assert.equal(await add(), 3);
      answered++;
    }
    const err = await spinning;
    const took = Date.now() - started;
    assert.equal(err.code, "TIMEOUT");
    assert.match(err.message, /component guest did not finish within its execution time of 800 ms/);
    assert.ok(took < 2500, `timeout error after ${took} ms`);
    assert.ok(answered > 20, `adder answered ${answered} calls meanwhile`);
    assert.ok(env.logs.some((l) => l.level === "warn" && /exceeded its execution time/.test(l.msg)));
    // the looping component's worker was restarted and it serves again
    assert.equal(await call("ok"), 7);
  });

  test("a trap fails only that call; the next call gets a fresh instance", async () => {
    await assert.rejects(call("boom"), (e: TrellisError) => e.code === "COMPONENT_TRAP" && /component guest trapped: unreachable/.test(e.message));
    assert.equal(await call("ok"), 7);
  });

  test("a memory blow-up hits the per-component cap and traps with a clear error", async () => {
    await assert.rejects(call("hog"), (e: TrellisError) => e.code === "COMPONENT_TRAP" && /ran out of memory \(limit 32 MiB\)/.test(e.message));
    assert.equal(await call("ok"), 7);
    if (!NO_ADDER) assert.equal(await add(), 3, "the other component is unharmed");
  });

  test("count bounds concurrent calls per component", { skip: needsFixtures("inter_component_call_middleware.wasm") }, async () => {
    let inflight = 0;
    let peak = 0;
    serveInterfaces(env.nc, { lattice: env.lattice, targetId: "slow" }, [
      {
        type: { name: "wasmcloud:example/receiver@0.0.1", resources: [], functions: { invoke: t.func([], t.result(undefined, t.string)) } },
        handlers: {
          invoke: async () => {
            inflight++;
            peak = Math.max(peak, inflight);
            await new Promise((r) => setTimeout(r, 40));
            inflight--;
            return { tag: "ok" };
          },
        },
      },
    ]);
    env.links.put({ source_id: "mw", target: "slow", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["receiver"] });
    await env.runtime.start(fixture("inter_component_call_middleware.wasm"), "mw", { count: 2 });
    const callMw = () => invokeJson(env.nc, { lattice: env.lattice, targetId: "mw", iface: "wasmcloud:example/middleware", fn: "invoke", timeoutMs: 5000 }, []);
    const results = await Promise.all(Array.from({ length: 8 }, callMw));
    assert.deepEqual(results, Array(8).fill({ tag: "ok" }));
    assert.equal(peak, 2, "at most count=2 calls run at once");
    peak = 0;
    await env.runtime.scale({ componentId: "mw", componentRef: "", count: 4, annotations: {}, config: [], limits: {}, allowUpdate: false, hostId: undefined });
    await Promise.all(Array.from({ length: 8 }, callMw));
    assert.equal(peak, 4, "scaling to 4 allows 4");
  });
});
