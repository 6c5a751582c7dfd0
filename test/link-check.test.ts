/**
 * Links checked against the parties they join (issue 11 G): a host's `link.put` asks the link's source and target
 * what they import and export (`trellis:runtime/introspect.world`) and reports a mismatch — a warning in the reply
 * and a `linkdef_warning` event, or a refusal with `strict` — and a component that starts with links it cannot use
 * says so (`component_links_unused`). Fixtures (read in place; Apache-2.0): adder.wasm from bytecodealliance/jco
 * (dae02a06), http_counter.wasm from wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentRuntime } from "../src/component/index.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { serveInterfaces, t as wit } from "../src/invocation/index.ts";
import { waitFor } from "../src/testing/index.ts";
import { testLattice, type EventRecorder, type TestLattice } from "./support/lattice.ts";
import { fixture, needsFixtures, RUNTIME_TEST_LOADS } from "./support/components.ts";

describe("links checked against their parties", { skip: needsFixtures("adder.wasm", "http_counter.wasm") }, () => {
  let t: TestLattice;
  let rec: EventRecorder;
  const started = async (id: string) =>
    waitFor(async () => (await t.client.getInventory(t.hosts[0]!.id)).components.some((c) => c.id === id), { timeoutMs: 30_000, message: `${id} running` });

  before(async () => {
    t = await testLattice();
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-linkcheck-"));
    await t.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, workloads: { components: componentRuntime() } });
    rec = await t.recordEvents();
    // a typed target that serves wasi:keyvalue/store only (as a provider declares what it serves)
    serveInterfaces(await t.connection(), { lattice: t.lattice, targetId: "kvstore" }, [
      {
        type: { name: "wasi:keyvalue/store@0.2.0-draft", resources: ["bucket"], functions: { open: wit.func([["identifier", wit.string]], wit.own("bucket")) } },
        handlers: { open: () => new Uint8Array([1]) },
      },
    ]);
    await t.client.scaleComponent(t.hosts[0]!.id, { component_ref: fixture("adder.wasm"), component_id: "adder", count: 1 });
    await t.client.scaleComponent(t.hosts[0]!.id, { component_ref: fixture("http_counter.wasm"), component_id: "counter", count: 1 });
    await started("adder");
    await started("counter");
  });
  after(async () => {
    await t?.close();
  });

  test("a link from the adder for an interface it does not import is reported after put (event, log); --strict refuses it at put", async () => {
    const link = { source_id: "adder", target: "kvstore", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] };
    const msg = await t.client.putLink(link);
    // the put is answered as before: the check runs after it (docs/control-interface.md, "Link checks") and reports by event
    assert.equal(msg, "successfully set link");
    assert.ok((await t.client.getLinks()).some((l) => l.source_id === "adder"), "a warning still writes the link");
    await waitFor(() => rec.ofType("linkdef_warning").some((e) => e.data["source_id"] === "adder"), { timeoutMs: 3000, message: "linkdef_warning" });
    assert.deepEqual(rec.ofType("linkdef_warning").find((e) => e.data["source_id"] === "adder")!.data["warnings"], ["source adder does not import wasi:keyvalue/store"]);

    const strict = { ...link, name: "other", strict: true };
    await assert.rejects(t.client.putLink(strict), (e: TrellisError) => /refused \(strict\): source adder does not import wasi:keyvalue\/store/.test(e.message));
    assert.ok(!(await t.client.getLinks()).some((l) => l.name === "other"), "a strict refusal writes nothing");
  });

  test("a target that does not export one of the interfaces is reported; a fitting link or unknown parties give no warning", async () => {
    await t.client.putLink({ source_id: "counter", target: "kvstore", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store", "atomics"] });
    await waitFor(() => rec.ofType("linkdef_warning").some((e) => e.data["source_id"] === "counter" && e.data["name"] === "default"), { timeoutMs: 3000, message: "linkdef_warning" });
    assert.deepEqual(rec.ofType("linkdef_warning").find((e) => e.data["source_id"] === "counter")!.data["warnings"], ["target kvstore does not export wasi:keyvalue/atomics"]);
    await t.client.putLink({ source_id: "counter", target: "kvstore", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"], name: "fits" });
    await t.client.putLink({ source_id: "not-running", target: "nobody", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] });
    await new Promise((r) => setTimeout(r, 1500)); // both checks have run (750 ms lookup budget)
    assert.ok(!rec.ofType("linkdef_warning").some((e) => e.data["name"] === "fits" || e.data["source_id"] === "not-running"), "no warning for a fitting link or unknown parties");
  });

  test("a component that starts with links it cannot use says so", async () => {
    await t.client.putLink({ source_id: "adder2", target: "kvstore", wit_namespace: "wasi", wit_package: "blobstore", interfaces: ["container"] });
    await t.client.scaleComponent(t.hosts[0]!.id, { component_ref: fixture("adder.wasm"), component_id: "adder2", count: 1 });
    const ev = await waitFor(() => rec.ofType("component_links_unused").find((e) => e.data["component_id"] === "adder2"), { timeoutMs: 30_000 });
    assert.deepEqual(ev.data["links"], ["link adder2 -[wasi:blobstore/{container} @default]-> kvstore: component adder2 does not import wasi:blobstore/container"]);
  });
});
