/**
 * Exact JSON arguments (issue 11 A, docs/protocol.md §6 and §4.1): every WIT type is checked and a bad value is
 * refused with INVALID_ARGUMENT naming its path — in the converter, and end to end through a component's target
 * (adder.wasm fixture, Apache-2.0, bytecodealliance/jco dae02a06; a JS guest built here with componentize-qjs).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentize } from "componentize-qjs";
import { argsFromJson, fromJson, invokeJson, resultToJson, t, type ResourceMapper } from "../src/invocation/index.ts";
import { InvalidArgumentError, type TrellisError } from "../src/core/errors.ts";
import { fixture, needsFixtures, startRuntime, type RuntimeEnv } from "./support/components.ts";

/** Asserts INVALID_ARGUMENT whose message starts with the path and matches `re`. */
function bad(f: () => unknown, path: string, re?: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.code, "INVALID_ARGUMENT");
    assert.ok(e.message.startsWith(`${path}: `), `message ${JSON.stringify(e.message)} should start with ${path}`);
    if (re) assert.match(e.message, re);
    return true;
  });
}

const shape = t.variant([["circle", t.f64], ["square", t.f64], ["empty", undefined]], "shape");
const point = t.record([["x", t.s32], ["y-coord", t.u64], ["label", t.option(t.string)]], "point");
const perms = t.flags(["read", "write-all"], "perms");
const color = t.enum(["red", "green"], "color");

