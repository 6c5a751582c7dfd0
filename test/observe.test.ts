/**
 * Tracing, explain and metrics through the demo's counter (issue 13 items 2–4; ADR 0025, ADR 0026): HTTP → HTTP
 * server provider (a process) → counter component (the host's worker) → kv-redis and kv-memory providers (two more
 * processes), with an OTLP/HTTP receiver started here. One request gives one trace whose spans cover every hop in at
 * least three processes, each parented by the hop that called it; `trellis explain --follow counter` (the real CLI
 * module in its own process) prints the same path with per-hop times; `explainCall` shows where an error arose; the
 * calls appear in the host inventory's `metrics` field and on its Prometheus endpoint.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import { Host } from "../src/host/host.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { startTestNats, startTestRedis, uniqueLattice, waitFor, type TestNats, type TestRedis } from "../src/testing/index.ts";
import { deployExample, exampleApps } from "../src/demo/apps.ts";
import { buildExamples, REPO_ROOT } from "../src/demo/build.ts";
import { DEMO_ALLOWED_PATHS, demoWorkloads } from "../src/demo/stack.ts";
import { explainCall, formatExplanation, type Explanation } from "../src/tracing/explain.ts";
import { runCliEntry, writeCliEntry } from "./support/cli.ts";

/** One span as the OTLP/JSON receiver got it. */
interface OtlpSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

