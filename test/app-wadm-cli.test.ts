/**
 * `trellis app validate|put|history|get|delete` (issue 9, item 3: the verbs of `wash app …`) as a user runs them: a
 * real process per command, real nats-server and host, `--output json` and text, exit codes; `trellis app deploy`
 * and `undeploy` keep the version history that the wadm API serves.
 */
import { runCliEntry, writeCliEntry, type CliResult } from "./support/cli.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { providerSupervisor } from "../src/provider/supervisor.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

let t: TestLattice;
let dir: string;
let entry: string;

function trellis(...args: string[]): Promise<CliResult> {
  return runCliEntry(entry, { natsUrl: t.nats.url, lattice: t.lattice }, args, 30_000);
}

async function json(...args: string[]): Promise<{ code: number; out: Record<string, any> }> {
  const r = await trellis("--output", "json", ...args);
  return { code: r.code, out: JSON.parse(r.stdout) as Record<string, any> };
}

const manifest = (version: string) => `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: store
  annotations: { version: ${version} }
spec:
  components:
    - name: kv
      type: capability
      properties: { image: kv-memory }
`;

const file = (n: string) => path.join(dir, n);

before(async () => {
  t = await testLattice();
  await t.startHost({ workloads: { providers: providerSupervisor({ firstHealthCheckMs: 100, healthIntervalMs: 1000, shutdownDelayMs: 500 }) } });
  dir = await mkdtemp(path.join(tmpdir(), "trellis-app-wadm-cli-"));
  entry = await writeCliEntry(dir, [["app.ts", "registerAppCommands"]]);
  await writeFile(file("v1.yaml"), manifest("v1"));
  await writeFile(file("v2.yaml"), manifest("v2"));
  await writeFile(file("v3.yaml"), manifest("v3"));
  await writeFile(file("bad.yaml"), manifest("latest"));
});
after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

describe("trellis app validate|put|history|get|delete", () => {
  test("validate: a good manifest, then a bad one (exit 1, the field named)", async () => {
    assert.deepEqual(await json("app", "validate", file("v1.yaml")), { code: 0, out: { success: true, valid: true, app: "store", version: "v1", warnings: [] } });
    const text = await trellis("app", "validate", file("v1.yaml"));
    assert.equal(text.stdout, `${file("v1.yaml")}: valid (app store, version v1)\n`);
    const bad = await json("app", "validate", file("bad.yaml"));
    assert.equal(bad.code, 1);
    assert.equal(bad.out.success, false);
    assert.equal(bad.out.error.code, "INVALID_ARGUMENT");
    assert.match(bad.out.error.message, /metadata\.annotations\.version/);
  });

  test("put: created, then the same version again fails, then newversion", async () => {
    assert.deepEqual(await json("app", "put", file("v1.yaml")), {
      code: 0,
      out: { success: true, result: "created", total_versions: 1, current_version: "v1", message: "Successfully put manifest store v1", name: "store" },
    });
    const again = await json("app", "put", file("v1.yaml"));
    assert.equal(again.code, 1);
    assert.deepEqual(again.out, { success: false, result: "error", message: "Manifest version v1 already exists" });
    const v2 = await trellis("app", "put", file("v2.yaml"));
    assert.equal(v2.code, 0, v2.stderr);
    assert.equal(v2.stdout, "Successfully put manifest store v2\n");
  });

  test("history and get, json and text; nothing was deployed by put", async () => {
    const h = await json("app", "history", "store");
    assert.equal(h.code, 0);
    assert.deepEqual(h.out.versions, [
      { version: "v1", deployed: false },
      { version: "v2", deployed: false },
    ]);
    assert.match((await trellis("app", "history", "store")).stdout, /^VERSION\s+DEPLOYED\nv1\s+no\nv2\s+no\n$/);
    const g = await json("app", "get", "store", "v1");
    assert.equal(g.out.manifest.metadata.annotations.version, "v1");
    const text = await trellis("app", "get", "store");
    assert.match(text.stdout, /^apiVersion: core\.oam\.dev\/v1beta1\nkind: Application\n/);
    assert.match(text.stdout, /version: v2/);
    const missing = await json("app", "get", "nope");
    assert.equal(missing.code, 1);
    assert.equal(missing.out.result, "notfound");
    assert.deepEqual((await t.client.getInventory(t.hosts[0]!.id)).providers, []);
  });

  test("app deploy and undeploy are recorded in the history", async () => {
    const d = await trellis("app", "deploy", file("v3.yaml"), "--wait");
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual((await json("app", "history", "store")).out.versions, [
      { version: "v1", deployed: false },
      { version: "v2", deployed: false },
      { version: "v3", deployed: true },
    ]);
    const u = await trellis("app", "undeploy", "store", "--wait");
    assert.equal(u.code, 0, u.stderr);
    assert.equal((await json("app", "history", "store")).out.versions[2].deployed, false);
    const d2 = await trellis("app", "deploy", file("v3.yaml"), "--wait");
    assert.equal(d2.code, 0, d2.stderr);
    assert.equal((await t.client.getInventory(t.hosts[0]!.id)).providers.length, 1);
  });

  test("delete one version, then the app: the deployed app is removed from the lattice before the command ends", async () => {
    const one = await json("app", "delete", "store", "v1");
    assert.deepEqual(one, { code: 0, out: { success: true, result: "deleted", message: "Successfully deleted version v1 of application store", undeploy: false } });
    const all = await json("app", "delete", "store");
    assert.deepEqual(all, { code: 0, out: { success: true, result: "deleted", message: "Successfully deleted application store", undeploy: true } });
    assert.deepEqual((await t.client.getInventory(t.hosts[0]!.id)).providers, []);
    const h = await json("app", "history", "store");
    assert.equal(h.code, 1);
    assert.equal(h.out.result, "notfound");
    const none = await json("app", "delete", "store");
    assert.equal(none.code, 1);
    assert.equal(none.out.result, "noop");
  });
});
