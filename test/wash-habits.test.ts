/**
 * wash 1.x habits on the real `trellis` CLI (docs/from-wasmcloud.md): src/cli/main.ts spawned as a process per command
 * against a real nats-server and a real host running the component runtime. The lattice and NATS address reach the CLI
 * the way a wash user's shell gives them: `WASMCLOUD_LATTICE`, `WASMCLOUD_CTL_HOST`, `WASMCLOUD_CTL_PORT`.
 * Fixture: adder.wasm, found through test/support/components.ts (`TRELLIS_FIXTURES_DIR`, Apache-2.0); the test that
 * starts it skips when it is absent.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { componentRuntime } from "../src/component/index.ts";
import type { Host } from "../src/host/host.ts";
import { withWasmcloudFallbacks } from "../src/cli/env.ts";
import { waitFor } from "../src/testing/index.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { fixture, needsFixtures } from "./support/components.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "src/cli/main.ts");
const ADDER = fixture("adder.wasm");

/** The test process's environment without any TRELLIS_*, WASMCLOUD_* or WASH_* variable. */
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TRELLIS|WASMCLOUD|WASH)_/.test(k)));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("wash habits on the trellis CLI", () => {
  let t: TestLattice;
  let host: Host;
  let port: string;

  /** Runs `trellis ARGS` with `env` over a clean environment; no global flags are added. */
  const trellisEnv = (env: Record<string, string>, ...args: string[]) =>
    new Promise<Run>((resolve) => {
      execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000, env: { ...CLEAN_ENV, ...env } }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      });
    });
  /** A wash user's shell: lattice and NATS address from WASMCLOUD_LATTICE and WASMCLOUD_CTL_HOST/PORT only. */
  const wash = (...args: string[]) => trellisEnv({ WASMCLOUD_LATTICE: t.lattice, WASMCLOUD_CTL_HOST: "127.0.0.1", WASMCLOUD_CTL_PORT: port }, ...args);
  const ok = (r: Run) => {
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}${r.stdout}`);
    return r;
  };

  before(async () => {
    t = await testLattice();
    port = new URL(t.nats.url).port;
    host = await t.startHost({ allowedPaths: [path.dirname(ADDER)], workloads: { components: componentRuntime() } });
  });
  after(async () => {
    await t?.close();
  });

  test("fall-back rules: TRELLIS_* wins over WASMCLOUD_*, unhonoured variables are named, values never shown", () => {
    const r = withWasmcloudFallbacks({ WASMCLOUD_LATTICE: "a", TRELLIS_TIMEOUT_MS: "9", WASMCLOUD_CTL_TIMEOUT_MS: "5", WASMCLOUD_CTL_PORT: "4333", WASMCLOUD_CTL_JWT: "eyJsecret" });
    assert.equal(r.env["TRELLIS_LATTICE"], "a");
    assert.equal(r.env["TRELLIS_TIMEOUT_MS"], "9");
    assert.equal(r.env["TRELLIS_NATS_URL"], "nats://127.0.0.1:4333");
    assert.ok(r.warnings.some((w) => w.startsWith("WASMCLOUD_CTL_TIMEOUT_MS is ignored: TRELLIS_TIMEOUT_MS is set")));
    assert.ok(r.warnings.some((w) => w.startsWith("WASMCLOUD_CTL_JWT is not honoured")));
    assert.ok(!r.warnings.join("\n").includes("eyJsecret"));
    assert.equal(withWasmcloudFallbacks({ WASMCLOUD_CTL_HOST: "nats.example", WASMCLOUD_CTL_TLS: "true" }).env["TRELLIS_NATS_URL"], "tls://nats.example:4222");
    assert.equal(withWasmcloudFallbacks({ WASH_CTL_CREDS: "/x.creds" }).env["TRELLIS_NATS_CREDS"], "/x.creds");
    const host = withWasmcloudFallbacks({
      WASMCLOUD_LABEL_zone: "west",
      WASMCLOUD_LABEL_tier: "x",
      TRELLIS_LABEL_tier: "gold",
      WASMCLOUD_HEARTBEAT_INTERVAL: "5",
      WASMCLOUD_LOG_LEVEL: "CRITICAL",
      WASMCLOUD_FLAME_GRAPH: "on",
      WASMCLOUD_OCI_ALLOW_LATEST: "true",
    });
    assert.equal(host.env["TRELLIS_LABEL_zone"], "west");
    assert.equal(host.env["TRELLIS_LABEL_tier"], "gold");
    assert.equal(host.env["TRELLIS_HEARTBEAT_INTERVAL_MS"], "5000");
    assert.equal(host.env["TRELLIS_LOG_LEVEL"], "error");
    assert.deepEqual(host.warnings, [
      "WASMCLOUD_LABEL_tier is ignored: TRELLIS_LABEL_tier is set and wins",
      "WASMCLOUD_FLAME_GRAPH is not read by Trellis (docs/from-wasmcloud.md)",
    ]);
  });

  test("WASMCLOUD_LATTICE and WASMCLOUD_CTL_HOST/PORT reach the lattice; flags and TRELLIS_* win; ignored ones are named", async () => {
    const hosts = JSON.parse(ok(await wash("-o", "json", "get", "hosts")).stdout) as { id: string }[];
    assert.deepEqual(hosts.map((h) => h.id), [host.id]);

    // without them: the default lattice on 127.0.0.1:<port> has no host, and the message says where it asked
    const none = ok(await trellisEnv({ WASMCLOUD_CTL_PORT: port }, "get", "hosts"));
    assert.equal(none.stdout, `no hosts answered in lattice default at nats://127.0.0.1:${port}\n`);

    // -x wins over WASMCLOUD_LATTICE; TRELLIS_LATTICE wins over WASMCLOUD_LATTICE (and says so)
    const env = { WASMCLOUD_LATTICE: "elsewhere", WASMCLOUD_CTL_PORT: port };
    assert.match(ok(await trellisEnv(env, "-x", t.lattice, "get", "hosts")).stdout, new RegExp(`^${host.id} `));
    const shadowed = ok(await trellisEnv({ ...env, TRELLIS_LATTICE: t.lattice }, "get", "hosts"));
    assert.match(shadowed.stdout, new RegExp(`^${host.id} `));
    assert.match(shadowed.stderr, /warning: WASMCLOUD_LATTICE is ignored: TRELLIS_LATTICE is set and wins/);

    // wash's --ctl-host/--ctl-port flags and -t; -o after the verb
    const flags = ok(await trellisEnv({ WASMCLOUD_LATTICE: t.lattice }, "--ctl-host", "127.0.0.1", "--ctl-port", port, "-t", "3000", "get", "hosts", "-o", "json"));
    assert.deepEqual((JSON.parse(flags.stdout) as { id: string }[]).map((h) => h.id), [host.id]);

    // a variable Trellis cannot honour is named on stderr, its value is not
    const jwt = ok(await trellisEnv({ ...env, WASMCLOUD_CTL_JWT: "eyJ-not-shown" }, "-x", t.lattice, "get", "hosts"));
    assert.match(jwt.stderr, /warning: WASMCLOUD_CTL_JWT is not honoured by Trellis: .*--nats-creds/);
    assert.doesNotMatch(jwt.stderr, /eyJ-not-shown/);
  });

  test("start component without a host id (auction), --max-instances, scale component HOST REF ID, get inventories", { skip: needsFixtures("adder.wasm") }, async () => {
    const started = JSON.parse(ok(await wash("-o", "json", "start", "component", ADDER, "adder", "--max-instances", "2")).stdout) as { host_id: string };
    assert.equal(started.host_id, host.id);
    assert.equal((await t.client.getInventory(host.id)).components.find((c) => c.id === "adder")?.max_instances, 2);

    ok(await wash("scale", "component", host.id, ADDER, "adder", "--max-instances", "3"));
    assert.equal((await t.client.getInventory(host.id)).components.find((c) => c.id === "adder")?.max_instances, 3);
    ok(await wash("scale", "component", host.id, ADDER, "adder", "-c", "4"));
    assert.equal((await t.client.getInventory(host.id)).components.find((c) => c.id === "adder")?.max_instances, 4);
    const bad = await wash("scale", "component", host.id, "adder", "-c", "4");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /expected ID, or HOST_ID COMPONENT_REF COMPONENT_ID; got 2 argument/);

    const inv = JSON.parse(ok(await wash("-o", "json", "get", "inventories", host.id)).stdout) as { components: { id: string; max_instances: number }[] };
    assert.deepEqual(inv.components.map((c) => [c.id, c.max_instances]), [["adder", 4]]);
    assert.equal(ok(await wash("call", "adder", "docs:adder/add@0.1.0.add", "[2,3]")).stdout, "5\n");
    assert.match(ok(await wash("scale", "component", host.id, ADDER, "adder", "--max", "5", "--skip-wait")).stdout, /^component adder scale requested to 5/);
    await waitFor(async () => (await t.client.getInventory(host.id)).components.find((c) => c.id === "adder")?.max_instances === 5, { message: "scaled to 5" });
    const elsewhere = await wash("stop", "component", "adder", "--host-id", "NOTAHOST");
    assert.equal(elsewhere.code, 1);
    assert.match(elsewhere.stderr, /component adder is not running on host NOTAHOST/);
    ok(await wash("stop", "component", "adder", "--host-id", host.id));
    assert.deepEqual((await t.client.getInventory(host.id)).components, []);
  });

  test("label HOST k=v,k=v, label HOST k --delete, tag", async () => {
    ok(await wash("label", host.id, "zone=east,tier=gold"));
    ok(await wash("tag", host.id, "rack=r1"));
    let labels = (await t.client.getInventory(host.id)).labels;
    assert.equal(labels["zone"], "east");
    assert.equal(labels["tier"], "gold");
    assert.equal(labels["rack"], "r1");
    ok(await wash("label", host.id, "zone,rack", "--delete"));
    labels = (await t.client.getInventory(host.id)).labels;
    assert.equal(labels["zone"], undefined);
    assert.equal(labels["rack"], undefined);
    assert.equal(labels["tier"], "gold");
  });

  test("link put -l, get links, link query, link delete; config create/delete", async () => {
    ok(await wash("link", "put", "adder", "httpd", "wasi", "http", "--interface", "incoming-handler", "-l", "other"));
    const links = JSON.parse(ok(await wash("-o", "json", "get", "links")).stdout) as { source_id: string; target: string; name: string }[];
    assert.deepEqual(links.map((l) => [l.source_id, l.target, l.name]), [["adder", "httpd", "other"]]);
    assert.deepEqual(JSON.parse(ok(await wash("--output", "json", "links", "query")).stdout), links);
    ok(await wash("link", "delete", "adder", "wasi", "http", "-l", "other"));
    assert.deepEqual(JSON.parse(ok(await wash("-o", "json", "get", "links")).stdout), []);

    ok(await wash("config", "create", "greeting", "lang=en"));
    assert.deepEqual(await t.client.getConfig("greeting"), { lang: "en" });
    ok(await wash("config", "delete", "greeting"));
    assert.equal(await t.client.getConfig("greeting"), undefined);
  });

  test("trellis up on WASMCLOUD_LATTICE / WASMCLOUD_CTL_PORT with WASMCLOUD_LABEL_* and -l", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "trellis-wash-up-"));
    const child = spawn(process.execPath, [BIN, "up", "-l", "tier=gold", "--log-level", "warn"], {
      cwd: ROOT,
      env: { ...CLEAN_ENV, TRELLIS_DATA_DIR: dataDir, WASMCLOUD_LATTICE: t.lattice, WASMCLOUD_CTL_PORT: port, WASMCLOUD_LABEL_zone: "west" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      const up = await waitFor(async () => (await t.client.getHosts()).find((h) => h.labels["zone"] === "west"), { timeoutMs: 20_000, message: `host up on the test lattice; output: ${out}` });
      assert.equal(up.labels["tier"], "gold");
      ok(await wash("stop", "host", up.id));
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, { timeoutMs: 15_000, message: "trellis up exits when its host is stopped" });
    } finally {
      child.kill("SIGKILL");
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test("stop host HOST", async () => {
    const other = await t.startHost();
    const r = ok(await wash("-o", "json", "stop", "host", other.id, "--host-timeout", "2000"));
    assert.equal((JSON.parse(r.stdout) as { success: boolean }).success, true);
    const deadline = Date.now() + 10_000;
    while ((await t.client.getHosts()).some((h) => h.id === other.id) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual((await t.client.getHosts()).map((h) => h.id), [host.id]);
  });
});
