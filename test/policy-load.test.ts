/**
 * What a host may load (docs/security.md, "What a host may run"; issue 8 item 4), on a real nats-server with real hosts:
 * a provider or component given as a file path, and a component given as an http(s) URL, are refused unless the host
 * runs with `--allow-file-load` or the path lies under an `--allowed-path` (after `..` and symlinks); first-party
 * providers by name always run. A refusal is a control reply and an event naming the flag, and nothing is spawned or
 * read: the provider script would create a marker file, the component file's access time would move (relatime), the
 * http server would count a request.
 *
 * The component is built here from WAT (it is only loaded, never called), so that no fixture is needed.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile, chmod } from "node:fs/promises";
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { deployApp, parseManifestText, undeployApp } from "../src/app/index.ts";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { defaultWorkloads } from "../src/host/default-workloads.ts";
import type { Host } from "../src/host/host.ts";
import type { HostOptions } from "../src/host/options.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { parse } from "@bytecodealliance/jco";
import { startRuntime } from "./support/components.ts";
import { testLattice, type EventRecorder, type TestLattice } from "./support/lattice.ts";
import { waitForEvent } from "./support/providers.ts";

let nats: TestNats;
let base: string;
let allowed: string;
let outside: string;
let http: Server;
let httpHits = 0;
let httpUrl: string;

/** A minimal component (one export, `test:load/api.ok() -> u32`): what the hosts load or refuse. */
const COMPONENT_WAT = `(component
  (core module $m (func (export "ok") (result i32) i32.const 7))
  (core instance $i (instantiate $m))
  (func $ok (result u32) (canon lift (core func $i "ok")))
  (instance $api (export "ok" (func $ok)))
  (export "test:load/api" (instance $api)))`;

/** An executable provider that only proves it ran: it creates `marker`, then waits to be killed. */
async function markerProvider(file: string, marker: string): Promise<void> {
  await writeFile(file, `#!/bin/sh\ntouch '${marker}'\nexec sleep 30\n`, "utf8");
  await chmod(file, 0o755);
}

/** Sets a file's access time far in the past (before its modification time), so that any read moves it (relatime). */
function ageAtime(file: string): void {
  const st = statSync(file);
  utimesSync(file, new Date("2001-01-01T00:00:00Z"), st.mtime);
}

function atime(file: string): number {
  return statSync(file).atimeMs;
}

/** Pids of live processes whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, "utf8").includes(needle)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

const FAST = { firstHealthCheckMs: 100, healthIntervalMs: 1000, shutdownDelayMs: 300, startupGraceMs: 3000 };

async function startHost(t: TestLattice, opts: HostOptions = {}): Promise<Host> {
  return t.startHost({ workloads: defaultWorkloads({ providers: FAST, components: { maxWorkers: 1 } }), cacheDir: path.join(base, "cache"), ...opts });
}

async function rejected(p: Promise<unknown>): Promise<TrellisError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TrellisError, String(err));
    return err;
  }
  assert.fail("expected a refusal");
}

before(async () => {
  nats = await startTestNats();
  base = await mkdtemp(path.join(tmpdir(), "trellis-policy-load-"));
  allowed = path.join(base, "allowed");
  outside = path.join(base, "outside");
  await mkdir(allowed);
  await mkdir(outside);
  const wasm = await parse(COMPONENT_WAT);
  await writeFile(path.join(outside, "component.wasm"), wasm);
  await copyFile(path.join(outside, "component.wasm"), path.join(allowed, "component.wasm"));
  await markerProvider(path.join(outside, "prov.sh"), path.join(outside, "ran"));
  await markerProvider(path.join(allowed, "prov.sh"), path.join(allowed, "ran"));
  await symlink(path.join(outside, "component.wasm"), path.join(allowed, "link.wasm"));
  await symlink(outside, path.join(allowed, "sub"));
  http = createServer((_req, res) => {
    httpHits++;
    res.writeHead(200, { "content-type": "application/wasm" });
    res.end(wasm);
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/component.wasm`;
});
after(async () => {
  await new Promise((r) => http.close(r));
  await nats.stop();
  await rm(base, { recursive: true, force: true });
});

/** Checks that relatime is in effect here, so that an unchanged atime means "not read". */
function atimeDetectsReads(): boolean {
  const probe = path.join(base, "probe");
  if (!existsSync(probe)) writeFileSync(probe, "probe");
  ageAtime(probe);
  const before = atime(probe);
  readFileSync(probe);
  return atime(probe) !== before;
}

