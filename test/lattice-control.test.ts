/**
 * The control interface v1 (issue 2, reference §1): every verb, envelopes, events, malformed input, and the CLI.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { ctl, ctlRoot } from "../src/core/subjects.ts";
import type { CtlResponse } from "../src/core/envelope.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const run = promisify(execFile);
let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => nats.stop());

describe("control interface verbs", () => {
  let t: TestLattice;
  before(async () => {
    t = await testLattice(nats);
  });
  after(async () => t.close());

  test("host.ping, host.get, labels, config, host.stop, with their events", async () => {
    const rec = await t.recordEvents();
    const host = await t.startHost({ labels: { zone: "east" }, heartbeatIntervalMs: 200 });
    const hosts = await t.client.getHosts();
    assert.equal(hosts.length, 1);
    const info = hosts[0]!;
    assert.equal(info.id, host.id);
    assert.match(info.id, /^N[A-Z2-7]{55}$/);
    assert.equal(info.lattice, t.lattice);
    assert.equal(info.labels.zone, "east");
    assert.equal(info.labels["hostcore.os"], "linux");
    assert.ok(info.labels["hostcore.arch"] && info.labels["hostcore.osfamily"]);
    assert.match(info.version, /^\d+\.\d+\.\d+/);

    const inv = await t.client.getInventory(host.id);
    assert.deepEqual(inv.components, []);
    assert.deepEqual(inv.providers, []);
    assert.equal(inv.host_id, host.id);

    assert.equal(await t.client.putLabel(host.id, "tier", "gold"), "successfully put label");
    await assert.rejects(t.client.putLabel(host.id, "hostcore.os", "x"), /hostcore\.\* labels cannot be set/);
    assert.equal(await t.client.deleteLabel(host.id, "tier"), "successfully deleted label");
    assert.equal(await t.client.deleteLabel(host.id, "tier"), "successfully deleted label (no such label)");

    assert.equal(await t.client.putConfig("app-config", { a: "1", b: "two" }), "successfully put config");
    assert.deepEqual(await t.client.getConfig("app-config"), { a: "1", b: "two" });
    const missing = await t.client.request(ctl.configGet(t.lattice, "nope"));
    assert.deepEqual(missing, { success: true, message: "Configuration not found" });
    assert.equal(await t.client.deleteConfig("app-config"), "successfully deleted config");
    assert.equal(await t.client.deleteConfig("app-config"), "successfully deleted config");
    assert.equal(await t.client.getConfig("app-config"), undefined);
    const notMap = await t.client.request(ctl.configPut(t.lattice, "bad"), { a: 1 });
    assert.equal(notMap.success, false);
    assert.match(notMap.message, /map of string -> string.*"a"/);

    await waitFor(() => rec.ofType("host_heartbeat").length >= 2, { message: "heartbeats" });
    const hb = rec.ofType("host_heartbeat")[0]!;
    assert.equal(hb.source, host.id);
    assert.equal(hb.specversion, "1.0");
    assert.ok(Array.isArray(hb.data.components) && Array.isArray(hb.data.providers));

    const wrongHost = await t.client.request(ctl.hostStop(t.lattice, host.id), { host_id: "NOTME" });
    assert.equal(wrongHost.success, false);
    assert.match(wrongHost.message, /invalid host_id/);
    assert.equal(await t.client.stopHost(host.id), "successfully handled stop host");
    await host.stopped;
    assert.equal(host.state, "STOPPED");

    await waitFor(() => rec.ofType("host_stopped").length === 1);
    for (const name of ["host_started", "labels_changed", "config_set", "config_deleted"]) {
      assert.ok(rec.ofType(name).length > 0, `${name} event`);
    }
    assert.deepEqual(rec.ofType("labels_changed")[0]?.data.labels, { ...info.labels, tier: "gold" });
    assert.deepEqual(rec.ofType("config_set")[0]?.data, { config_name: "app-config" });
  });

  test("component and provider verbs answer with an envelope even without a runtime", async () => {
    const host = await t.startHost({ workloads: {} });
    const r = await t.client.request(ctl.componentScale(t.lattice, host.id), { component_id: "x", component_ref: "y", count: 1 });
    assert.equal(r.success, false);
    assert.match(r.message, /not available/);
  });
});

describe("malformed control requests", () => {
  test("≥ 1,000 malformed requests each get an error envelope; the host stays up with its links intact", async () => {
    const t = await testLattice(nats);
    try {
      const host = await t.startHost({ maxControlPayloadBytes: 64 * 1024 });
      await t.client.putLink({ source_id: "app", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] });
      const root = ctlRoot(t.lattice);
      const bad: [string, Uint8Array | unknown][] = [
        [`${root}.link.put`, new TextEncoder().encode("{not json")],
        [`${root}.link.put`, new Uint8Array()],
        [`${root}.link.put`, [1, 2, 3]],
        [`${root}.link.put`, { source_id: 5, target: "x", wit_namespace: "a", wit_package: "b", interfaces: ["c"] }],
        [`${root}.link.put`, { target: "x", wit_namespace: "a", wit_package: "b", interfaces: ["c"] }],
        [`${root}.link.put`, { source_id: "s", target: "x", wit_namespace: "a", wit_package: "b", interfaces: "c" }],
        [`${root}.link.put`, "a string"],
        [`${root}.link.put`, null],
        [`${root}.link.del`, { source_id: "app" }],
        [`${root}.link.del`, new TextEncoder().encode("\u0000\u0001binary")],
        [`${root}.link.replace`, { delete: {} }],
        [`${root}.config.put.x`, { a: { nested: true } }],
        [`${root}.config.put.x`, "[]"],
        [`${root}.label.put.${host.id}`, { key: 1, value: "v" }],
        [`${root}.label.put.${host.id}`, { key: "k" }],
        [`${root}.label.del.${host.id}`, {}],
        [`${root}.host.stop.${host.id}`, { timeout: "soon" }],
        [`${root}.host.frobnicate.${host.id}`, {}],
        [`${root}.link.frobnicate`, {}],
        [`${root}.config.put.a.b`, { a: "b" }],
        [`${root}.link.put`, new Uint8Array(100 * 1024)],
        [`${root}.component.scale.${host.id}`, "{"],
      ];
      const replies: CtlResponse[] = [];
      for (let round = 0; round < 50; round++) {
        const batch = await Promise.all(
          bad.map(([subject, body]) => t.client.request(subject, body instanceof Uint8Array ? body : body)),
        );
        replies.push(...batch);
      }
      assert.ok(replies.length >= 1000, `${replies.length} replies`);
      for (const r of replies) {
        assert.equal(r.success, false, JSON.stringify(r));
        assert.ok(r.message.length > 0);
        assert.equal(typeof r.error?.code, "string");
      }
      const messages = new Set(replies.slice(0, bad.length).map((r) => r.message));
      assert.ok([...messages].some((m) => /not valid JSON/.test(m)));
      assert.ok([...messages].some((m) => /source_id must be a string/.test(m)));
      assert.ok([...messages].some((m) => /source_id must be a string, got undefined|source_id is required|must be a string/.test(m)));
      assert.ok([...messages].some((m) => /exceeds this host's limit/.test(m)));
      assert.ok([...messages].some((m) => /unsupported subject/.test(m)));
      assert.ok([...messages].some((m) => /request body is empty/.test(m)));
      assert.equal(host.state, "RUNNING");
      assert.equal((await t.client.getHosts()).length, 1);
      const links = await t.client.getLinks();
      assert.deepEqual(links.map((l) => l.source_id), ["app"]);
    } finally {
      await t.close();
    }
  });
});

describe("trellis CLI", () => {
  test("link and config verbs with --output json; errors print one line and exit non-zero", async () => {
    const t = await testLattice(nats);
    try {
      await t.startHost();
      const cli = (...args: string[]) =>
        run(process.execPath, ["bin/trellis.mjs", "--nats-url", nats.url, "--lattice", t.lattice, ...args], { cwd: new URL("..", import.meta.url).pathname });
      await cli("config", "put", "db", "url=redis://127.0.0.1:6379", "db=0");
      const put = await cli("--output", "json", "link", "put", "app", "kv", "wasi", "keyvalue", "--interface", "store", "--interface", "atomics", "--source-config", "db");
      assert.equal(JSON.parse(put.stdout).success, true);
      const got = JSON.parse((await cli("--output", "json", "link", "get")).stdout);
      assert.equal(got.length, 1);
      assert.deepEqual(got[0].interfaces, ["atomics", "store"]);
      assert.deepEqual(JSON.parse((await cli("--output", "json", "config", "get", "db")).stdout), { url: "redis://127.0.0.1:6379", db: "0" });
      const hosts = JSON.parse((await cli("--output", "json", "get", "hosts")).stdout);
      assert.equal(hosts.length, 1);
      const inv = JSON.parse((await cli("--output", "json", "get", "inventory", hosts[0].id)).stdout);
      assert.equal(inv.host_id, hosts[0].id);
      await assert.rejects(cli("link", "put", "app", "kv", "wasi", "keyvalue", "--interface", "store"), (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.match(e.stderr, /^error: .*immutable/);
        assert.equal(e.stderr.trim().split("\n").length, 1);
        return true;
      });
      await cli("link", "del", "app", "wasi", "keyvalue");
      assert.equal((await cli("link", "get")).stdout.trim(), "no links");
    } finally {
      await t.close();
    }
  });
});
