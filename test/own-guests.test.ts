/**
 * The paths the suite asserts with third-party fixture binaries, covered again by components this repository builds
 * from its own JavaScript sources (componentize-qjs, about a second each), so that a clone without `../shared/` still
 * tests them: a chain of three components linked at run time, and every WIT type kind through a real guest.
 * (HTTP hello and the key-value counter from `examples/` are covered by test/demo-e2e.test.ts.)
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentize } from "componentize-qjs";
import { invoke, invokeJson, t } from "../src/invocation/index.ts";
import { TrellisError } from "../src/core/errors.ts";
import { startRuntime, type RuntimeEnv } from "./support/components.ts";

const CHAIN_WIT = `package test:chain@0.1.0;
interface entry { run: func(s: string) -> string; }
interface middleware { invoke: func(s: string) -> result<string, string>; }
interface receiver { invoke: func(s: string) -> string; }
world caller { import middleware; export entry; }
world mid { import receiver; export middleware; }
world callee { export receiver; }
`;

const GUESTS = {
  caller: `import { invoke } from "test:chain/middleware@0.1.0";
export const entry = { run(s) { return "caller>" + invoke(s); } };`,
  mid: `import { invoke as receive } from "test:chain/receiver@0.1.0";
export const middleware = { invoke(s) { if (s === "fail") throw "middleware refused"; return "middleware>" + receive(s); } };`,
  callee: `export const receiver = { invoke(s) { return "callee:" + s; } };`,
};

const KINDS_WIT = `package test:kinds@0.1.0;
interface echo {
  record point { x: s32, y-coord: u64 }
  variant shape { circle(f64), none, named(string) }
  enum color { red, dark-green }
  flags perms { read, write-all }
  echo-point: func(p: point) -> point;
  echo-shape: func(s: shape) -> shape;
  paint: func(c: color, p: perms) -> tuple<color, perms>;
  maybe: func(o: option<option<u32>>) -> option<option<u32>>;
  outcome: func(r: result<list<tuple<char, s8>>, string>) -> result<list<tuple<char, s8>>, string>;
  ints: func(a: u64, b: s64, c: u8, d: s16, e: f32, f: f64) -> tuple<u64, s64, u8, s16, f32, f64>;
  bytes: func(b: list<u8>) -> list<u8>;
  text: func(s: string, c: char) -> string;
}
world kinds { export echo; }
`;

const KINDS_JS = `export const echo = {
  echoPoint(p) { return p; },
  echoShape(s) { return s; },
  paint(c, p) { return [c, p]; },
  maybe(o) { return o; },
  outcome(r) { if (r.tag === "err") throw r.val; return r.val; },
  ints(a, b, c, d, e, f) { return [a, b, c, d, e, f]; },
  bytes(b) { return b; },
  text(s, c) { return s + c; },
};`;

async function build(dir: string, wit: string, world: string, js: string): Promise<string> {
  const witPath = path.join(dir, `${world}.wit`);
  await writeFile(witPath, wit);
  const { component } = await componentize({ witPath, world, jsSource: js, sync: true, optSize: true });
  const out = path.join(dir, `${world}.wasm`);
  await writeFile(out, component);
  return out;
}

describe("components built from this repository's own sources", () => {
  let env: RuntimeEnv;
  let dir: string;
  before(async () => {
    env = await startRuntime();
    dir = await mkdtemp(path.join(tmpdir(), "trellis-own-"));
  });
  after(async () => {
    await env?.close();
  });

  test("caller → middleware → callee: three components linked at run time, errors crossing as result values", async () => {
    for (const world of ["caller", "mid", "callee"] as const) {
      await env.runtime.start(await build(dir, CHAIN_WIT, world, GUESTS[world]), `own-${world}`);
    }
    env.links.put({ source_id: "own-caller", target: "own-mid", wit_namespace: "test", wit_package: "chain", interfaces: ["middleware"] });
    env.links.put({ source_id: "own-mid", target: "own-callee", wit_namespace: "test", wit_package: "chain", interfaces: ["receiver"] });
    const run = (s: string) => invokeJson(env.nc, { lattice: env.lattice, targetId: "own-caller", iface: "test:chain/entry@0.1.0", fn: "run", timeoutMs: 5000 }, [s]);
    assert.equal(await run("hi"), "caller>middleware>callee:hi");
    // the middleware's err value comes back to the caller, which lets it escape: a trap of the caller, not a hang
    await assert.rejects(run("fail"), (e: TrellisError) => e instanceof TrellisError);
    assert.equal(await run("again"), "caller>middleware>callee:again");
  });

  test("every WIT type kind round-trips through a real guest, typed and in the JSON form", async () => {
    await env.runtime.start(await build(dir, KINDS_WIT, "kinds", KINDS_JS), "own-kinds");
    const call = (fn: string) => ({ lattice: env.lattice, targetId: "own-kinds", iface: "test:kinds/echo@0.1.0", fn, timeoutMs: 5000 });
    const point = t.record({ x: t.s32, "y-coord": t.u64 }, "point");
    const shape = t.variant({ circle: t.f64, none: undefined, named: t.string }, "shape");
    const color = t.enum(["red", "dark-green"], "color");
    const perms = t.flags(["read", "write-all"], "perms");

    assert.deepEqual(await invoke(env.nc, call("echo-point"), t.func([["p", point]], point), [{ x: -5, yCoord: 9007199254740991n }]), { x: -5, yCoord: 9007199254740991n });
    for (const s of [{ tag: "circle", val: 1.5 }, { tag: "none" }, { tag: "named", val: "𝄞 astral" }]) {
      assert.deepEqual(await invoke(env.nc, call("echo-shape"), t.func([["s", shape]], shape), [s]), s);
    }
    assert.deepEqual(await invokeJson(env.nc, call("paint"), ["dark-green", ["write-all"]]), ["dark-green", ["write-all"]]);
    const paint = t.func([["c", color], ["p", perms]], t.tuple(color, perms));
    assert.deepEqual(await invoke(env.nc, call("paint"), paint, ["red", { read: true, writeAll: true }]), ["red", { read: true, writeAll: true }]);
    for (const o of [{ tag: "none" }, { tag: "some", val: null }, { tag: "some", val: 7 }]) {
      assert.deepEqual(await invokeJson(env.nc, call("maybe"), [o]), o, `maybe(${JSON.stringify(o)})`);
    }
    assert.deepEqual(await invokeJson(env.nc, call("outcome"), [{ tag: "ok", val: [["é", -128], ["𝄞", 127]] }]), { tag: "ok", val: [["é", -128], ["𝄞", 127]] });
    assert.deepEqual(await invokeJson(env.nc, call("outcome"), [{ tag: "err", val: "no" }]), { tag: "err", val: "no" });
    const ints = t.tuple(t.u64, t.s64, t.u8, t.s16, t.f32, t.f64);
    const intsFn = t.func([["a", t.u64], ["b", t.s64], ["c", t.u8], ["d", t.s16], ["e", t.f32], ["f", t.f64]], ints);
    // componentize-qjs 0.4.5 carries 64-bit integers through a double inside the guest (2^63 − 1 comes back as 2^63,
    // 2^64 − 1 traps): the full u64/s64 range is covered against Rust guests and by test/invocation-codec.test.ts.
    const args = [9007199254740991n, -9007199254740991n, 255, -32768, 0.5, -1e300];
    assert.deepEqual(await invoke(env.nc, call("ints"), intsFn, args), args);
    for (const size of [0, 1024 * 1024]) {
      const bytes = new Uint8Array(size).map((_, i) => i % 251);
      const back = (await invoke(env.nc, call("bytes"), t.func([["b", t.list(t.u8)]], t.list(t.u8)), [bytes])) as Uint8Array;
      assert.equal(back.length, size);
      assert.deepEqual(Buffer.from(back).equals(Buffer.from(bytes)), true);
    }
    assert.equal(await invokeJson(env.nc, call("text"), ["héllo ", "𝄞"]), "héllo 𝄞");
  });
});
