/**
 * `trellis start provider REF ID` and `trellis stop provider ID` (issue 4 §8) as a user runs them: one real process
 * per command against a real nats-server and a host with a provider supervisor. The command module is mounted on a
 * root command built like src/cli/main.ts (plus `get inventory`) by a throwaway entry script.
 */
import { runCliEntry, writeCliEntry, type CliResult } from "./support/cli.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { hostProviderRef } from "../src/cli/commands/provider.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { SCRIPTS_DIR, startProviderHost, writeScript } from "./support/providers.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

describe("trellis provider commands", () => {
  let t: TestLattice;
  let entry: string;
  let hostId: string;
  const trellis = (...args: string[]): Promise<CliResult> => runCliEntry(entry, { natsUrl: t.nats.url, lattice: t.lattice }, args, 60_000);

  before(async () => {
    t = await testLattice();
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-cli-"));
    entry = await writeCliEntry(dir, [["lattice.ts", "registerLatticeCommands"], ["provider.ts", "registerProviderCommands"]]);
    // what this host may load by path: the test scripts and the Python provider
    hostId = (await startProviderHost(t, {}, { allowedPaths: [SCRIPTS_DIR, path.join(ROOT, "providers", "python-kv")] })).host.id;
  });
  after(async () => {
    await t?.close();
  });

  test("relative paths become absolute for the host; names and URLs pass", () => {
    assert.equal(hostProviderRef("kv-memory"), "kv-memory");
    assert.equal(hostProviderRef("./providers/python-kv/provider.py", "/x"), "/x/providers/python-kv/provider.py");
    assert.equal(hostProviderRef("file:///opt/p"), "file:///opt/p");
    assert.equal(hostProviderRef("/opt/p"), "/opt/p");
  });

  test("start provider waits for health; it shows in the inventory; stop provider stops it", async () => {
    await t.client.putConfig("kvcfg", { a: "1" });
    let r = await trellis("start", "provider", "kv-memory", "kv", "--config", "kvcfg");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`provider kv started on host ${hostId} and is healthy`));
    r = await trellis("start", "provider", "./providers/python-kv/provider.py", "pykv", "--output", "json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { status: string }).status, "running");
    r = await trellis("get", "inventory", hostId);
    assert.match(r.stdout, /providers \(2\):/);
    assert.match(r.stdout, /kv {2}kv-memory {2}running/);
    assert.match(r.stdout, /pykv {2}\/.*providers\/python-kv\/provider\.py {2}running/);
    r = await trellis("stop", "provider", "kv");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`provider kv stopped on ${hostId}`));
    r = await trellis("stop", "provider", "kv");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /provider kv is not running/);
    await trellis("stop", "provider", "pykv");
  });

  test("a provider that exits at once: start fails with the reason; the inventory says failed", async () => {
    const crash = await writeScript("crash.sh", "#!/bin/sh\necho 'cannot open /etc/kv.conf' >&2\nexit 2\n");
    let r = await trellis("start", "provider", crash, "crashy", "--wait-ms", "20000");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /provider crashy failed to start on host .*exited with code 2.*cannot open \/etc\/kv\.conf/);
    r = await trellis("get", "inventory", hostId, "--output", "json");
    assert.equal((JSON.parse(r.stdout) as { providers: { id: string; status: string }[] }).providers.find((p) => p.id === "crashy")?.status, "failed");
    r = await trellis("start", "provider", path.join(SCRIPTS_DIR, "no", "such", "file"), "ghost");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not exist/);
  });
});
