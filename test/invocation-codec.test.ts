/**
 * Invocation protocol v1: the value encoding of every WIT type kind, locally and across a real NATS server
 * (docs/protocol.md, "Value encoding", "Large bodies").
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startTestNats, type TestNats } from "../src/testing/nats.ts";
import {
  decodeParams,
  decodeValue,
  encodeParams,
  encodeValue,
  fromJson,
  invoke,
  invokeJson,
  invokeRaw,
  serveInterfaces,
  t,
  toJson,
  type InterfaceType,
  type WitType,
} from "../src/invocation/index.ts";
import { TrellisError } from "../src/core/errors.ts";

const point = t.record({ x: t.s32, "y-coord": t.u64 }, "point");
const shape = t.variant({ circle: t.f64, none: undefined, named: t.string }, "shape");
const color = t.enum(["red", "dark-green"], "color");
const perms = t.flags(["read", "write-all", "f2", "f3", "f4", "f5", "f6", "f7", "ninth"], "perms");

/** [name, type, sample values] covering every kind; each sample must survive encode → decode unchanged. */
const CASES: [string, WitType, unknown[]][] = [
  ["bool", t.bool, [true, false]],
  ["u8", t.u8, [0, 255]],
  ["s8", t.s8, [-128, 127, 0]],
  ["u16", t.u16, [0, 65535]],
  ["s16", t.s16, [-32768, 32767]],
  ["u32", t.u32, [0, 4294967295, 127, 128]],
  ["s32", t.s32, [-2147483648, 2147483647, -1, 63, 64, -64, -65]],
  ["u64", t.u64, [0n, 18446744073709551615n, 9007199254740993n]],
  ["s64", t.s64, [-9223372036854775808n, 9223372036854775807n, -1n, 0n]],
  ["f32", t.f32, [0, 1.5, -2.25, Infinity]],
  ["f64", t.f64, [Math.PI, -0, Number.MAX_VALUE, -Infinity]],
  ["char", t.char, ["a", "é", "€", "😀", "\u{10FFFF}"]],
  ["string", t.string, ["", "hello", "astral 😀𝄞🀄 \u{10FFFF}", "x".repeat(300), "mixed é€😀".repeat(50)]],
  ["list<u8>", t.list(t.u8), [new Uint8Array(0), new Uint8Array([0, 1, 255])]],
  ["list<u16>", t.list(t.u16), [new Uint16Array([1, 65535])]],
  ["list<s64>", t.list(t.s64), [new BigInt64Array([-9223372036854775808n, 5n])]],
  ["list<u64>", t.list(t.u64), [new BigUint64Array([18446744073709551615n])]],
  ["list<f64>", t.list(t.f64), [new Float64Array([1.25, -3])]],
  ["list<string>", t.list(t.string), [[], ["a", "😀"]]],
  ["list<bool>", t.list(t.bool), [[true, false]]],
  ["list<u8, 3>", t.list(t.u8, 3), [new Uint8Array([1, 2, 3])]],
  ["record", point, [{ x: -5, yCoord: 18446744073709551615n }]],
  ["tuple", t.tuple(t.char, t.s8, t.f64, t.string), [["😀", -1, 0.5, "z"]]],
  ["variant", shape, [{ tag: "circle", val: 1.5 }, { tag: "none" }, { tag: "named", val: "😀" }]],
  ["enum", color, ["red", "dark-green"]],
  ["flags", perms, [{ read: true, writeAll: false, f2: false, f3: false, f4: false, f5: false, f6: false, f7: false, ninth: true }]],
  ["option<u32>", t.option(t.u32), [undefined, 7]],
  ["option<option<u32>>", t.option(t.option(t.u32)), [{ tag: "none" }, { tag: "some", val: undefined }, { tag: "some", val: 3 }]],
  ["result<string, u32>", t.result(t.string, t.u32), [{ tag: "ok", val: "yes" }, { tag: "err", val: 4 }]],
  ["result", t.result(), [{ tag: "ok", val: undefined }, { tag: "err", val: undefined }]],
  ["result<_, string>", t.result(undefined, t.string), [{ tag: "ok", val: undefined }, { tag: "err", val: "bad" }]],
  ["own<blob>", t.own("blob"), [new Uint8Array([9, 8, 7])]],
  ["borrow<blob>", t.borrow("blob"), [new Uint8Array(0)]],
  ["list<record>", t.list(point), [[{ x: 1, yCoord: 2n }, { x: -1, yCoord: 0n }]]],
];