describe("a host started without --allow-file-load or --allowed-path", () => {
  let t: TestLattice;
  let host: Host;
  let rec: EventRecorder;
  before(async () => {
    t = await testLattice(nats);
    host = await startHost(t);
    rec = await t.recordEvents();
  });
  after(async () => t.close());

  test("refuses a provider by path: clear reply, provider_start_failed naming the flag, nothing spawned", async () => {
    const script = path.join(outside, "prov.sh");
    const err = await rejected(t.client.startProvider(host.id, { provider_id: "p1", provider_ref: script }));
    assert.equal(err.code, ErrorCode.LoadNotAllowed);
    assert.match(err.message, /--allow-file-load/);
    assert.equal(err.details?.flag, "--allow-file-load");
    const ev = await waitForEvent(rec, "provider_start_failed", (e) => e.data.provider_id === "p1");
    assert.match(String(ev.data.error), /--allow-file-load/);
    assert.equal(ev.data.provider_ref, script);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(existsSync(path.join(outside, "ran")), false, "the provider script ran");
    assert.deepEqual(processesMentioning(script), []);
    assert.deepEqual((await t.client.getInventory(host.id)).providers, []);
  });

  test("refuses a file:// provider and a relative one the same way", async () => {
    for (const ref of [`file://${path.join(outside, "prov.sh")}`, path.relative(process.cwd(), path.join(outside, "prov.sh"))]) {
      const err = await rejected(t.client.startProvider(host.id, { provider_id: "p2", provider_ref: ref }));
      assert.equal(err.code, ErrorCode.LoadNotAllowed, ref);
    }
    assert.equal(existsSync(path.join(outside, "ran")), false);
  });

  test("runs a first-party provider by name", async () => {
    assert.equal(await t.client.startProvider(host.id, { provider_id: "kv", provider_ref: "kv-memory" }), "successfully started provider");
    await t.client.stopProvider(host.id, "kv");
  });

  test("refuses a component by path: reply and component_scale_failed name the flag, the file is not read", async (ctx) => {
    const file = path.join(outside, "component.wasm");
    const detect = atimeDetectsReads();
    if (!detect) ctx.diagnostic("this file system does not update atime; the not-read check is skipped");
    ageAtime(file);
    const before = atime(file);
    const err = await rejected(t.client.scaleComponent(host.id, { component_id: "adder", component_ref: file, count: 1 }));
    assert.equal(err.code, ErrorCode.LoadNotAllowed);
    assert.match(err.message, /--allow-file-load/);
    const ev = await waitForEvent(rec, "component_scale_failed", (e) => e.data.component_id === "adder");
    assert.match(String(ev.data.error), /--allow-file-load/);
    assert.equal(ev.data.image_ref, file);
    await new Promise((r) => setTimeout(r, 200));
    if (detect) assert.equal(atime(file), before, "the component file was read");
    assert.deepEqual((await t.client.getInventory(host.id)).components, []);
  });

  test("trellis app deploy: the host refuses a manifest's component by path; the deploy fails naming the flag", async () => {
    const file = path.join(outside, "component.wasm");
    const yaml = `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: { name: refused, annotations: { version: v1 } }
spec:
  components:
    - name: adder
      type: component
      properties: { image: ${file}, id: refused-adder }
      traits: [{ type: spreadscaler, properties: { instances: 1 } }]
`;
    ageAtime(file);
    const before = atime(file);
    const r = await deployApp(t.client, parseManifestText(yaml).manifest, { wait: true, waitTimeoutMs: 10_000 });
    assert.equal(r.status.status, "failed");
    assert.match(r.failures.map((f) => f.message).join("\n"), /--allow-file-load/);
    if (atimeDetectsReads()) assert.equal(atime(file), before, "the component file was read");
    assert.deepEqual((await t.client.getInventory(host.id)).components, []);
    await undeployApp(t.client, "refused");
  });

  test("refuses a component by http(s) URL: no request is made", async () => {
    const hits = httpHits;
    const err = await rejected(t.client.scaleComponent(host.id, { component_id: "web", component_ref: httpUrl, count: 1 }));
    assert.equal(err.code, ErrorCode.LoadNotAllowed);
    assert.match(err.message, /http\(s\) URL.*--allow-file-load/);
    const ev = await waitForEvent(rec, "component_scale_failed", (e) => e.data.component_id === "web");
    assert.match(String(ev.data.error), /--allow-file-load/);
    assert.equal(httpHits, hits);
  });
});

