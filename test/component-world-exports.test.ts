/**
 * World-level exports and imports (issue 11 I): a component whose world says `export add: func(…)` is served over
 * the lattice under the interface token `world` (docs/protocol.md §2), listed by introspection, called by name with
 * `trellis call ID add`, and a component whose world says `import add: func(…)` reaches it through a link
 * (`trellis`, `world`, interface `add`). Both guests are built here from JS with componentize-qjs.
 */
import { RUNTIME_TEST_LOADS } from "./support/components.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { componentize } from "componentize-qjs";
import { componentRuntime } from "../src/component/index.ts";
import { invoke, invokeJson, INTROSPECT_FN, INTROSPECT_IFACE, t as wit, WORLD_IFACE } from "../src/invocation/index.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { waitFor } from "../src/testing/index.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CALC_WIT = `package test:calc@0.1.0;

world calc {
  export add: func(a: u32, b: u32) -> u32;
  export greet: func(name: string) -> string;
}
`;
const CALC_JS = `
export function add(a, b) { return a + b; }
export function greet(name) { return "hello " + name; }
`;
const USER_WIT = `package test:user@0.1.0;

interface api {
  run: func(a: u32) -> u32;
}

world user {
  import add: func(a: u32, b: u32) -> u32;
  export api;
}
`;
// componentize-qjs exposes world-level imports as globals
const USER_JS = `export const api = { run(a) { return globalThis.add(a, 100); } };`;

async function build(dir: string, name: string, witText: string, js: string): Promise<string> {
  await writeFile(path.join(dir, `${name}.wit`), witText);
  const { component } = await componentize({ witPath: path.join(dir, `${name}.wit`), jsSource: js, sync: true, optSize: true });
  const out = path.join(dir, `${name}.wasm`);
  await writeFile(out, component);
  return out;
}

describe("world-level exports and imports", () => {
  let tl: TestLattice;
  let calc: string;
  let user: string;
  const trellis = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [path.join(ROOT, "bin", "trellis.mjs"), "--nats-url", tl.nats.url, "--lattice", tl.lattice, ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      });
    });
  const running = (id: string) =>
    waitFor(async () => (await tl.client.getInventory(tl.hosts[0]!.id)).components.some((c) => c.id === id), { timeoutMs: 30_000, message: `${id} running` });

  before(async () => {
    tl = await testLattice();
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-world-"));
    await tl.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, workloads: { components: componentRuntime() } });
    calc = await build(dir, "calc", CALC_WIT, CALC_JS);
    user = await build(dir, "user", USER_WIT, USER_JS);
    await tl.client.scaleComponent(tl.hosts[0]!.id, { component_ref: calc, component_id: "calc", count: 1 });
    await running("calc");
  });
  after(async () => {
    await tl?.close();
  });

  test("called by name over the lattice (binary and JSON form, and trellis call ID FUNCTION); listed by introspection", async () => {
    const at = { lattice: tl.lattice, targetId: "calc", iface: WORLD_IFACE, timeoutMs: 10_000 };
    assert.equal(await invoke(tl.client.nc, { ...at, fn: "add" }, wit.func([["a", wit.u32], ["b", wit.u32]], wit.u32), [2, 3]), 5);
    assert.equal(await invokeJson(tl.client.nc, { ...at, fn: "greet" }, ["lattice"]), "hello lattice");
    await assert.rejects(invokeJson(tl.client.nc, { ...at, fn: "add" }, [-1, 3]), (e: TrellisError) => e.code === "INVALID_ARGUMENT");
    await assert.rejects(invokeJson(tl.client.nc, { ...at, fn: "nope" }, []), (e: TrellisError) => e.code === "NOT_FOUND");
    const described = JSON.parse((await invokeJson(tl.client.nc, { ...at, iface: INTROSPECT_IFACE, fn: INTROSPECT_FN }, [])) as string) as { name: string; functions: object }[];
    assert.ok(described.some((i) => i.name === "world" && "add" in i.functions && "greet" in i.functions), JSON.stringify(described));
    const r = await trellis("call", "calc", "add", "[20, 22]");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "42\n");
    const w = await trellis("inspect", "calc");
    assert.match(w.stdout, /^ {2}export add: func\(a: u32, b: u32\) -> u32;$/m);
  });

  test("a world-level import linked to a target serving the same function name", async () => {
    await tl.client.putLink({ source_id: "user", target: "calc", wit_namespace: "trellis", wit_package: "world", interfaces: ["add"] });
    await tl.client.scaleComponent(tl.hosts[0]!.id, { component_ref: user, component_id: "user", count: 1 });
    await running("user");
    const run = () => invokeJson(tl.client.nc, { lattice: tl.lattice, targetId: "user", iface: "test:user/api", fn: "run", timeoutMs: 10_000 }, [1]);
    assert.equal(await run(), 101);
    // the link check knows world-level functions too: no warning for this link
    assert.equal(await tl.client.putLink({ source_id: "user", target: "calc", wit_namespace: "trellis", wit_package: "world", interfaces: ["add"], name: "again" }), "successfully set link");
  });
});
