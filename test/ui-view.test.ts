/**
 * The dashboard's pure parts (src/ui): reading the inventory `metrics` field in the shape the hosts send it (ADR 0026
 * / issue 13 item 4), merging figures over hosts and keying them like the graph's edges, masking secret-looking config
 * values, and `--listen` parsing. The live behaviour is test/ui.test.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import os from "node:os";
import { hostHeaders, isLoopback, parseListen } from "../src/ui/index.ts";
import { linkKey, mergeFigures, parseMetrics, redactConfig, type ViewHost } from "../src/ui/view.ts";

const fig = (calls: number, errors: number, p50: number, p99: number) => ({ calls, errors, rate_per_s: calls / 60, p50_ms: p50, p99_ms: p99 });

function host(id: string, metrics: unknown): ViewHost {
  return { id, friendly_name: id, labels: {}, version: "0", uptime_seconds: 1, uptime_human: "1s", seen_at: 0, components: [], providers: [], ...(parseMetrics(metrics) ? { metrics: parseMetrics(metrics)! } : {}) };
}

void describe("dashboard view: figures", () => {
  test("the inventory's metrics field is read; absent or malformed gives none", () => {
    const m = parseMetrics({
      window_ms: 60000,
      components: { counter: fig(120, 2, 1.5, 9) },
      links: [{ source_id: "counter", target: "kv-redis", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"], link_name: "default", ...fig(240, 0, 0.8, 3) }],
    });
    assert.equal(m?.window_ms, 60000);
    assert.deepEqual(m?.components.counter, fig(120, 2, 1.5, 9));
    assert.equal(m?.links[0]?.link_name, "default");
    assert.equal(parseMetrics(undefined), undefined);
    assert.equal(parseMetrics("x"), undefined);
    assert.deepEqual(parseMetrics({ components: { c: { calls: "many" } }, links: [{ nope: 1 }] }), { window_ms: 60000, components: { c: fig(0, 0, 0, 0) }, links: [] });
  });

  test("figures merge over hosts (sums; p50/p99 the largest) under the key of the link's edge", () => {
    const link = { source_id: "counter", target: "kv-redis", wit_namespace: "wasi", wit_package: "keyvalue", name: "default" };
    const lm = (f: ReturnType<typeof fig>) => ({ source_id: "counter", target: "kv-redis", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"], link_name: "default", ...f });
    const merged = mergeFigures([
      host("a", { window_ms: 60000, components: { counter: fig(60, 1, 2, 10) }, links: [lm(fig(60, 0, 1, 4))] }),
      host("b", { window_ms: 60000, components: { counter: fig(120, 0, 3, 8) }, links: [lm(fig(30, 3, 0.5, 6))] }),
      host("c", undefined),
    ]);
    assert.equal(merged.window_ms, 60000);
    assert.deepEqual(merged.components.counter, { calls: 180, errors: 1, rate_per_s: 3, p50_ms: 3, p99_ms: 10 });
    assert.deepEqual(merged.links[linkKey(link)], { calls: 90, errors: 3, rate_per_s: 1.5, p50_ms: 1, p99_ms: 6 });
    assert.deepEqual(mergeFigures([host("c", undefined)]), { window_ms: null, components: {}, links: {} }, "no host reports metrics: the page shows —");
  });
});

void describe("dashboard view: what the page may see", () => {
  test("config values of secret-looking keys are masked", () => {
    assert.deepEqual(redactConfig({ url: "redis://h:6379", password: "p", API_KEY: "k", token: "t", client_secret: "s", address: "a" }), {
      url: "redis://h:6379",
      password: "•••",
      API_KEY: "•••",
      token: "•••",
      client_secret: "•••",
      address: "a",
    });
  });

  test("--listen is HOST:PORT; loopback is told apart", () => {
    assert.deepEqual(parseListen("127.0.0.1:8088"), { host: "127.0.0.1", port: 8088 });
    assert.deepEqual(parseListen("[::1]:0"), { host: "::1", port: 0 });
    assert.deepEqual(parseListen("localhost:9000"), { host: "localhost", port: 9000 });
    for (const bad of ["8088", "127.0.0.1", "127.0.0.1:99999", "a b:1", "::1:80"]) assert.throws(() => parseListen(bad), { code: "INVALID_ARGUMENT" }, bad);
    assert.ok(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("localhost"));
    assert.ok(!isLoopback("0.0.0.0") && !isLoopback("192.168.1.2"));
    assert.deepEqual(hostHeaders("127.0.0.1", 8088).sort(), ["127.0.0.1:8088", "[::1]:8088", "localhost:8088"]);
    assert.deepEqual(hostHeaders("10.1.2.3", 80), ["10.1.2.3:80"], "a named address answers to itself only");
    const wild = hostHeaders("0.0.0.0", 80);
    assert.ok(wild.includes("127.0.0.1:80") && wild.includes(`${os.hostname().toLowerCase()}:80`), "a wildcard bind answers to this machine's names");
    assert.ok(!wild.includes("evil.example:80"));
  });
});
