/**
 * `trellis start|scale|update|stop component` and `trellis call` (issue 3 §8) as a user runs them: a real process per
 * command, a real nats-server and a host running the component runtime. The command module is mounted on a root
 * command built like src/cli/main.ts by a throwaway entry script. Fixtures: see test/support/components.ts (Apache-2.0).
 */
import { runCliEntry, writeCliEntry, type CliResult } from "./support/cli.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { componentRuntime } from "../src/component/index.ts";
import { splitCallTarget } from "../src/cli/commands/component.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { fixture, needsFixtures } from "./support/components.ts";

const ADDER = fixture("adder.wasm");

describe("trellis component commands", () => {
  let t: TestLattice;
  let entry: string;
  let notComponent: string;

  const trellis = (...args: string[]): Promise<CliResult> => runCliEntry(entry, { natsUrl: t.nats.url, lattice: t.lattice }, args, 60_000);

  before(async () => {
    t = await testLattice();
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-cli-"));
    entry = await writeCliEntry(dir, [["component.ts", "registerComponentCommands"]]);
    // what this host may load: the adder fixture, and a file that is not a component
    notComponent = path.join(dir, "refs", "not-a-component.wasm");
    await mkdir(path.dirname(notComponent));
    await writeFile(notComponent, "not WebAssembly");
    await t.startHost({ cacheDir: dir, allowedPaths: [path.dirname(ADDER), path.dirname(notComponent)], workloads: { components: componentRuntime() } });
  });
  after(async () => {
    await t?.close();
  });

  test("splitCallTarget handles versions, pre-releases and resource methods", () => {
    assert.deepEqual(splitCallTarget("docs:adder/add@0.1.0.add"), ["docs:adder/add@0.1.0", "add"]);
    assert.deepEqual(splitCallTarget("docs:adder/add.add"), ["docs:adder/add", "add"]);
    assert.deepEqual(splitCallTarget("wasi:keyvalue/store@0.2.0-draft.[method]bucket.get"), ["wasi:keyvalue/store@0.2.0-draft", "[method]bucket.get"]);
    assert.deepEqual(splitCallTarget("add"), ["world", "add"], "a bare name is a world-level function");
    assert.throws(() => splitCallTarget("docs:adder/add"), /expected namespace:package\/interface/);
  });

  test("start, call (prints 5), scale, update, stop", { skip: needsFixtures("adder.wasm") }, async () => {
    let r = await trellis("start", "component", ADDER, "adder");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /component adder started on host N[A-Z0-9]+ \(max instances 1\)/);

    r = await trellis("call", "adder", "docs:adder/add@0.1.0.add", "[2,3]");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "5\n");

    r = await trellis("--output", "json", "call", "adder", "docs:adder/add@0.1.0.add", '{"x": 40, "y": 2}');
    assert.equal(JSON.parse(r.stdout), 42);

    r = await trellis("call", "adder", "docs:adder/add@0.1.0.add", "[2]");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: expected 2 argument\(s\) \(x, y\), got 1/);
    r = await trellis("call", "adder", "docs:adder/add@0.1.0.nope", "[]");
    assert.match(r.stderr, /component adder does not export docs:adder\/add\.nope/);
    r = await trellis("call", "ghost", "docs:adder/add@0.1.0.add", "[1,2]");
    assert.match(r.stderr, /no responders for docs:adder\/add\.add on ghost/);

    r = await trellis("scale", "component", "adder", "--count", "4");
    assert.equal(r.code, 0, r.stderr);
    const inv = await t.client.getInventory(t.hosts[0]!.id);
    assert.equal(inv.components.find((c) => c.id === "adder")?.max_instances, 4);

    const url = pathToFileURL(ADDER).href;
    r = await trellis("update", "component", "adder", url);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /updating from .*adder\.wasm to file:/);
    assert.equal((await trellis("call", "adder", "docs:adder/add@0.1.0.add", "[20,3]")).stdout, "23\n");

    r = await trellis("stop", "component", "adder");
    assert.equal(r.code, 0, r.stderr);
    r = await trellis("stop", "component", "adder");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /component adder is not running/);
  });

  test("start of a core module fails with the host's error", async () => {
    const r = await trellis("start", "component", notComponent, "bad");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /component bad: .*not a WebAssembly component/);
  });
});
