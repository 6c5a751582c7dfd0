/**
 * The web dashboard end to end (issue 13 item 1, docs/dashboard.md): a real NATS server, Redis and a Trellis host
 * running the demo's apps (hello and counter: the counter's two key-value links `default` → kv-redis and `cache` →
 * kv-memory); `trellis ui` started through the real CLI module in its own process; headless Chromium (Debian's
 * `chromium`, driven by playwright-core) on the page. The page shows the counter's two links as graph edges; a
 * `trellis link replace` from the CLI moves the `default` edge without a reload (from the `linkdef_*` events); the
 * page scales the counter (the same `component.scale` the CLI sends) and the host runs 2 instances; a screenshot is
 * saved to a temporary file, or to `TRELLIS_UI_SCREENSHOT` (the README's docs/images/dashboard.png is made with
 * `TRELLIS_UI_SCREENSHOT=docs/images/dashboard.png`).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import { deployExample, exampleApps } from "../src/demo/apps.ts";
import { buildExamples, REPO_ROOT } from "../src/demo/build.ts";
import { DEMO_ALLOWED_PATHS, demoWorkloads } from "../src/demo/stack.ts";
import { Host } from "../src/host/host.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { startTestNats, startTestRedis, uniqueLattice, waitFor, type TestNats, type TestRedis } from "../src/testing/index.ts";
import { ROOT, runCliEntry, writeCliEntry } from "./support/cli.ts";

/** Chromium as measured on this machine (HELPERS.md / issue 13): Debian's package, headless, no sandbox as root. */
const CHROMIUM = process.env.TRELLIS_TEST_CHROMIUM ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const SCREENSHOT = process.env.TRELLIS_UI_SCREENSHOT ?? path.join(os.tmpdir(), `trellis-dashboard-${process.pid}.png`);

interface EdgeData {
  source_id: string;
  target_id: string;
  link_name: string;
  iface: string;
}

/** The counter's key-value edges as the page's graph has them. */
async function counterEdges(page: Page): Promise<EdgeData[]> {
  return page.evaluate(() => {
    const cy = (globalThis as unknown as { trellisGraph?: { edges(): { map(f: (e: { data(): unknown }) => unknown): unknown[] } } }).trellisGraph;
    if (!cy) return [];
    return (cy.edges().map((e) => e.data()) as EdgeData[])
      .filter((d) => d.source_id === "counter" && d.iface.startsWith("wasi:keyvalue/"))
      .map((d) => ({ source_id: d.source_id, target_id: d.target_id, link_name: d.link_name, iface: d.iface }));
  });
}