/** A plain OTLP/HTTP receiver: `POST /v1/traces` with JSON bodies (the exporter's and the SDK's encoding). */
async function otlpReceiver(): Promise<{ url: string; spans: OtlpSpan[]; contentTypes: Set<string>; close(): Promise<void> }> {
  const spans: OtlpSpan[] = [];
  const contentTypes = new Set<string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      contentTypes.add(String(req.headers["content-type"]));
      if (req.url === "/v1/traces" && String(req.headers["content-type"]).startsWith("application/json")) {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
          resourceSpans?: { resource?: { attributes?: { key: string; value: Record<string, unknown> }[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
        };
        for (const rs of body.resourceSpans ?? []) {
          const service = String(Object.values(rs.resource?.attributes?.find((a) => a.key === "service.name")?.value ?? {})[0] ?? "");
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              const attributes: Record<string, unknown> = {};
              for (const a of (s.attributes as { key: string; value: Record<string, unknown> }[] | undefined) ?? []) attributes[a.key] = Object.values(a.value)[0];
              spans.push({
                service,
                traceId: String(s.traceId),
                spanId: String(s.spanId),
                ...(s.parentSpanId ? { parentSpanId: String(s.parentSpanId) } : {}),
                name: String(s.name),
                kind: Number(s.kind),
                attributes,
              });
            }
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join("");

void describe("observe: tracing, explain and metrics through the counter", () => {
  let nats: TestNats;
  let redis: TestRedis;
  let otlp: Awaited<ReturnType<typeof otlpReceiver>>;
  let host: Host;
  let client: CtlClient;
  let lattice: string;
  let counterUrl: string;

  before(async () => {
    [nats, redis, otlp] = await Promise.all([startTestNats(), startTestRedis(), otlpReceiver()]);
    await buildExamples(["counter"]);
    lattice = uniqueLattice("observe");
    host = await Host.create({
      natsUrl: nats.url,
      lattice,
      logger: silentLogger,
      cacheDir: path.join(REPO_ROOT, ".cache", "host"),
      workloads: demoWorkloads(),
      allowedPaths: [...DEMO_ALLOWED_PATHS],
      otlpEndpoint: otlp.url,
      metricsListen: "127.0.0.1:0",
    });
    client = await CtlClient.connect({ natsUrl: nats.url, lattice, timeoutMs: 5000 });
    const port = await getFreePort();
    const apps = await exampleApps({ defaultKv: "redis", redisUrl: redis.url, counterAddress: `127.0.0.1:${port}` });
    const counter = apps.find((a) => a.name === "counter")!;
    await deployExample(client, counter);
    counterUrl = counter.url;
    await waitFor(async () => (await fetch(counterUrl).then((r) => r.status, () => 0)) === 200, { timeoutMs: 60_000, intervalMs: 200, message: "the counter to answer" });
  });

  after(async () => {
    await client?.close();
    await host?.stop();
    await otlp?.close();
    await redis?.stop();
    await nats?.stop();
  });

  void test("one request gives one trace: a span for every hop, in ≥ 3 processes, each parented by the hop that called it", async () => {
    const traceId = hex(32);
    const clientSpan = hex(16);
    const res = await fetch(counterUrl, { headers: { traceparent: `00-${traceId}-${clientSpan}-01` } });
    assert.equal(res.status, 200);
    await res.text();
    const mine = () => otlp.spans.filter((s) => s.traceId === traceId);
    // http span + call to counter + counter's server span + (client + provider server) per key-value call
    await waitFor(() => {
      const s = mine();
      const kvServers = s.filter((x) => x.kind === 2 && (x.service === "kv-redis" || x.service === "kv-memory"));
      return (
        kvServers.length >= 2 &&
        s.filter((x) => x.kind === 3 && x.service === "trellis-host").length === kvServers.length &&
        s.some((x) => x.service === "trellis-host" && x.kind === 2) &&
        s.filter((x) => x.service === "counter-http").length >= 2
      );
    }, { timeoutMs: 15_000, intervalMs: 100, message: "spans of every hop" });
    const spans = mine();
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const services = new Set(spans.map((s) => s.service));
    assert.ok(services.size >= 3, `spans from ≥ 3 processes, got ${[...services].join(", ")}`);
    assert.ok(otlp.contentTypes.has("application/json"), "the exporters post OTLP/JSON");

    // http-server provider: its request span is a child of the HTTP client's traceparent; the call to counter under it
    const httpSpan = spans.find((s) => s.service === "counter-http" && s.kind === 2);
    assert.ok(httpSpan, "the HTTP server provider records the request");
    assert.equal(httpSpan.parentSpanId, clientSpan, "the request span's parent is the HTTP client's span");
    const toCounter = spans.find((s) => s.service === "counter-http" && s.kind === 3);
    assert.ok(toCounter);
    assert.equal(toCounter.parentSpanId, httpSpan.spanId);
    assert.equal(toCounter.attributes["trellis.target"], "counter");
    assert.equal(toCounter.attributes["trellis.wit.interface"], "wasi:http/incoming-handler");

    // the host: counter's server span under the provider's call; every key-value import call under it
    const served = spans.find((s) => s.service === "trellis-host" && s.kind === 2);
    assert.ok(served, "the host records the call counter serves");
    assert.equal(served.parentSpanId, toCounter.spanId, "counter's span is a child of the provider's call");
    assert.equal(served.attributes["trellis.host_id"], host.id);
    assert.equal(served.attributes["trellis.source_id"], "counter-http");
    const imports = spans.filter((s) => s.service === "trellis-host" && s.kind === 3);
    assert.ok(imports.length >= 2);
    const links = new Set<string>();
    for (const c of imports) {
      assert.equal(c.parentSpanId, served.spanId, `import ${c.name} is a child of counter's span`);
      assert.equal(c.attributes["trellis.source_id"], "counter");
      links.add(`${String(c.attributes["trellis.link_name"])}→${String(c.attributes["trellis.target"])}`);
      // the provider's server span is a child of that import call
      const server = spans.find((s) => s.kind === 2 && s.parentSpanId === c.spanId);
      assert.ok(server, `the provider span under import ${c.name}`);
      assert.equal(server.service, c.attributes["trellis.target"]);
      assert.equal(server.attributes["trellis.host_id"], host.id);
      assert.ok(String(server.attributes["trellis.provider.instance_id"]).length > 0, "provider spans carry the instance id");
    }
    assert.deepEqual([...links].sort(), ["cache→kv-memory", "default→kv-redis"]);
    for (const s of spans) if (s.parentSpanId && s.parentSpanId !== clientSpan) assert.ok(byId.has(s.parentSpanId), `parent of ${s.name} is in the trace`);
  });

  void test("trellis explain --follow counter prints the next request's path with per-hop link, host, instance and time", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-explain-"));
    const entry = await writeCliEntry(dir, [["explain.ts", "registerExplainCommand"]]);
    const run = runCliEntry(entry, { natsUrl: nats.url, lattice }, ["--output", "json", "explain", "--follow", "counter", "--wait-ms", "30000"], 45_000);
    // requests until the CLI has one (it arms every process first)
    let done = false;
    void run.then(() => (done = true));
    while (!done) {
      await fetch(counterUrl).then((r) => r.text(), () => "");
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout) as Explanation;
    const hop = (pred: (h: Explanation["hops"][number]) => boolean, what: string) => {
      const h = e.hops.find(pred);
      assert.ok(h, `${what} in ${r.stdout}`);
      assert.ok(h.duration_ms >= 0 && h.start_offset_ms >= 0);
      return h;
    };
    const call = hop((h) => h.kind === "client" && h.target === "counter", "the provider's call to counter");
    assert.equal(call.source_id, "counter-http");
    assert.equal(call.interface, "wasi:http/incoming-handler");
    const served = hop((h) => h.kind === "server" && h.target === "counter", "counter serving it");
    assert.equal(served.parent_span_id, call.span_id);
    assert.equal(served.host_id, host.id);
    for (const [link, target] of [["default", "kv-redis"], ["cache", "kv-memory"]] as const) {
      const out = hop((h) => h.kind === "client" && h.target === target && h.link_name === link, `counter → ${target} over link ${link}`);
      assert.equal(out.parent_span_id, served.span_id);
      assert.equal(out.interface.startsWith("wasi:keyvalue/"), true);
      const at = hop((h) => h.kind === "server" && h.parent_span_id === out.span_id, `${target} serving it`);
      assert.equal(at.service, target);
      assert.ok(at.provider_instance_id, "the provider instance is named");
      assert.ok(at.depth > served.depth);
    }
    assert.ok(!e.error, "the request succeeded");
  });

  void test("explainCall: the hop where an error arose is marked", async () => {
    const e = await explainCall(client.nc, { lattice, targetId: "counter", iface: "wasi:http/incoming-handler", fn: "no-such-function", settleMs: 300 });
    assert.equal(e.error?.code, "NOT_FOUND");
    const origin = e.hops.filter((h) => h.error_origin);
    assert.equal(origin.length, 1, JSON.stringify(e.hops));
    assert.equal(origin[0]!.kind, "server");
    assert.equal(origin[0]!.target, "counter");
    assert.equal(origin[0]!.host_id, host.id);
    assert.equal(e.hops[0]!.service, "trellis-cli");
    const text = formatExplanation(e);
    assert.match(text, /⇢ trellis-cli → counter wasi:http\/incoming-handler\.no-such-function link=default .*✗ error arose here: NOT_FOUND/, text);
  });

  void test("metrics: per component and per link, in the inventory (metrics field) and on the Prometheus endpoint", async () => {
    for (let i = 0; i < 5; i++) await fetch(counterUrl).then((r) => r.text());
    const inv = await waitFor(async () => {
      const x = await client.getInventory(host.id);
      const c = x.metrics?.components["counter"];
      return c && c.calls >= 5 && c.errors >= 1 && x.metrics!.links.length >= 2 ? x : undefined;
    }, { timeoutMs: 10_000, intervalMs: 200, message: "metrics in the inventory" });
    const m = inv.metrics!;
    assert.equal(m.window_ms, 60_000);
    const c = m.components["counter"]!;
    assert.ok(c.rate_per_s > 0 && c.p50_ms > 0 && c.p99_ms >= c.p50_ms, JSON.stringify(c));
    assert.equal(c.errors, 1, "the one failed call (NOT_FOUND) of the explainCall test counts as an error");
    const redisLink = m.links.find((l) => l.target === "kv-redis");
    assert.ok(redisLink, JSON.stringify(m.links));
    assert.deepEqual(
      { source_id: redisLink.source_id, wit_namespace: redisLink.wit_namespace, wit_package: redisLink.wit_package, link_name: redisLink.link_name },
      { source_id: "counter", wit_namespace: "wasi", wit_package: "keyvalue", link_name: "default" },
    );
    assert.ok(redisLink.interfaces.includes("atomics") || redisLink.interfaces.includes("store"));
    assert.ok(redisLink.calls >= 5 && redisLink.p50_ms > 0);
    assert.ok(m.links.some((l) => l.target === "kv-memory" && l.link_name === "cache"));

    assert.ok(host.metricsUrl, "the Prometheus endpoint runs");
    const text = await (await fetch(host.metricsUrl)).text();
    const line = (re: RegExp) => text.split("\n").find((l) => re.test(l));
    const calls = line(/^trellis_component_calls_total\{[^}]*component_id="counter"[^}]*\} \d+/);
    assert.ok(calls && Number(calls.split(" ").pop()) >= 5, text);
    assert.ok(line(/^trellis_component_latency_p99_milliseconds\{[^}]*component_id="counter"[^}]*\} [\d.]+/), text);
    const linkCalls = line(/^trellis_link_calls_total\{[^}]*link_name="default"[^}]*target="kv-redis"[^}]*\} \d+/) ?? line(/^trellis_link_calls_total\{[^}]*target="kv-redis"[^}]*\} \d+/);
    assert.ok(linkCalls && Number(linkCalls.split(" ").pop()) >= 5, text);
  });
});