describe("JSON form: every type checked", () => {
  test("integers: ranges of u8…s32, u64/s64 as numbers or decimal strings, no strings for small ints", () => {
    const add = t.func([["x", t.u32], ["y", t.u32]], t.u32);
    assert.deepEqual(argsFromJson(add, [4294967295, 0]), [4294967295, 0]);
    bad(() => argsFromJson(add, [-1, 2]), "x", /u32/);
    bad(() => argsFromJson(add, [4294967296, 0]), "x", /u32/);
    bad(() => argsFromJson(add, ["7", 1]), "x", /u32/);
    bad(() => argsFromJson(add, [1.5, 1]), "x");
    bad(() => argsFromJson(add, [1, true]), "y");
    bad(() => fromJson(t.s8, 128), "value");
    bad(() => fromJson(t.u16, 65536), "value");
    bad(() => fromJson(t.s32, -2147483649), "value");
    assert.equal(fromJson(t.u64, "18446744073709551615"), 18446744073709551615n);
    bad(() => fromJson(t.u64, "18446744073709551616"), "value", /out of range/);
    bad(() => fromJson(t.u64, -1), "value", /out of range/);
    bad(() => fromJson(t.s64, "9223372036854775808"), "value", /out of range/);
    bad(() => fromJson(t.u64, 2 ** 60), "value"); // not exact as a JSON number
    bad(() => fromJson(t.u64, "1e3"), "value");
    bad(() => fromJson(t.bool, 1), "value", /bool/);
    bad(() => fromJson(t.f64, "1.5"), "value");
    assert.ok(Number.isNaN(fromJson(t.f32, "NaN")));
  });

  test("char is exactly one Unicode scalar value; strings have no lone surrogates", () => {
    assert.equal(fromJson(t.char, "é"), "é");
    assert.equal(fromJson(t.char, "😀"), "😀");
    bad(() => fromJson(t.char, "ab"), "value", /one Unicode scalar/);
    bad(() => fromJson(t.char, ""), "value");
    bad(() => fromJson(t.char, "\ud800"), "value");
    bad(() => fromJson(t.char, 65), "value");
    bad(() => fromJson(t.string, "a\udc00"), "value", /surrogate/);
    bad(() => fromJson(t.string, 5), "value", /string/);
  });

  test("variants, enums, options, results: only their documented shapes", () => {
    assert.deepEqual(fromJson(shape, { tag: "circle", val: 1.5 }), { tag: "circle", val: 1.5 });
    assert.deepEqual(fromJson(shape, "empty"), { tag: "empty" });
    bad(() => fromJson(shape, { circle: 1.5 }), "value", /tag/);
    bad(() => fromJson(shape, { tag: "triangle", val: 1 }), "value", /unknown variant case "triangle"/);
    bad(() => fromJson(shape, { tag: "circle" }), "value", /needs a "val"/);
    bad(() => fromJson(shape, "circle"), "value", /needs a payload/);
    bad(() => fromJson(shape, { tag: "empty", val: 3 }), "value", /no payload/);
    bad(() => fromJson(shape, { tag: "circle", val: "big" }), "value.circle", /f64/);
    bad(() => fromJson(shape, { tag: "circle", val: 1, extra: 1 }), "value", /"extra"/);
    assert.equal(fromJson(color, "green"), "green");
    bad(() => fromJson(color, "blue"), "value", /red, green/);
    bad(() => fromJson(color, 0), "value");
    assert.equal(fromJson(t.option(t.u8), null), undefined);
    assert.equal(fromJson(t.option(t.u8), 3), 3);
    bad(() => fromJson(t.option(t.u8), 300), "value.some");
    assert.deepEqual(fromJson(t.option(t.option(t.u8)), { tag: "some", val: null }), { tag: "some", val: undefined });
    bad(() => fromJson(t.option(t.option(t.u8)), 3), "value");
    const r = t.result(t.u8, t.string);
    assert.deepEqual(fromJson(r, { tag: "err", val: "no" }), { tag: "err", val: "no" });
    bad(() => fromJson(r, { ok: 1 }), "value");
    bad(() => fromJson(r, { tag: "ok", val: "x" }), "value.ok", /u8/);
    bad(() => fromJson(r, { tag: "maybe" }), "value", /unknown result case/);
    assert.deepEqual(fromJson(t.result(), { tag: "ok" }), { tag: "ok", val: undefined });
  });

  test("flags: known names only", () => {
    assert.deepEqual(fromJson(perms, ["write-all"]), { read: false, writeAll: true });
    assert.deepEqual(fromJson(perms, { read: true }), { read: true, writeAll: false });
    bad(() => fromJson(perms, ["exec"]), "value[0]", /unknown flag/);
    bad(() => fromJson(perms, { exec: true }), "value", /unknown flag/);
    bad(() => fromJson(perms, { read: 1 }), "value.read", /bool/);
    bad(() => fromJson(perms, "read"), "value");
  });

  test("records: unknown and missing fields, nested paths; lists and tuples by index; fixed lengths", () => {
    const fn = t.func([["p", point], ["items", t.list(point)]], t.bool);
    const ok = { x: -1, "y-coord": 2, label: "a" };
    assert.deepEqual(argsFromJson(fn, [ok, []]), [{ x: -1, yCoord: 2n, label: "a" }, []]);
    assert.deepEqual(fromJson(point, { x: 1, yCoord: "3" }), { x: 1, yCoord: 3n, label: undefined }, "camelCase and a missing option field");
    bad(() => argsFromJson(fn, [{ x: "1", "y-coord": 2 }, []]), "p.x", /s32/);
    bad(() => argsFromJson(fn, [{ x: 1 }, []]), "p", /missing field "y-coord"/);
    bad(() => argsFromJson(fn, [{ x: 1, "y-coord": 2, z: 0 }, []]), "p", /unknown field\(s\) "z"/);
    bad(() => argsFromJson(fn, [ok, [ok, ok, { ...ok, label: 7 }]]), "items[2].label.some", /string/);
    bad(() => argsFromJson(fn, [ok, {}]), "items", /array/);
    bad(() => fromJson(t.tuple(t.u8, t.string), [1]), "value", /tuple/);
    bad(() => fromJson(t.list(t.u8, 3), [1, 2]), "value", /exactly 3/);
    bad(() => fromJson(t.list(t.u8), [1, 256]), "value[1]", /u8/);
    bad(() => argsFromJson(fn, { p: ok }), "items", /missing parameter/);
    bad(() => argsFromJson(fn, { p: ok, items: [], q: 1 }), "q", /unknown parameter/);
    assert.throws(() => argsFromJson(fn, [ok]), /expected 2 argument/);
  });

  test("handles: base64 strings, mapped both ways by the target's resource mapper", () => {
    const open = t.func([["name", t.string]], t.own("bucket"));
    const get = t.func([["self", t.borrow("bucket")]], t.string);
    const mapper: ResourceMapper = {
      toHandle: (_r, v) => new TextEncoder().encode((v as { name: string }).name),
      fromHandle: (_r, h) => ({ name: new TextDecoder().decode(h) }),
    };
    const handle = resultToJson(open, { name: "b1" }, mapper);
    assert.equal(handle, Buffer.from("b1").toString("base64"));
    assert.deepEqual(argsFromJson(get, [handle], mapper), [{ name: "b1" }]);
    assert.deepEqual(argsFromJson(get, [handle]), [new TextEncoder().encode("b1")]);
    bad(() => argsFromJson(get, [{ name: "b1" }]), "self", /base64/);
    bad(() => argsFromJson(get, ["not base64!"]), "self", /base64/);
  });
});

