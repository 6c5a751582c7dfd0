/**
 * The demo path end to end (issue 5, "Done when"): HTTP → HTTP server provider → lattice → counter component →
 * key-value provider → Redis, with the example components built from examples/ and the example manifests deployed as
 * `trellis app deploy` does; links re-pointed while requests flow, and no request fails. A second test runs the demo
 * program itself (`src/demo/main.ts --exit-when-ready`).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { Redis } from "ioredis";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import type { Host } from "../src/host/host.ts";
import { getFreePort } from "../src/lattice/nats-server.ts";
import { startTestNats, startTestRedis, uniqueLattice, waitFor, type TestNats, type TestRedis } from "../src/testing/index.ts";
import { deployExample, exampleApps } from "../src/demo/apps.ts";
import { buildExamples, REPO_ROOT } from "../src/demo/build.ts";
import { startDemoHost } from "../src/demo/stack.ts";

interface Counts {
  default: number;
  cache: number;
}

/** Requests `url` from `clients` concurrent loops until stopped; records every answer. */
function traffic(url: string, clients: number) {
  const answers: { status: number; body: string; at: number }[] = [];
  let running = true;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const res = await fetch(url);
        answers.push({ status: res.status, body: (await res.text()).trim(), at: Date.now() });
      } catch (err) {
        answers.push({ status: 0, body: String(err), at: Date.now() });
      }
    }
  });
  return {
    answers,
    counts: () => answers.filter((a) => a.status === 200).map((a) => JSON.parse(a.body) as Counts),
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

void describe("demo: the counter app through real providers", () => {
  let nats: TestNats;
  let redis: TestRedis;
  let host: Host;
  let client: CtlClient;
  let lattice: string;

  before(async () => {
    [nats, redis] = await Promise.all([startTestNats(), startTestRedis()]);
    await buildExamples(["hello", "counter"]);
    lattice = uniqueLattice("demo");
    host = await startDemoHost({ natsUrl: nats.url, lattice, logger: silentLogger, cacheDir: path.join(REPO_ROOT, ".cache", "host") });
    client = await CtlClient.connect({ natsUrl: nats.url, lattice, timeoutMs: 5000 });
  });

  after(async () => {
    await client?.close();
    await host?.stop();
    await redis?.stop();
    await nats?.stop();
  });

  void test("the count rises in Redis; links re-pointed mid-traffic (default → memory, cache → Redis), no request fails", async () => {
    const [helloPort, counterPort] = [await getFreePort(), await getFreePort()];
    const apps = await exampleApps({ defaultKv: "redis", redisUrl: redis.url, helloAddress: `127.0.0.1:${helloPort}`, counterAddress: `127.0.0.1:${counterPort}` });
    for (const app of apps) await deployExample(client, app);
    const [hello, counter] = apps as [(typeof apps)[0], (typeof apps)[0]];
    const greeting = await waitFor(async () => {
      const r = await fetch(`${hello.url}greet?x=1`);
      return r.status === 200 ? r.text() : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200, message: "hello to answer" });
    assert.equal(greeting, "Hello from Trellis! You asked for GET /greet?x=1\n");
    const first = await waitFor(async () => {
      const r = await fetch(counter.url);
      return r.status === 200 ? (JSON.parse(await r.text()) as Counts) : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200, message: "counter to answer" });

    const r = new Redis(redis.url);
    try {
      const inRedis = async () => Number((await r.get("counter:hits")) ?? 0);
      assert.equal(await inRedis(), first.default, "the default link's count lives in Redis");

      const load = traffic(counter.url, 4);
      let relinked2 = Infinity;
      try {
        await waitFor(() => load.answers.length >= 40, { timeoutMs: 20_000, message: "40 answers before the re-link" });
        const before = Math.max(...load.counts().map((c) => c.default));
        assert.ok(before >= first.default + 40, `the count rises (${first.default} → ${before})`);
        assert.ok((await inRedis()) >= before, "every increment reached Redis");

        // Re-point `default` from Redis to the memory provider: one KV update, nothing restarts.
        const relinkedAt = Date.now();
        await client.replaceLink(
          { source_id: "counter", wit_namespace: "wasi", wit_package: "keyvalue", name: "default" },
          { source_id: "counter", target: "kv-memory", name: "default", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"] },
        );
        await waitFor(() => load.answers.filter((a) => a.at > relinkedAt + 300).length >= 20, { timeoutMs: 20_000, message: "answers after the re-link" });
        const frozen = await inRedis();
        await waitFor(() => load.answers.filter((a) => a.at > relinkedAt + 300).length >= 40, { timeoutMs: 20_000, message: "more answers after the re-link" });
        assert.equal(await inRedis(), frozen, "Redis no longer counts: default goes to memory now");
        const defaults = load.counts().map((c) => c.default);
        const restart = defaults.findIndex((d, i) => i > 0 && d < defaults[i - 1]! && d <= 8);
        assert.ok(restart > 0, `default restarted from 1 in memory: ${defaults.slice(-50).join(",")}`);

        // And the demo's move: `cache` from memory to Redis, where it continues the Redis count.
        relinked2 = Date.now();
        await client.replaceLink(
          { source_id: "counter", wit_namespace: "wasi", wit_package: "keyvalue", name: "cache" },
          { source_id: "counter", target: "kv-redis", name: "cache", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"], target_config: ["counter-redis"] },
        );
        await waitFor(() => load.answers.filter((a) => a.at > relinked2 + 300).length >= 40, { timeoutMs: 20_000, message: "answers after the second re-link" });
      } finally {
        await load.stop();
      }
      const last = load.counts().at(-1)!;
      assert.ok(last.cache > first.default + 40, `cache continues the Redis count (now ${last.cache})`);
      assert.equal(await inRedis(), last.cache);
      // Neither re-link fails a request: providers keep serving a deleted link for a short drain (SDK `linkDrainMs`)
      // while the counter's host applies the replace from its KV watch.
      const failed = load.answers.filter((a) => a.status !== 200);
      assert.deepEqual(failed, [], `no request failed (${load.answers.length} answers)`);
    } finally {
      r.disconnect();
    }
  });
});

void describe("demo: the program", () => {
  test("src/demo/main.ts builds, starts, deploys, answers and stops cleanly", async () => {
    const [nats, redis] = await Promise.all([startTestNats(), startTestRedis()]);
    try {
      const [hp, cp] = [await getFreePort(), await getFreePort()];
      const args = ["src/demo/main.ts", "--nats-url", nats.url, "--lattice", uniqueLattice("demo"), "--redis-url", redis.url, "--hello-port", String(hp), "--counter-port", String(cp), "--exit-when-ready"];
      const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (c: Buffer) => (output += c.toString()));
      child.stderr.on("data", (c: Buffer) => (output += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
      assert.equal(code, 0, output);
      assert.match(output, new RegExp(`http://127\\.0\\.0\\.1:${hp}/ → Hello from Trellis!`));
      assert.match(output, new RegExp(`http://127\\.0\\.0\\.1:${cp}/ → \\{"default":\\d+,"cache":1\\}`));
      assert.match(output, /npx trellis link replace counter kv-redis wasi keyvalue --link-name cache/);
      assert.match(output, /undeployed hello, counter/);
      assert.match(output, /host stopped/);
    } finally {
      await redis.stop();
      await nats.stop();
    }
  });
});