describe("a host started with --allowed-path", () => {
  let t: TestLattice;
  let host: Host;
  let rec: EventRecorder;
  before(async () => {
    t = await testLattice(nats);
    host = await startHost(t, { allowedPaths: [allowed] });
    rec = await t.recordEvents();
  });
  after(async () => t.close());

  test("runs a provider under the directory", async () => {
    const script = path.join(allowed, "prov.sh");
    assert.equal(await t.client.startProvider(host.id, { provider_id: "ok", provider_ref: script }), "successfully started provider");
    await waitFor(() => existsSync(path.join(allowed, "ran")), { message: "the allowed provider ran" });
    await t.client.stopProvider(host.id, "ok");
  });

  test("runs a component under the directory", async () => {
    await t.client.scaleComponent(host.id, { component_id: "inside", component_ref: path.join(allowed, "component.wasm"), count: 1 });
    await waitForEvent(rec, "component_scaled", (e) => e.data.component_id === "inside" && e.data.max_instances === 1, 15_000);
  });

  test("refuses .. and symlink escapes naming --allowed-path; nothing outside is read or run", async () => {
    const outsideWasm = path.join(outside, "component.wasm");
    const detect = atimeDetectsReads();
    ageAtime(outsideWasm);
    const before = atime(outsideWasm);
    const escapes = [
      { id: "dotdot", ref: `${allowed}/../outside/component.wasm` },
      { id: "link", ref: path.join(allowed, "link.wasm") },
      { id: "subdir", ref: path.join(allowed, "sub", "component.wasm") },
      { id: "sibling", ref: `${allowed}-evil/component.wasm` },
    ];
    for (const { id, ref } of escapes) {
      const err = await rejected(t.client.scaleComponent(host.id, { component_id: id, component_ref: ref, count: 1 }));
      assert.equal(err.code, ErrorCode.LoadNotAllowed, ref);
      assert.match(err.message, /--allowed-path/, ref);
      const ev = await waitForEvent(rec, "component_scale_failed", (e) => e.data.component_id === id);
      assert.match(String(ev.data.error), /--allowed-path/);
    }
    for (const ref of [`${allowed}/../outside/prov.sh`, path.join(allowed, "sub", "prov.sh")]) {
      const err = await rejected(t.client.startProvider(host.id, { provider_id: "esc", provider_ref: ref }));
      assert.equal(err.code, ErrorCode.LoadNotAllowed, ref);
      assert.match(err.message, /--allowed-path/);
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(existsSync(path.join(outside, "ran")), false, "a provider outside the allowed directory ran");
    assert.deepEqual(processesMentioning(path.join(outside, "prov.sh")), []);
    if (detect) assert.equal(atime(outsideWasm), before, "a component outside the allowed directory was read");
    const inv = await t.client.getInventory(host.id);
    assert.deepEqual(inv.components.map((c) => c.id), ["inside"]);
  });

  test("component.update to a path outside is refused in the reply; the running component is unchanged", async () => {
    const err = await rejected(t.client.updateComponent(host.id, "inside", path.join(outside, "component.wasm")));
    assert.equal(err.code, ErrorCode.LoadNotAllowed);
    assert.match(err.message, /--allowed-path/);
    const ev = await waitForEvent(rec, "component_scale_failed", (e) => e.data.component_id === "inside");
    assert.match(String(ev.data.error), /--allowed-path/);
    assert.equal((await t.client.getInventory(host.id)).components.find((c) => c.id === "inside")?.image_ref, path.join(allowed, "component.wasm"));
  });

  test("still refuses http(s) URLs (they need --allow-file-load)", async () => {
    const hits = httpHits;
    const err = await rejected(t.client.scaleComponent(host.id, { component_id: "web", component_ref: httpUrl, count: 1 }));
    assert.match(err.message, /--allow-file-load/);
    assert.equal(httpHits, hits);
  });
});

describe("a host started with --allow-file-load", () => {
  let t: TestLattice;
  let host: Host;
  let rec: EventRecorder;
  before(async () => {
    t = await testLattice(nats);
    host = await startHost(t, { allowFileLoad: true });
    rec = await t.recordEvents();
  });
  after(async () => t.close());

  test("runs a provider from any path", async () => {
    const script = path.join(outside, "prov.sh");
    assert.equal(await t.client.startProvider(host.id, { provider_id: "any", provider_ref: script }), "successfully started provider");
    await waitFor(() => existsSync(path.join(outside, "ran")), { message: "the provider ran" });
    await t.client.stopProvider(host.id, "any");
    await rm(path.join(outside, "ran"), { force: true });
  });

  test("runs components from any path and from an http URL", async () => {
    await t.client.scaleComponent(host.id, { component_id: "file", component_ref: path.join(outside, "component.wasm"), count: 1 });
    await waitForEvent(rec, "component_scaled", (e) => e.data.component_id === "file" && e.data.max_instances === 1, 15_000);
    const hits = httpHits;
    await t.client.scaleComponent(host.id, { component_id: "web", component_ref: httpUrl, count: 1 });
    await waitForEvent(rec, "component_scaled", (e) => e.data.component_id === "web" && e.data.max_instances === 1, 15_000);
    assert.ok(httpHits > hits);
  });
});

describe("the component runtime's own API (no control request)", () => {
  test("start and update check the rule too; a runtime without admission loads no file", async () => {
    const env = await startRuntime({ server: nats, loads: { allowedPaths: [allowed] } });
    const bare = await startRuntime({ server: nats, loads: {} });
    try {
      await env.runtime.start(path.join(allowed, "component.wasm"), "a");
      for (const ref of [path.join(outside, "component.wasm"), path.join(allowed, "link.wasm")]) {
        await assert.rejects(env.runtime.start(ref, "b"), (e: TrellisError) => e.code === ErrorCode.LoadNotAllowed && /--allowed-path/.test(e.message));
        await assert.rejects(env.runtime.update("a", ref), (e: TrellisError) => e.code === ErrorCode.LoadNotAllowed);
      }
      await assert.rejects(bare.runtime.start(path.join(allowed, "component.wasm"), "c"), (e: TrellisError) => e.code === ErrorCode.LoadNotAllowed && /--allow-file-load/.test(e.message));
      assert.deepEqual(env.runtime.inventory().map((c) => [c.id, c.image_ref]), [["a", path.join(allowed, "component.wasm")]]);
    } finally {
      await env.close();
      await bare.close();
    }
  });
});
