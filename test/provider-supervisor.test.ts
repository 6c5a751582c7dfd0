/**
 * Provider supervision (issue 4 part 1, reference §1.4, §4.1–§4.5): start and stop, host data on stdin, a cleared
 * environment, health events, inventory status, restart with backoff, giving up on a provider that exits at once, and
 * the host serving everything else meanwhile.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { decodeHostData } from "../src/provider/host-data.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { SCRIPTS_DIR, startProviderHost, testLink, waitForEvent, writeScript, type ProviderHost } from "./support/providers.ts";

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats.stop();
});

const TRACE = { trellis_conformance_trace: "stdout" };

describe("provider supervisor", () => {
  let t: TestLattice;
  let ph: ProviderHost;
  before(async () => {
    t = await testLattice(nats);
    // the host's environment as the supervisor reads it once at start (ProviderSupervisorOptions.env)
    ph = await startProviderHost(t, { env: { ...process.env, TRELLIS_TEST_SECRET: "must-not-leak", OTEL_TEST_PASS: "passes" } });
    await t.client.putConfig("trace", TRACE);
  });
  after(async () => t.close());

  test("start: reply, provider_started, links from host data, health passes, inventory shows it running", async () => {
    const rec = await t.recordEvents();
    await t.client.putLink(testLink({ source_id: "app1", target: "kv1" }));
    const reply = await t.client.startProvider(ph.host.id, { provider_id: "kv1", provider_ref: "kv-memory", config: ["trace"] });
    assert.equal(reply, "successfully started provider");
    const started = await waitForEvent(rec, "provider_started");
    assert.equal(started.data.provider_id, "kv1");
    assert.equal(started.data.image_ref, "kv-memory");
    assert.equal(started.source, ph.host.id);
    const put = await waitFor(() => ph.trace("kv1", "link_put")[0], { message: "link put from host data" });
    assert.equal(put.role, "target");
    assert.equal(put.source_id, "app1");
    await waitForEvent(rec, "health_check_passed", (e) => e.data.provider_id === "kv1");
    const inv = await t.client.getInventory(ph.host.id);
    assert.deepEqual(inv.providers, [{ id: "kv1", image_ref: "kv-memory", revision: 0, status: "running" }]);
    await waitForEvent(rec, "health_check_status", (e) => e.data.provider_id === "kv1", 3000);
  });

  test("a second start of a running id is an error", async () => {
    await assert.rejects(t.client.startProvider(ph.host.id, { provider_id: "kv1", provider_ref: "kv-memory" }), (err: unknown) => {
      assert.ok(err instanceof TrellisError);
      assert.equal(err.code, ErrorCode.AlreadyExists);
      assert.match(err.message, /already running/);
      return true;
    });
  });

  test("stop: shutdown request, provider_stopped, gone from the inventory; stopping again is an error", async () => {
    const rec = await t.recordEvents();
    const pid = ph.snapshot("kv1")?.pid;
    assert.ok(pid);
    assert.equal(await t.client.stopProvider(ph.host.id, "kv1"), "successfully stopped provider");
    const stopped = await waitForEvent(rec, "provider_stopped");
    assert.equal(stopped.data.reason, "stop");
    assert.ok(ph.trace("kv1", "shutdown").length === 1, "the provider ran its shutdown hook");
    assert.throws(() => process.kill(pid, 0), "the process is gone");
    assert.deepEqual((await t.client.getInventory(ph.host.id)).providers, []);
    await assert.rejects(t.client.stopProvider(ph.host.id, "kv1"), /not running/);
  });

  test("host data: base64 JSON + CRLF with every reference §4.2 field; environment cleared but for the pass-through list", async () => {
    const script = await writeScript(
      "dump.sh",
      '#!/bin/sh\nIFS= read -r line\nprintf "HOSTDATA %s\\n" "$line"\nenv | sed "s/^/ENV /"\nprintf "DONE\\n"\nexec sleep 30\n',
    );
    await t.client.putConfig("p1", { a: "1", b: "1" });
    await t.client.putConfig("p2", { b: "2" });
    await t.client.putLink(testLink({ source_id: "app2", target: "dump", target_config: ["p1"] }));
    await t.client.putLink(testLink({ source_id: "dump", target: "other", wit_package: "blobstore", interfaces: ["blobstore"], source_config: ["p2"] }));
    await t.client.startProvider(ph.host.id, { provider_id: "dump", provider_ref: script, config: ["p1", "p2"] });
    const lines = await waitFor(() => (ph.lines.get("dump")?.includes("DONE") ? ph.lines.get("dump") : undefined), { message: "dump output" });
    const raw = lines.find((l) => l.startsWith("HOSTDATA "))!.slice("HOSTDATA ".length);
    const json = JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as Record<string, unknown>;
    for (const f of ["host_id", "lattice_rpc_prefix", "link_name", "lattice_rpc_user_jwt", "lattice_rpc_user_seed", "lattice_rpc_url", "provider_key", "env_values", "instance_id", "link_definitions", "cluster_issuers", "config", "secrets", "host_xkey_public_key", "provider_xkey_private_key", "default_rpc_timeout_ms", "structured_logging", "log_level", "otel_config"]) {
      assert.ok(f in json, `host data has ${f}`);
    }
    const hd = decodeHostData(raw);
    assert.equal(hd.host_id, ph.host.id);
    assert.equal(hd.lattice_rpc_prefix, t.lattice);
    assert.equal(hd.provider_key, "dump");
    assert.equal(hd.lattice_rpc_url, t.nats.url);
    assert.match(hd.instance_id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(hd.config, { a: "1", b: "2" }, "provider config merged left to right");
    const defs = [...hd.link_definitions].sort((a, b) => a.wit_package.localeCompare(b.wit_package));
    assert.equal(defs.length, 2);
    assert.deepEqual(defs[0], { source_id: "dump", target: "other", name: "default", wit_namespace: "wasi", wit_package: "blobstore", interfaces: ["blobstore"], source_config: { b: "2" }, target_config: {}, source_secrets: null, target_secrets: null });
    assert.equal(defs[1]?.source_id, "app2");
    assert.deepEqual(defs[1]?.target_config, { a: "1", b: "1" });
    const env = new Map(lines.filter((l) => l.startsWith("ENV ")).map((l) => { const kv = l.slice(4); const i = kv.indexOf("="); return [kv.slice(0, i), kv.slice(i + 1)] as const; }));
    assert.equal(env.get("OTEL_TEST_PASS"), "passes");
    assert.equal(env.has("TRELLIS_TEST_SECRET"), false);
    assert.equal(env.get("PATH"), process.env.PATH);
    for (const k of env.keys()) assert.match(k, /^(PATH|HOME|LANG|LC_ALL|LC_CTYPE|TZ|TMPDIR|SYSTEMROOT|TRELLIS_LOG_LEVEL|RUST_LOG|OTEL_.*|PWD|SHLVL|_)$/, `unexpected variable ${k}`);
    await t.client.stopProvider(ph.host.id, "dump");
  });

  test("a provider that never answers health: health_check_failed, status unhealthy; stop kills it after the delay", async () => {
    const rec = await t.recordEvents();
    const script = await writeScript("mute.sh", "#!/bin/sh\nexec sleep 60\n");
    await t.client.startProvider(ph.host.id, { provider_id: "mute", provider_ref: script });
    const failed = await waitForEvent(rec, "health_check_failed", (e) => e.data.provider_id === "mute", 8000);
    assert.match(String(failed.data.message), /no reply to the health check/);
    assert.equal((await t.client.getInventory(ph.host.id)).providers.find((p) => p.id === "mute")?.status, "unhealthy");
    const t0 = Date.now();
    await t.client.stopProvider(ph.host.id, "mute");
    assert.ok(Date.now() - t0 >= 900, "waited for the shutdown delay before killing");
  });

  test("a provider that exits at once: restarted with backoff, then failed with provider_start_failed; the host serves on", async () => {
    const rec = await t.recordEvents();
    const script = await writeScript("crash.sh", '#!/bin/sh\necho "boom: missing settings" >&2\nexit 3\n');
    await t.client.startProvider(ph.host.id, { provider_id: "crashy", provider_ref: script });
    const ev = await waitForEvent(rec, "provider_start_failed", (e) => e.data.provider_id === "crashy");
    assert.match(String(ev.data.error), /exited with code 3.*boom: missing settings.*4 crashes in a row/);
    assert.equal(ph.snapshot("crashy")?.starts, 4, "1 start + maxRestarts (3) restarts");
    const inv = await t.client.getInventory(ph.host.id);
    assert.equal(inv.providers.find((p) => p.id === "crashy")?.status, "failed");
    assert.equal(await t.client.putLink(testLink({ source_id: "still", target: "serving" })), "successfully set link");
    // a failed id may be started again; stop removes it
    await t.client.stopProvider(ph.host.id, "crashy");
    assert.equal((await t.client.getInventory(ph.host.id)).providers.some((p) => p.id === "crashy"), false);
  });

  test("bad references and missing configs: error reply and provider_start_failed, nothing in the inventory", async () => {
    const rec = await t.recordEvents();
    await assert.rejects(t.client.startProvider(ph.host.id, { provider_id: "nope", provider_ref: path.join(SCRIPTS_DIR, "does", "not", "exist") }), /does not exist/);
    await assert.rejects(t.client.startProvider(ph.host.id, { provider_id: "nope", provider_ref: "no-such-first-party" }), /no first-party provider/);
    await assert.rejects(t.client.startProvider(ph.host.id, { provider_id: "nope", provider_ref: "s3://bucket/x" }), /unsupported provider_ref/);
    await assert.rejects(t.client.startProvider(ph.host.id, { provider_id: "nope", provider_ref: "kv-memory", config: ["missing-cfg"] }), /missing-cfg/);
    await assert.rejects(t.client.startProvider(ph.host.id, { provider_id: "bad.id", provider_ref: "kv-memory" }), /provider_id/);
    await waitFor(() => rec.ofType("provider_start_failed").length === 4, { message: "4 provider_start_failed events" });
    assert.equal((await t.client.getInventory(ph.host.id)).providers.some((p) => p.id === "nope"), false);
  });

  test("heartbeats list providers with their status; host stop stops its providers", async () => {
    const t2 = await testLattice(nats);
    try {
      const rec = await t2.recordEvents();
      const ph2 = await startProviderHost(t2, {}, { heartbeatIntervalMs: 200 });
      await t2.client.startProvider(ph2.host.id, { provider_id: "kv", provider_ref: "kv-memory" });
      const beat = await waitForEvent(rec, "host_heartbeat", (e) => (e.data.providers as { status?: string }[]).some((p) => p.status === "running"));
      assert.deepEqual(beat.data.providers, [{ id: "kv", image_ref: "kv-memory", revision: 0, status: "running" }]);
      const pid = ph2.snapshot("kv")?.pid;
      assert.ok(pid);
      await ph2.host.stop();
      assert.throws(() => process.kill(pid, 0));
    } finally {
      await t2.close();
    }
  });
});