const WIT = `package test:json@0.1.0;

interface shapes {
  variant shape { circle(f64), square(f64), empty }
  record point { x: s32, y: s32 }
  area: func(s: shape) -> f64;
  move: func(p: point, by: s32) -> point;
  first: func(c: char) -> u32;
}

world w {
  export shapes;
}
`;
const JS = `
export const shapes = {
  area(s) { return s.tag === "circle" ? 3 * s.val * s.val : s.tag === "square" ? s.val * s.val : 0; },
  move(p, by) { return { x: p.x + by, y: p.y + by }; },
  first(c) { return c.codePointAt(0); },
};
`;

describe("JSON form at a component target", () => {
  let env: RuntimeEnv;
  before(async () => {
    env = await startRuntime();
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-json-"));
    await writeFile(path.join(dir, "w.wit"), WIT);
    const { component } = await componentize({ witPath: path.join(dir, "w.wit"), jsSource: JS, sync: true, optSize: true });
    await writeFile(path.join(dir, "w.wasm"), component);
    await env.runtime.start(path.join(dir, "w.wasm"), "shapes");
  });
  after(async () => {
    await env?.close();
  });
  const call = (fn: string, args: unknown) =>
    invokeJson(env.nc, { lattice: env.lattice, targetId: "shapes", iface: "test:json/shapes", fn, timeoutMs: 10_000 }, args);
  const refused = async (fn: string, args: unknown, path: string) =>
    assert.rejects(call(fn, args), (e: TrellisError) => {
      assert.equal(e.code, "INVALID_ARGUMENT", e.message);
      assert.ok(e.message.startsWith(`${path}: `), e.message);
      return true;
    });

  test("good values pass, bad ones are INVALID_ARGUMENT with a path, never a trap or garbage", async () => {
    assert.equal(await call("area", [{ tag: "square", val: 3 }]), 9);
    assert.deepEqual(await call("move", [{ x: 1, y: 2 }, 1]), { x: 2, y: 3 });
    assert.equal(await call("first", ["😀"]), 0x1f600);
    await refused("area", [{ circle: 1.5 }], "s");
    await refused("move", [{ x: "1", y: 2 }, 1], "p.x");
    await refused("move", [{ x: 1 }, 1], "p");
    await refused("move", [{ x: 1, y: 2 }, 2147483648], "by");
    await refused("first", ["ab"], "c");
    // the instance is intact
    assert.equal(await call("area", [{ tag: "circle", val: 1 }]), 3);
  });

  test("adder: negative, too large and string arguments are refused", { skip: needsFixtures("adder.wasm") }, async () => {
    await env.runtime.start(fixture("adder.wasm"), "adder");
    const add = (args: unknown) => invokeJson(env.nc, { lattice: env.lattice, targetId: "adder", iface: "docs:adder/add", fn: "add", timeoutMs: 5000 }, args);
    assert.equal(await add([2, 3]), 5);
    for (const [args, p] of [[[-1, 2], "x"], [[4294967296, 0], "x"], [["7", 1], "x"], [[1, null], "y"]] as const) {
      await assert.rejects(add(args), (e: TrellisError) => e.code === "INVALID_ARGUMENT" && e.message.startsWith(`${p}: `));
    }
  });
});
