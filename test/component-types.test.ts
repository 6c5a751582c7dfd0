/**
 * Reading WIT types from component binaries (src/component/component-types.ts), for the fixtures and for a
 * component built here from WIT (jco componentEmbed --dummy + componentNew). Fixtures: see test/support/components.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { componentEmbed, componentNew, parse } from "@bytecodealliance/jco";
import { readComponentTypes } from "../src/component/component-types.ts";
import { formatFunc, t } from "../packages/wire/src/invocation/types.ts";
import { fixture, needsFixtures } from "./support/components.ts";

const WIT = `package test:types@0.1.0;
interface all {
  record point { x: s32, y-coord: u64 }
  variant shape { circle(f64), none, named(string) }
  enum color { red, dark-green }
  flags perms { read, write-all }
  resource blob { constructor(init: list<u8>); size: func() -> u64; open: static func(name: string) -> blob; }
  echo-point: func(p: point) -> point;
  echo-shape: func(s: shape) -> shape;
  paint: func(c: color, p: perms) -> result<list<tuple<char, s8>>, string>;
  maybe: func(o: option<option<u32>>) -> option<blob>;
  take: func(b: borrow<blob>) -> u64;
}
world w { import all; export all; }
`;

describe("component types from the binary", () => {
  test("fixtures: adder, the inter-component chain, hello world", { skip: needsFixtures("adder.wasm", "inter_component_call_middleware.wasm", "http_hello_world_rust.wasm") }, async () => {
    const adder = readComponentTypes(await readFile(fixture("adder.wasm")));
    assert.deepEqual(Object.keys(adder.imports), []);
    assert.deepEqual(adder.exports["docs:adder/add@0.1.0"]?.functions["add"], t.func([["x", t.u32], ["y", t.u32]], t.u32));

    const mw = readComponentTypes(await readFile(fixture("inter_component_call_middleware.wasm")));
    assert.deepEqual(Object.keys(mw.imports), ["wasi:logging/logging@0.1.0-draft", "wasmcloud:example/receiver@0.0.1"]);
    assert.equal(formatFunc(mw.exports["wasmcloud:example/middleware@0.0.1"]!.functions["invoke"]!), "func() -> result<_, string>");
    assert.equal(
      formatFunc(mw.imports["wasi:logging/logging@0.1.0-draft"]!.functions["log"]!),
      "func(level: level, context: string, message: string)",
    );

    const hello = readComponentTypes(await readFile(fixture("http_hello_world_rust.wasm")));
    assert.equal(
      formatFunc(hello.exports["wasi:http/incoming-handler@0.2.0"]!.functions["handle"]!),
      "func(request: incoming-request, response-out: response-outparam)",
    );
    assert.ok(hello.imports["wasi:http/types@0.2.0"]!.resources.includes("fields"));
  });

  test("every kind of type, resources with constructors, methods and statics", async () => {
    const bytes = await componentNew(await componentEmbed({ dummy: true, witSource: WIT }));
    const types = readComponentTypes(bytes);
    for (const dir of [types.imports, types.exports]) {
      const all = dir["test:types/all@0.1.0"]!;
      assert.deepEqual(all.resources, ["blob"]);
      const f = (n: string) => formatFunc(all.functions[n]!);
      assert.equal(f("echo-point"), "func(p: point) -> point");
      assert.deepEqual(all.functions["echo-point"]!.params[0]!.type, t.record({ x: t.s32, "y-coord": t.u64 }, "point"));
      assert.deepEqual(all.functions["echo-shape"]!.params[0]!.type, t.variant({ circle: t.f64, none: undefined, named: t.string }, "shape"));
      assert.equal(f("paint"), "func(c: color, p: perms) -> result<list<tuple<char, s8>>, string>");
      assert.equal(f("maybe"), "func(o: option<option<u32>>) -> option<blob>");
      assert.equal(f("take"), "func(b: borrow<blob>) -> u64");
      assert.equal(f("[constructor]blob"), "func(init: list<u8>) -> blob");
      assert.equal(f("[method]blob.size"), "func(self: borrow<blob>) -> u64");
      assert.equal(f("[static]blob.open"), "func(name: string) -> blob");
    }
  });

  test("rejects core modules, non-wasm files and WASI 0.3 components", async () => {
    assert.throws(() => readComponentTypes(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])), /core WebAssembly module, not a component/);
    assert.throws(() => readComponentTypes(new TextEncoder().encode("hello world")), /not a WebAssembly component/);
    const stream = await parse(`(component (type (stream u8)))`);
    assert.throws(() => readComponentTypes(stream), /stream types: it uses the WASI 0.3/);
  });
});