describe("invocation codec (local)", () => {
  for (const [name, ty, samples] of CASES) {
    test(`${name} round-trips`, () => {
      for (const v of samples) assert.deepEqual(decodeValue(ty, encodeValue(ty, v)), v);
    });
  }

  test("exact bytes: LEB128, zigzag-free signed LEB128, strings, flags", () => {
    assert.deepEqual([...encodeValue(t.u32, 300)], [0xac, 0x02]);
    assert.deepEqual([...encodeValue(t.s32, -1)], [0x7f]);
    assert.deepEqual([...encodeValue(t.s32, 64)], [0xc0, 0x00]);
    assert.deepEqual([...encodeValue(t.u64, 18446744073709551615n)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert.deepEqual([...encodeValue(t.s64, -9223372036854775808n)], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f]);
    assert.deepEqual([...encodeValue(t.string, "é")], [2, 0xc3, 0xa9]);
    assert.deepEqual([...encodeValue(t.option(t.u8), undefined)], [0]);
    assert.deepEqual([...encodeValue(perms, { read: true, ninth: true })], [0x01, 0x01]);
    assert.deepEqual([...encodeValue(shape, { tag: "named", val: "a" })], [2, 1, 0x61]);
    assert.deepEqual([...encodeValue(t.f32, 1)], [0, 0, 0x80, 0x3f]);
  });

  test("params are the concatenation of the values; errors name the path", () => {
    const fn = t.func([["a", t.u32], ["p", point]], t.u32);
    const bytes = encodeParams(fn, [300, { x: 1, yCoord: 2n }]);
    assert.deepEqual([...bytes], [0xac, 0x02, 0x01, 0x02]);
    assert.deepEqual(decodeParams(fn, bytes), [300, { x: 1, yCoord: 2n }]);
    assert.throws(() => encodeParams(fn, [1, { x: 1, yCoord: -1n }]), (e: TrellisError) => e.code === "INVALID_ARGUMENT" && /p\.yCoord/.test(e.message));
    assert.throws(() => encodeParams(fn, [1.5, { x: 1, yCoord: 1n }]), /a: expected u32/);
    assert.throws(() => decodeParams(fn, new Uint8Array([1])), /truncated/);
    assert.throws(() => decodeParams(fn, new Uint8Array([1, 1, 1, 9])), /trailing/);
    assert.throws(() => decodeValue(t.bool, new Uint8Array([2])), /invalid bool/);
    assert.throws(() => decodeValue(t.string, new Uint8Array([1, 0xff])), /UTF-8/);
    assert.throws(() => decodeValue(t.u8, new Uint8Array([])), /truncated/);
    assert.throws(() => decodeValue(t.list(t.string), new Uint8Array([0xff, 0xff, 0x03])), /exceeds/);
  });

  test("JSON form: u64 beyond 2^53 as strings, flags as name lists, records by WIT names", () => {
    assert.equal(toJson(t.u64, 18446744073709551615n), "18446744073709551615");
    assert.equal(toJson(t.u64, 5n), 5);
    assert.deepEqual(fromJson(t.s64, "-9223372036854775808"), -9223372036854775808n);
    assert.deepEqual(toJson(perms, { read: true, writeAll: true }), ["read", "write-all"]);
    assert.deepEqual(fromJson(point, { x: 1, "y-coord": 2 }), { x: 1, yCoord: 2n });
    assert.deepEqual(toJson(point, { x: 1, yCoord: 2n }), { x: 1, "y-coord": 2 });
    assert.deepEqual(fromJson(t.list(t.u8), [1, 2]), new Uint8Array([1, 2]));
  });
});

describe("invocation across NATS", () => {
  let server: TestNats;
  let nc: NatsConnection;
  let nc2: NatsConnection;
  const lattice = `t${randomUUID().slice(0, 8)}`;
  const targetId = "echo";
  const echoIface: InterfaceType = {
    name: "test:echo/all@0.1.0",
    resources: ["blob"],
    functions: Object.fromEntries(CASES.map(([, ty], i) => [`echo-${i}`, t.func([["v", ty]], ty)])),
  };

  before(async () => {
    server = await startTestNats();
    nc = await connect({ servers: server.url });
    nc2 = await connect({ servers: server.url });
    const handlers: Record<string, (v: unknown) => unknown> = {};
    CASES.forEach((_c, i) => (handlers[`echo-${i}`] = (v) => v));
    const big = t.func([["v", t.list(t.u8)]], t.list(t.u8));
    const adder: InterfaceType = {
      name: "docs:adder/add@0.1.0",
      resources: [],
      functions: { add: t.func([["x", t.u32], ["y", t.u32]], t.u32), bytes: big, fail: t.func([], t.u32) },
    };
    serveInterfaces(nc2, { lattice, targetId }, [
      { type: echoIface, handlers },
      {
        type: adder,
        handlers: {
          add: (x: number, y: number) => x + y,
          bytes: (v: Uint8Array) => v,
          fail: () => {
            throw new TrellisError("APPLICATION_ERROR", "it failed on purpose", { details: { why: "test" } });
          },
        },
      },
    ]);
    await nc2.flush();
  });

  after(async () => {
    await nc?.close();
    await nc2?.close();
    await server?.stop();
  });

  test("every WIT type kind round-trips through a served target", async () => {
    for (const [i, [name, , samples]] of CASES.entries()) {
      const fn = echoIface.functions[`echo-${i}`]!;
      for (const v of samples) {
        const got = await invoke(nc, { lattice, targetId, iface: echoIface.name, fn: `echo-${i}`, timeoutMs: 5000 }, fn, [v]);
        assert.deepEqual(got, v, name);
      }
    }
  });

  test("1 MiB and 3 MiB lists travel in chunks both ways; an empty list in one message", async () => {
    const fn = t.func([["v", t.list(t.u8)]], t.list(t.u8));
    for (const size of [0, 1024 * 1024, 3 * 1024 * 1024 + 17]) {
      const v = new Uint8Array(size);
      for (let i = 0; i < size; i++) v[i] = (i * 31) & 0xff;
      const got = (await invoke(nc, { lattice, targetId, iface: "docs:adder/add", fn: "bytes", timeoutMs: 10_000 }, fn, [v])) as Uint8Array;
      assert.equal(got.length, size);
      assert.ok(Buffer.from(got).equals(Buffer.from(v)));
    }
  });

  test("JSON form call, target error shape, unknown function, no responders", async () => {
    const call = { lattice, targetId, iface: "docs:adder/add@0.1.0", fn: "add", timeoutMs: 5000 };
    assert.equal(await invokeJson(nc, call, [2, 3]), 5);
    await assert.rejects(invokeJson(nc, call, [2]), (e: TrellisError) => e.code === "INVALID_ARGUMENT");
    await assert.rejects(invokeRaw(nc, { ...call, fn: "fail" }, new Uint8Array(0)), (e: TrellisError) => {
      assert.equal(e.code, "APPLICATION_ERROR");
      assert.equal(e.message, "it failed on purpose");
      assert.deepEqual(e.details, { why: "test" });
      return true;
    });
    await assert.rejects(invokeRaw(nc, { ...call, fn: "nope" }, new Uint8Array(0)), (e: TrellisError) => e.code === "NOT_FOUND");
    await assert.rejects(invokeRaw(nc, { ...call, targetId: "nobody" }, new Uint8Array(0)), (e: TrellisError) => e.code === "NO_RESPONDERS");
  });
});
