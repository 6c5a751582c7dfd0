/**
 * Component runtime: load, compile + cache, export calls over the lattice, HTTP carried form, control handlers.
 * Fixtures: see test/support/components.ts for provenance (Apache-2.0).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Kvm } from "@nats-io/kv";
import { parse } from "@bytecodealliance/jco";
import { invoke, invokeHttp, invokeJson, t, INTROSPECT_FN, INTROSPECT_IFACE } from "../src/invocation/index.ts";
import { latticeDataBucket } from "../src/core/subjects.ts";
import { EventType } from "../src/core/events.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { waitFor } from "../src/testing/index.ts";
import { fixture, needsFixtures, startRuntime, type RuntimeEnv } from "./support/components.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

describe("component runtime", () => {
  let env: RuntimeEnv;

  before(async () => {
    env = await startRuntime();
  });
  after(async () => {
    await env?.close();
  });

  test("adder: start from a file path, call add over the lattice (typed and JSON)", { skip: needsFixtures("adder.wasm") }, async () => {
    await env.runtime.start(fixture("adder.wasm"), "adder");
    const call = { lattice: env.lattice, targetId: "adder", iface: "docs:adder/add@0.1.0", fn: "add", timeoutMs: 5000 };
    assert.equal(await invokeJson(env.nc, call, [2, 3]), 5);
    assert.equal(await invoke(env.nc, call, t.func([["x", t.u32], ["y", t.u32]], t.u32), [40, 2]), 42);
    await assert.rejects(invokeJson(env.nc, { ...call, fn: "sub" }, [1, 2]), (e: TrellisError) => e.code === "NOT_FOUND" && /does not export/.test(e.message));
    await assert.rejects(invokeJson(env.nc, call, [2]), (e: TrellisError) => e.code === "INVALID_ARGUMENT");
    const described = (await invokeJson(env.nc, { ...call, iface: INTROSPECT_IFACE, fn: INTROSPECT_FN }, [])) as string;
    assert.match(described, /docs:adder\/add@0\.1\.0/);

    const inv = env.runtime.inventory();
    assert.deepEqual(inv.map((c) => [c.id, c.image_ref, c.max_instances]), [["adder", fixture("adder.wasm"), 1]]);
    const scaled = env.events.named(EventType.ComponentScaled);
    assert.deepEqual(scaled.at(-1), { annotations: {}, host_id: "NTESTHOST", image_ref: fixture("adder.wasm"), max_instances: 1, component_id: "adder" });
    const kv = await new Kvm(env.nc).open(latticeDataBucket(env.lattice));
    const spec = (await kv.get("COMPONENT_adder"))!.json<{ url: string; links: unknown[] }>();
    assert.deepEqual(spec, { url: fixture("adder.wasm"), links: [] });
  });

  test("a second start of the same bytes uses the compile cache; file:// URLs load", { skip: needsFixtures("adder.wasm") }, async () => {
    const entries = (await readdir(env.cacheDir)).filter((e) => /^[0-9a-f]{64}$/.test(e));
    assert.equal(entries.length, 1, "one cache entry per sha256");
    await env.runtime.start(pathToFileURL(fixture("adder.wasm")).href, "adder2");
    const started = env.logs.filter((l) => l.msg === "component started" && l.meta["component_id"] === "adder2");
    assert.equal(started[0]?.meta["cached"], true);
    assert.equal(await invokeJson(env.nc, { lattice: env.lattice, targetId: "adder2", iface: "docs:adder/add", fn: "add" }, [7, 8]), 15);
    await env.runtime.stop("adder2");
    assert.deepEqual(env.events.named(EventType.ComponentScaled).at(-1)?.["max_instances"], 0);
  });

  test("http_hello_world_rust: an HTTP request carried over the lattice gets 200 Hello from Rust!", { skip: needsFixtures("http_hello_world_rust.wasm") }, async () => {
    await env.runtime.start(fixture("http_hello_world_rust.wasm"), "hello", { count: 2 });
    const res = await invokeHttp(env.nc, env.lattice, "hello", {
      method: "GET",
      pathWithQuery: "/greet?x=1",
      scheme: "http",
      authority: "localhost",
      headers: [["accept", enc.encode("text/plain")]],
      body: new Uint8Array(0),
    });
    assert.equal(res.status, 200);
    assert.equal(dec.decode(res.body), "Hello from Rust!\n");
    // concurrent requests spread over the two instances
    const many = await Promise.all(
      Array.from({ length: 20 }, () => invokeHttp(env.nc, env.lattice, "hello", { method: "POST", pathWithQuery: "/", headers: [], body: enc.encode("x") })),
    );
    assert.ok(many.every((r) => r.status === 200 && dec.decode(r.body) === "Hello from Rust!\n"));
  });

  test("rejects a core module, an oversized file and a missing file with clear errors", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-bad-"));
    const core = path.join(dir, "core.wasm");
    await writeFile(core, await parse("(module (func (export \"f\")))"));
    await assert.rejects(env.runtime.start(core, "core"), /core WebAssembly module, not a component/);
    const failed = env.events.named(EventType.ComponentScaleFailed).at(-1)!;
    assert.equal(failed["component_id"], "core");
    assert.match(String(failed["error"]), /core WebAssembly module/);
    await assert.rejects(env.runtime.start(path.join(dir, "missing.wasm"), "missing"), /cannot read component/);
    const p3 = path.join(dir, "p3.wasm");
    await writeFile(p3, await parse(`(component (import "wasi:clocks/monotonic-clock@0.3.0" (instance)))`));
    await assert.rejects(env.runtime.start(p3, "p3"), /uses wasi:clocks\/monotonic-clock@0.3.0: it uses the WASI 0.3 \/ async component model/);
    const asyncFn = path.join(dir, "async.wasm");
    await writeFile(asyncFn, await parse(`(component (type (func async)))`));
    await assert.rejects(env.runtime.start(asyncFn, "asyncfn"), /async function types: it uses the WASI 0.3/);

    const small = await startRuntime({ server: env.server, policy: { maxComponentBytes: 1000 } });
    try {
      // the size is checked before the bytes are parsed: a 5000-byte file of zeros is refused for its size
      const big = path.join(dir, "big.wasm");
      await writeFile(big, new Uint8Array(5000));
      await assert.rejects(small.runtime.start(big, "big"), (e: TrellisError) => {
        assert.equal(e.code, "PAYLOAD_TOO_LARGE");
        assert.match(e.message, /5000 bytes, larger than the limit of 1000 bytes/);
        return true;
      });
    } finally {
      await small.close();
    }
  });

  test("component.scale / component.update control handlers", { skip: needsFixtures("adder.wasm") }, async () => {
    const bad = await env.runtime.handleScale(enc.encode(JSON.stringify({ count: 1 })));
    assert.equal(bad.success, false);
    assert.match(bad.message, /component_id/);
    const badCount = await env.runtime.handleScale(enc.encode(JSON.stringify({ component_id: "x", count: -1 })));
    assert.equal(badCount.success, false);
    assert.match(badCount.message, /count must be an integer/);
    assert.equal((await env.runtime.handleScale(enc.encode("{nope"))).success, false);

    // washboard sends max_instances
    const r = await env.runtime.handleScale(
      enc.encode(JSON.stringify({ component_id: "adder3", component_ref: fixture("adder.wasm"), max_instances: 3, annotations: { a: "b" } })),
    );
    assert.deepEqual(r, { success: true, message: "" });
    await waitFor(() => env.runtime.inventory().some((c) => c.id === "adder3"), { timeoutMs: 10_000 });
    assert.deepEqual(env.runtime.inventory().find((c) => c.id === "adder3"), {
      id: "adder3",
      image_ref: fixture("adder.wasm"),
      revision: 0,
      max_instances: 3,
      limits: null,
      annotations: { a: "b" },
      status: "running",
    });

    const notFound = await env.runtime.handleUpdate(enc.encode(JSON.stringify({ component_id: "nope", new_component_ref: fixture("adder.wasm") })));
    assert.deepEqual([notFound.success, notFound.message], [false, "component nope not found"]);
    const same = await env.runtime.handleUpdate(enc.encode(JSON.stringify({ component_id: "adder3", new_component_ref: fixture("adder.wasm") })));
    assert.deepEqual(same, { success: true, message: `component adder3 already updated to ${fixture("adder.wasm")}` });
    const upd = await env.runtime.handleUpdate(
      enc.encode(JSON.stringify({ component_id: "adder3", new_component_ref: pathToFileURL(fixture("adder.wasm")).href })),
    );
    assert.equal(upd.success, true);
    assert.match(upd.message, /updating from .* to file:/);
    await waitFor(() => env.runtime.inventory().find((c) => c.id === "adder3")?.image_ref.startsWith("file:") === true, { timeoutMs: 10_000 });
    assert.equal(await invokeJson(env.nc, { lattice: env.lattice, targetId: "adder3", iface: "docs:adder/add", fn: "add" }, [1, 1]), 2);

    const stop = await env.runtime.handleScale(enc.encode(JSON.stringify({ component_id: "adder3", count: 0 })));
    assert.equal(stop.success, true);
    await waitFor(() => !env.runtime.inventory().some((c) => c.id === "adder3"), { timeoutMs: 10_000 });
    await assert.rejects(
      invokeJson(env.nc, { lattice: env.lattice, targetId: "adder3", iface: "docs:adder/add", fn: "add", timeoutMs: 500 }, [1, 1]),
      (e: TrellisError) => e.code === "NO_RESPONDERS",
    );
  });
});
