/**
 * Import routing by links (issue 3 §4): the wasmCloud inter-component chain (caller → middleware → callee), the
 * missing-link error, live link changes without restart. Fixtures: see test/support/components.ts (Apache-2.0).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { invokeHttp, invokeJson, serveInterfaces, t } from "../src/invocation/index.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { waitFor } from "../src/testing/index.ts";
import { fixture, startRuntime, type RuntimeEnv, needsFixtures } from "./support/components.ts";

const request = { method: "GET", pathWithQuery: "/", headers: [], body: new Uint8Array(0) };

describe("import routing by links", { skip: needsFixtures("inter_component_call_caller.wasm", "inter_component_call_middleware.wasm", "inter_component_call_callee.wasm") }, () => {
  let env: RuntimeEnv;
  before(async () => {
    env = await startRuntime();
  });
  after(async () => {
    await env?.close();
  });

  test("caller → middleware → callee, links put before and after the components start", async () => {
    // one link before anything runs
    env.links.put({ source_id: "caller", target: "middleware", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["middleware"] });
    await env.runtime.start(fixture("inter_component_call_caller.wasm"), "caller");
    await env.runtime.start(fixture("inter_component_call_middleware.wasm"), "middleware");
    await env.runtime.start(fixture("inter_component_call_callee.wasm"), "callee");
    // the other after
    env.links.put({ source_id: "middleware", target: "callee", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["receiver"] });
    await new Promise((r) => setTimeout(r, 50));

    const res = await invokeHttp(env.nc, env.lattice, "caller", request, { timeoutMs: 5000 });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
    await waitFor(() => env.logs.some((l) => l.msg === "receiver: invoke"), { timeoutMs: 2000 });
    const guestLogs = env.logs.filter((l) => l.meta["source"] === "wasi:logging");
    const mw = guestLogs.findIndex((l) => l.msg === "middleware: invoke" && l.meta["component_id"] === "middleware");
    const rc = guestLogs.findIndex((l) => l.msg === "receiver: invoke" && l.meta["component_id"] === "callee");
    assert.ok(mw >= 0, `middleware log missing: ${JSON.stringify(guestLogs)}`);
    assert.ok(rc > mw, "receiver logs after middleware");
  });

  test("a missing link fails the call naming component, interface and link name; putting it fixes the same call live", async () => {
    await env.runtime.start(fixture("inter_component_call_middleware.wasm"), "lonely");
    const call = () => invokeHttp(env.nc, env.lattice, "caller2", request, { timeoutMs: 5000 });
    await env.runtime.start(fixture("inter_component_call_caller.wasm"), "caller2");
    await assert.rejects(call(), (e: TrellisError) => {
      assert.equal(e.code, "LINK_NOT_FOUND");
      assert.match(e.message, /component caller2 has no link for interface wasmcloud:example\/middleware with link name "default"/);
      assert.deepEqual(e.details, { componentId: "caller2", iface: "wasmcloud:example/middleware", linkName: "default" });
      return true;
    });
    // the host keeps serving
    assert.equal((await invokeHttp(env.nc, env.lattice, "caller", request)).status, 200);
    // middleware "lonely" has no receiver link either: the error travels back through the chain
    const l1 = env.links.put({ source_id: "caller2", target: "lonely", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["middleware"] });
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(call(), (e: TrellisError) => e.code === "LINK_NOT_FOUND" && /component lonely has no link for interface wasmcloud:example\/receiver/.test(e.message));
    env.links.put({ source_id: "lonely", target: "callee", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["receiver"] });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await call()).status, 200);
    // deleting the link takes effect live too
    env.links.del(l1);
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(call(), (e: TrellisError) => e.code === "LINK_NOT_FOUND");
  });

  test("a link put while the component is still starting is not lost", async () => {
    // start without awaiting, then put the link at once: the change lands while the worker loads the component
    const starting = env.runtime.start(fixture("inter_component_call_caller.wasm"), "caller3");
    env.links.put({ source_id: "caller3", target: "middleware", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["middleware"] });
    await starting;
    assert.equal((await invokeHttp(env.nc, env.lattice, "caller3", request, { timeoutMs: 5000 })).status, 200);
  });

  test("calls to one component id spread over its hosts (queue group)", async () => {
    const other = await startRuntime({ server: env.server, lattice: env.lattice, hostId: "NOTHERHOST" });
    try {
      serveInterfaces(env.nc, { lattice: env.lattice, targetId: "sink" }, [
        {
          type: { name: "wasmcloud:example/receiver@0.0.1", resources: [], functions: { invoke: t.func([], t.result(undefined, t.string)) } },
          handlers: { invoke: () => ({ tag: "ok" }) },
        },
      ]);
      const link = { source_id: "spread", target: "sink", wit_namespace: "wasmcloud", wit_package: "example", interfaces: ["receiver"] };
      env.links.put(link);
      other.links.put(link);
      await env.runtime.start(fixture("inter_component_call_middleware.wasm"), "spread");
      await other.runtime.start(fixture("inter_component_call_middleware.wasm"), "spread");
      const call = () => invokeJson(env.nc, { lattice: env.lattice, targetId: "spread", iface: "wasmcloud:example/middleware", fn: "invoke" }, []);
      for (let i = 0; i < 40; i++) assert.deepEqual(await call(), { tag: "ok" });
      const served = (logs: typeof env.logs) => logs.filter((l) => l.meta["component_id"] === "spread" && l.msg === "middleware: invoke").length;
      await waitFor(() => served(env.logs) + served(other.logs) === 40, { timeoutMs: 2000 });
      assert.ok(served(env.logs) > 0 && served(other.logs) > 0, `both hosts served: ${served(env.logs)} + ${served(other.logs)}`);
    } finally {
      await other.close();
    }
  });
});
