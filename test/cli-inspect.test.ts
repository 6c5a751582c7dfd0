/**
 * `trellis inspect FILE|ID` (issue 11 B) and `trellis start component` under a running id with another image
 * (issue 11 D), run as a user runs them: `bin/trellis.mjs` in a real process, a real nats-server and a host running
 * the component runtime. Fixtures (read in place; Apache-2.0): http_counter.wasm and http_hello_world_rust.wasm from
 * wasmCloud/wasmCloud crates/wash/tests/fixtures (a1806a3e), adder.wasm from bytecodealliance/jco (dae02a06).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { componentRuntime } from "../src/component/index.ts";
import { invokeJson } from "../src/invocation/index.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { fixture, needsFixtures, RUNTIME_TEST_LOADS } from "./support/components.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin", "trellis.mjs");
const skip = needsFixtures("http_counter.wasm", "adder.wasm", "http_hello_world_rust.wasm");

describe("trellis inspect; start under a running id", { skip }, () => {
  let t: TestLattice;
  const trellis = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, "--nats-url", t.nats.url, "--lattice", t.lattice, ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      });
    });

  before(async () => {
    t = await testLattice();
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-inspect-"));
    await t.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, workloads: { components: componentRuntime() } });
  });
  after(async () => {
    await t?.close();
  });

  test("a file: the world as WIT with its imports (wasi:keyvalue/atomics) and typed functions; --output json", async () => {
    let r = await trellis("inspect", fixture("http_counter.wasm"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^world http-counter \{$/m);
    assert.match(r.stdout, /^ {2}import wasi:keyvalue\/atomics@0\.2\.0-draft;$/m);
    assert.match(r.stdout, /^ {2}export wasi:http\/incoming-handler@0\.2\.2;$/m);
    assert.match(r.stdout, /interface wasi:keyvalue\/atomics@0\.2\.0-draft \{\n(?:.*\n)*? {2}increment: func\(bucket: borrow<bucket>, key: string, delta: u64\) -> result<u64, error>;/);
    r = await trellis("--output", "json", "inspect", fixture("adder.wasm"));
    assert.equal(r.code, 0, r.stderr);
    const world = JSON.parse(r.stdout) as { imports: object; exports: Record<string, { functions: Record<string, unknown> }> };
    assert.deepEqual(Object.keys(world.exports), ["docs:adder/add@0.1.0"]);
    assert.deepEqual(world.exports["docs:adder/add@0.1.0"]!.functions["add"], {
      params: [{ name: "x", type: { kind: "u32" } }, { name: "y", type: { kind: "u32" } }],
      result: { kind: "u32" },
    });
    r = await trellis("inspect", path.join(ROOT, "package.json"));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not a WebAssembly component/);
  });

  test("an id: the running component is asked over the lattice, imports included", async () => {
    let r = await trellis("start", "component", fixture("http_counter.wasm"), "counter");
    assert.equal(r.code, 0, r.stderr);
    r = await trellis("inspect", "counter");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^world counter \{$/m);
    assert.match(r.stdout, /^ {2}import wasi:keyvalue\/atomics@0\.2\.0-draft;$/m);
    assert.match(r.stdout, /^ {2}import wasi:keyvalue\/store@0\.2\.0-draft;$/m);
    r = await trellis("--output", "json", "inspect", "counter");
    assert.ok(Object.keys((JSON.parse(r.stdout) as { imports: object }).imports).includes("wasi:keyvalue/atomics@0.2.0-draft"));
    r = await trellis("inspect", "nobody-runs-this");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /nobody-runs-this/);
  });

  test("start with another image under a running id: a clear refusal, or an update with --update", async () => {
    let r = await trellis("start", "component", fixture("adder.wasm"), "swap");
    assert.equal(r.code, 0, r.stderr);
    r = await trellis("start", "component", fixture("http_hello_world_rust.wasm"), "swap");
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /component swap already runs .*adder\.wasm.*update component swap/);
    const add = () => invokeJson(t.client.nc, { lattice: t.lattice, targetId: "swap", iface: "docs:adder/add", fn: "add", timeoutMs: 5000 }, [1, 2]);
    assert.equal(await add(), 3, "the old image still serves");
    // the same image: a rescale where it runs
    r = await trellis("scale", "component", "swap", "--count", "2");
    assert.equal(r.code, 0, r.stderr);
    r = await trellis("start", "component", fixture("http_hello_world_rust.wasm"), "swap", "--update");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /component swap updating from .*adder\.wasm to .*http_hello_world_rust\.wasm/);
    r = await trellis("--output", "json", "inspect", "swap");
    assert.deepEqual(Object.keys((JSON.parse(r.stdout) as { exports: object }).exports), ["wasi:http/incoming-handler@0.2.0"]);
  });
});