/** Waits until the graph's counter edges are exactly `want` (link name → target), polling the page. */
async function waitForEdges(page: Page, want: Record<string, string>, timeoutMs: number, message: string): Promise<EdgeData[]> {
  let last: EdgeData[] = [];
  try {
    return await waitFor(
      async () => {
        last = await counterEdges(page);
        const got = Object.fromEntries(last.map((e) => [e.link_name, e.target_id]));
        return last.length === Object.keys(want).length && Object.entries(want).every(([n, t]) => got[n] === t) ? last : undefined;
      },
      { timeoutMs, intervalMs: 100, message },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; the graph has ${JSON.stringify(last)}`, { cause: err });
  }
}

/** Starts `trellis ui --output json` in its own process and reads the URL it prints. */
async function startUi(entry: string, nats: TestNats, lattice: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [entry, "--nats-url", nats.url, "--lattice", lattice, "--output", "json", "ui", "--listen", "127.0.0.1:0"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  const url = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`trellis ui exited with ${child.exitCode}: ${err}`);
      try {
        return (JSON.parse(out) as { url?: string }).url;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 20_000, intervalMs: 50, message: "trellis ui to print its URL" },
  );
  return { child, url, stderr: () => err };
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

void describe("trellis ui: the web dashboard, live", () => {
  let nats: TestNats;
  let redis: TestRedis;
  let host: Host;
  let client: CtlClient;
  let lattice: string;
  let dir: string;
  let entry: string;
  let ui: Awaited<ReturnType<typeof startUi>> | undefined;
  let browser: Browser | undefined;
  let pageRef: Page | undefined;
  let counterUrl: string;

  before(async () => {
    [nats, redis] = await Promise.all([startTestNats(), startTestRedis()]);
    await buildExamples(["hello", "counter"]);
    lattice = uniqueLattice("ui");
    // No resident reconciler: a component scaled from the page stays scaled (a reconciler would restore the app's count).
    host = await Host.create({
      natsUrl: nats.url,
      lattice,
      logger: silentLogger,
      cacheDir: path.join(REPO_ROOT, ".cache", "host"),
      friendlyName: "ui-test-host",
      labels: { zone: "test" },
      workloads: demoWorkloads(),
      allowedPaths: [...DEMO_ALLOWED_PATHS],
      reconciler: false,
    });
    client = await CtlClient.connect({ natsUrl: nats.url, lattice, timeoutMs: 5000 });
    const [helloPort, counterPort] = [await getFreePort(), await getFreePort()];
    const apps = await exampleApps({ defaultKv: "redis", redisUrl: redis.url, helloAddress: `127.0.0.1:${helloPort}`, counterAddress: `127.0.0.1:${counterPort}` });
    for (const app of apps) await deployExample(client, app);
    counterUrl = apps[1]!.url;
    dir = await mkdtemp(path.join(os.tmpdir(), "trellis-ui-"));
    entry = await writeCliEntry(dir, [
      ["ui.ts", "registerUiCommand"],
      ["link.ts", "registerLinkCommands"],
    ]);
    ui = await startUi(entry, nats, lattice);
  });

  after(async () => {
    await browser?.close();
    await stopChild(ui?.child);
    await client?.close();
    await host?.stop();
    await redis?.stop();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  void test("shows the counter's links, moves an edge on `link replace` without a reload, scales from the page", { timeout: 60_000 }, async () => {
    assert.ok(ui);
    assert.match(ui.url, /^http:\/\/127\.0\.0\.1:\d+\/$/, "loopback by default");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    pageRef = page;
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    await page.goto(ui.url);

    // The counter's two key-value links, as edges of the graph.
    const edges = await waitForEdges(page, { default: "kv-redis", cache: "kv-memory" }, 20_000, "the counter's two key-value edges");
    assert.ok(edges.every((e) => /^wasi:keyvalue\/(store,atomics|atomics,store)$/.test(e.iface)), JSON.stringify(edges));
    // Grouped by host: the workloads sit inside their host's compound node.
    const parents = await page.evaluate(() => {
      const cy = (globalThis as unknown as { trellisGraph: { getElementById(id: string): { data(k: string): unknown } } }).trellisGraph;
      return ["counter", "kv-redis", "kv-memory", "counter-http"].map((id) => cy.getElementById(`w:${id}`).data("parent"));
    });
    assert.deepEqual(parents, Array(4).fill(`h:${host.id}`));
    // Mark this document: a reload would lose the mark.
    await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));

    // Re-point `default` to the memory provider from the CLI; the edge moves on the open page.
    const r = await runCliEntry(entry, { natsUrl: nats.url, lattice }, ["link", "replace", "counter", "kv-memory", "wasi", "keyvalue", "--link-name", "default", "--interface", "store", "--interface", "atomics"], 20_000);
    assert.equal(r.code, 0, r.stderr);
    await waitForEdges(page, { default: "kv-memory", cache: "kv-memory" }, 10_000, "the default edge to move to kv-memory");
    assert.equal(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded), true, "the page was not reloaded");
    // The demo's second move (cache → Redis), so that the screenshot shows both providers linked.
    await client.replaceLink(
      { source_id: "counter", wit_namespace: "wasi", wit_package: "keyvalue", name: "cache" },
      { source_id: "counter", target: "kv-redis", name: "cache", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store", "atomics"], target_config: ["counter-redis"] },
    );
    await waitForEdges(page, { default: "kv-memory", cache: "kv-redis" }, 10_000, "the cache edge to move to kv-redis");

    // Scale the counter to 2 from the page.
    const row = page.locator('[data-component="counter"]');
    await row.locator('[data-scale="counter"] input').fill("2");
    await row.locator('[data-scale="counter"] button').click();
    await waitFor(async () => (await row.locator('[data-testid="instances"]').textContent())?.trim() === "2", { timeoutMs: 15_000, intervalMs: 100, message: "the page to show 2 counter instances" });
    const inv = await client.getInventory(host.id);
    assert.equal(inv.components.find((c) => c.id === "counter")?.max_instances, 2, "the host runs the counter with 2 instances");

    // Some traffic (figures show when the hosts report metrics), the other panels, then the screenshot.
    for (let i = 0; i < 20; i++) assert.equal((await fetch(counterUrl)).status, 200);
    await waitFor(async () => (await page.locator('[data-testid="apps"] tr').count()) >= 3, { timeoutMs: 15_000, intervalMs: 200, message: "both apps listed" });
    await waitFor(async () => (await page.locator('[data-testid="configs"]').textContent())?.includes("counter-redis") === true, { timeoutMs: 10_000, intervalMs: 200, message: "the counter's config listed" });
    await waitFor(async () => (await page.locator('[data-testid="events"]').textContent())?.includes("linkdef_set") === true, { timeoutMs: 10_000, intervalMs: 200, message: "link events in the event stream" });
    await page.waitForTimeout(2_500); // one inventory poll (2 s): the traffic's figures, when the hosts report them
    // The event stream filters.
    const events = page.locator('[data-testid="events"]');
    await events.locator("input[placeholder^=filter]").fill("linkdef_deleted");
    await waitFor(async () => {
      const names = await events.locator(".event b").allTextContents();
      return names.length >= 2 && names.every((n) => n === "linkdef_deleted");
    }, { timeoutMs: 5_000, intervalMs: 100, message: "only linkdef_deleted events listed" });
    await events.locator("input[placeholder^=filter]").fill("");
    await events.locator("input[placeholder^=filter]").blur();
    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.deepEqual(pageErrors, [], "no script error on the page");
  });

  void test("puts and deletes a link and a config from the page", { timeout: 30_000 }, async () => {
    const page = pageRef;
    assert.ok(page, "the first test opened the page");
    const links = page.locator('[data-testid="links"]');
    const form = links.locator("form");
    for (const [placeholder, value] of [["source", "hello"], ["target", "kv-memory"], ["package", "keyvalue"], ["interfaces (a,b)", "store"], ["link name", "ui"]] as const) {
      await form.locator(`input[placeholder="${placeholder}"]`).fill(value);
    }
    await form.locator("button").click();
    const edge = () => page.evaluate(() => {
      const cy = (globalThis as unknown as { trellisGraph: { getElementById(id: string): { nonempty(): boolean } } }).trellisGraph;
      return cy.getElementById("hello|wasi:keyvalue|ui|kv-memory").nonempty();
    });
    await waitFor(edge, { timeoutMs: 10_000, intervalMs: 100, message: "the new link's edge" });
    assert.ok((await client.getLinks()).some((l) => l.source_id === "hello" && l.name === "ui" && l.target === "kv-memory"), "the link is in the lattice");
    await links.locator('[data-link="hello|wasi:keyvalue|ui|kv-memory"] button').click();
    await waitFor(async () => !(await edge()), { timeoutMs: 10_000, intervalMs: 100, message: "the deleted link's edge to go" });
    assert.ok(!(await client.getLinks()).some((l) => l.source_id === "hello" && l.name === "ui"), "the link is gone from the lattice");

    const configs = page.locator('[data-testid="configs"]');
    await configs.locator('input[placeholder="name"]').fill("from-page");
    await configs.locator('input[placeholder^="k=v"]').fill("colour=green, size=3");
    await configs.locator("form button").click();
    await waitFor(async () => (await configs.textContent())?.includes("colour=green") === true, { timeoutMs: 10_000, intervalMs: 100, message: "the new config listed" });
    assert.deepEqual(await client.getConfig("from-page"), { colour: "green", size: "3" });
    await configs.locator("tr", { hasText: "from-page" }).locator("button").click();
    await waitFor(async () => (await configs.textContent())?.includes("from-page") === false, { timeoutMs: 10_000, intervalMs: 100, message: "the deleted config to go" });
    assert.equal(await client.getConfig("from-page"), undefined);
  });

  void test("refuses writes without the page's token, from another origin or to another Host name; sends no credentials", { timeout: 20_000 }, async () => {
    assert.ok(ui);
    const u = new URL(ui.url);
    const call = (method: string, p: string, headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ host: u.hostname, port: u.port, method, path: p, headers }, (res) => {
          let b = "";
          res.on("data", (c: Buffer) => (b += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: b }));
        });
        req.once("error", reject);
        req.end(body);
      });
    const page = await call("GET", "/", {});
    const token = /name="trellis-token" content="([^"]+)"/.exec(page.body)?.[1];
    assert.ok(token && token.length >= 32, "the page carries the per-process token");
    const scale = JSON.stringify({ host_id: host.id, component_id: "hello", component_ref: "./.cache/examples/hello.wasm", count: 3 });
    const json = { "content-type": "application/json" };
    assert.equal((await call("POST", "/api/components/scale", json, scale)).status, 403, "no token");
    assert.equal((await call("POST", "/api/components/scale", { ...json, "x-trellis-token": "x".repeat(token.length) }, scale)).status, 403, "wrong token");
    assert.equal((await call("POST", "/api/components/scale", { ...json, "x-trellis-token": token, origin: "http://evil.example" }, scale)).status, 403, "another origin");
    assert.equal((await call("POST", "/api/components/scale", { ...json, "x-trellis-token": token, host: `evil.example:${u.port}` }, scale)).status, 403, "another Host (DNS rebinding)");
    assert.equal((await call("GET", "/api/state", { host: `evil.example:${u.port}` })).status, 403, "reads too need our Host");
    assert.equal((await call("POST", "/api/configs", { "x-trellis-token": token, "content-type": "text/plain" }, "name=x")).status, 400, "a form post is refused");
    // With the token and our origin the same request goes through (the control call the CLI makes).
    const ok = await call("POST", "/api/configs", { ...json, "x-trellis-token": token, origin: `http://${u.host}` }, JSON.stringify({ name: "ui-test", values: { greeting: "hi", password: "hunter2" } }));
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(await client.getConfig("ui-test"), { greeting: "hi", password: "hunter2" });
    const state = await waitFor(async () => {
      const s = await call("GET", "/api/state", {});
      return s.body.includes('"ui-test"') ? s.body : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100, message: "the new config in the state" });
    assert.ok(!state.includes("hunter2"), "secret-looking config values are not sent to the page");
    assert.ok(!state.includes(nats.url), "the NATS URL is not sent to the page");
    assert.equal((await client.getInventory(host.id)).components.find((c) => c.id === "hello")?.max_instances, 4, "the refused scale did nothing (the manifest says 4)");
  });
});
