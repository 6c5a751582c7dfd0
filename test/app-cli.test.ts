/**
 * `trellis app deploy|list|status|undeploy` (issue 5) as a user runs them: a real process per command, real
 * nats-server and host, `--output json` and text, exit codes. The command module is mounted on a root command built
 * like src/cli/main.ts (which the lead wires), by a throwaway entry script in a temp directory.
 */
import { runCliEntry, writeCliEntry, type CliResult } from "./support/cli.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { providerSupervisor } from "../src/provider/supervisor.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { fixture } from "./support/components.ts";

let t: TestLattice;
let dir: string;
let entry: string;

function trellis(...args: string[]): Promise<CliResult> {
  return runCliEntry(entry, { natsUrl: t.nats.url, lattice: t.lattice }, args, 30_000);
}

// the component has no scaler: deploy only records it, so the fixture need not exist
const MANIFEST = `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: demo
  annotations: { version: v1 }
spec:
  components:
    - name: app
      type: component
      properties: { image: ${fixture("adder.wasm")} }
      traits:
        - type: link
          properties:
            namespace: wasi
            package: keyvalue
            interfaces: [store]
            target: { name: kv, config: [{ name: bucket, properties: { bucket: b1 } }] }
    - name: kv
      type: capability
      properties: { image: kv-memory }
`;

before(async () => {
  t = await testLattice();
  await t.startHost({ workloads: { providers: providerSupervisor({ firstHealthCheckMs: 100, healthIntervalMs: 1000, shutdownDelayMs: 500 }) } });
  dir = await mkdtemp(path.join(tmpdir(), "trellis-app-cli-"));
  entry = await writeCliEntry(dir, [["app.ts", "registerAppCommands"]]);
  await writeFile(path.join(dir, "app.yaml"), MANIFEST);
  await writeFile(path.join(dir, "bad.yaml"), MANIFEST.replace("interfaces: [store]", "interfaces: []"));
});
after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

describe("trellis app", () => {
  test("deploy --wait --output json, then again: unchanged", async () => {
    const r = await trellis("--output", "json", "app", "deploy", path.join(dir, "app.yaml"), "--wait");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, any>;
    assert.equal(out.success, true);
    assert.equal(out.outcome, "created");
    assert.equal(out.status.status, "deployed");
    assert.deepEqual(out.actions.map((a: { kind: string }) => a.kind), ["put_config", "put_link", "start_provider"]);
    const again = await trellis("app", "deploy", path.join(dir, "app.yaml"));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^app demo \(version v1\): unchanged\nstatus: deployed\n$/);
  });

  test("list and status, text and json", async () => {
    const list = await trellis("app", "list");
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME\s+VERSION\s+STATUS\s+DEPLOYED\ndemo\s+v1\s+deployed\s+\d{4}-/);
    const json = JSON.parse((await trellis("--output", "json", "app", "list")).stdout) as { app: string; status: string }[];
    assert.deepEqual(json.map((a) => [a.app, a.status]), [["demo", "deployed"]]);
    const status = await trellis("--output", "json", "app", "status", "demo");
    assert.equal(status.code, 0);
    assert.equal((JSON.parse(status.stdout) as { status: string }).status, "deployed");
    const text = await trellis("app", "status", "demo");
    assert.match(text.stdout, /^app demo \(version v1, deployed .*\)\nstatus: deployed\nreconciler: none on this lattice .*\n$/);
  });

  test("dry run prints the plan and changes nothing", async () => {
    await t.client.deleteLink({ source_id: "demo-app", wit_namespace: "wasi", wit_package: "keyvalue" });
    const r = await trellis("app", "deploy", path.join(dir, "app.yaml"), "--dry-run");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /planned \(dry run, 1 request\(s\)\)\n {2}put link demo-app -\[wasi:keyvalue\/\{store\} @default\]-> demo-kv {2}\(link missing\)/);
    assert.deepEqual(await t.client.getLinks(), []);
    const s = await trellis("app", "status", "demo");
    assert.equal(s.code, 1, "status exits 1 unless deployed");
    assert.match(s.stdout, /status: reconciling .*\n {2}missing: put link demo-app/);
  });

  test("a bad manifest: one error line naming the field, exit 1, json error with the code", async () => {
    const r = await trellis("app", "deploy", path.join(dir, "bad.yaml"));
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "error: spec.components[0].traits[0].properties.interfaces: must name at least one interface\n");
    const j = await trellis("--output", "json", "app", "deploy", path.join(dir, "missing.yaml"));
    assert.equal(j.code, 1);
    assert.equal((JSON.parse(j.stdout) as { error: { code: string } }).error.code, "NOT_FOUND");
  });

  test("undeploy --output json; status of an unknown app fails", async () => {
    const r = await trellis("--output", "json", "app", "undeploy", "demo", "--wait");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { success: boolean; removed: boolean };
    assert.deepEqual([out.success, out.removed], [true, true]);
    const s = await trellis("app", "status", "demo");
    assert.equal(s.code, 1);
    assert.match(s.stderr, /no app named demo is deployed/);
    assert.equal((await trellis("app", "list")).stdout, "no apps\n");
  });
});
