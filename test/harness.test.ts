// Tests for the test harness itself: throwaway nats-server (JetStream + WebSocket) and redis-server.
// (`void describe/test`: node:test returns promises the runner tracks itself; the lint rule
// no-floating-promises does not know that.)
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, wsconnect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { Redis } from "ioredis";
import { NatsServerError, isNatsReachable, startNatsServer } from "../src/lattice/nats-server.ts";
import {
  collect,
  CollectTimeoutError,
  pingRedis,
  startTestNats,
  startTestRedis,
  uniqueLattice,
  waitFor,
  type TestNats,
} from "../src/testing/index.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

void describe("test nats-server", () => {
  let server: TestNats;
  let nc: NatsConnection;

  before(async () => {
    server = await startTestNats();
    nc = await connect({ servers: server.url });
  });

  after(async () => {
    await nc?.close();
    await server?.stop();
  });

  void test("is reachable and has a websocket listener", async () => {
    assert.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(await isNatsReachable(server.url));
    if (!server.external) assert.match(server.websocketUrl ?? "", /^ws:\/\/127\.0\.0\.1:\d+$/);
  });

  void test("request/reply over TCP", async () => {
    const subject = `${uniqueLattice()}.echo`;
    const sub = nc.subscribe(subject, { callback: (_err, msg) => void msg.respond(enc.encode(`echo:${msg.string()}`)) });
    await nc.flush();
    const reply = await nc.request(subject, enc.encode("hi"), { timeout: 2000 });
    assert.equal(dec.decode(reply.data), "echo:hi");
    sub.unsubscribe();
  });

  void test("request/reply from a WebSocket client to a TCP responder", { skip: process.env["NATS_URL"] !== undefined && process.env["NATS_WS_URL"] === undefined }, async () => {
    const subject = `${uniqueLattice()}.ws`;
    const sub = nc.subscribe(subject, { callback: (_err, msg) => void msg.respond(enc.encode(msg.string().toUpperCase())) });
    await nc.flush();
    const ws = await wsconnect({ servers: server.websocketUrl ?? "" });
    try {
      const reply = await ws.request(subject, enc.encode("over ws"), { timeout: 2000 });
      assert.equal(dec.decode(reply.data), "OVER WS");
    } finally {
      await ws.close();
      sub.unsubscribe();
    }
  });

  void test("JetStream KV put/get", async () => {
    const kvm = new Kvm(nc);
    const bucket = uniqueLattice("kv");
    const kv = await kvm.create(bucket);
    await kv.put("greeting", "hello");
    const entry = await kv.get("greeting");
    assert.equal(entry?.string(), "hello");
    await kv.destroy();
  });

  void test("collect() takes n messages from a subscription", async () => {
    const subject = `${uniqueLattice()}.events`;
    const sub = nc.subscribe(subject);
    for (let i = 0; i < 3; i++) nc.publish(subject, enc.encode(String(i)));
    const msgs = await collect(sub, 3, 2000);
    assert.deepEqual(
      msgs.map((m) => m.string()),
      ["0", "1", "2"],
    );
    sub.unsubscribe();
  });
});

void describe("startNatsServer", () => {
  void test("rejects with NATS_SERVER_NOT_FOUND for a missing binary", async () => {
    await assert.rejects(startNatsServer({ binary: "/nonexistent/nats-server" }), (err: unknown) => {
      assert.ok(err instanceof NatsServerError);
      assert.equal(err.code, "NATS_SERVER_NOT_FOUND");
      assert.match(err.message, /apt-get install nats-server/);
      return true;
    });
  });

  void test("rejects with NATS_SERVER_START_FAILED and the server output on a bad config", async () => {
    await assert.rejects(startNatsServer({ extraConfig: ["this is { not valid"] }), (err: unknown) => {
      assert.ok(err instanceof NatsServerError);
      assert.equal(err.code, "NATS_SERVER_START_FAILED");
      assert.match(err.message, /nats-server output/);
      return true;
    });
  });

  void test("stop() terminates the server and is idempotent", async () => {
    const s = await startNatsServer();
    assert.ok(await isNatsReachable(s.url));
    await Promise.all([s.stop(), s.stop()]);
    assert.equal(await isNatsReachable(s.url, 300), false);
  });
});

void describe("test redis-server", () => {
  void test("starts, answers PING via ioredis, stops", async () => {
    const redis = await startTestRedis();
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      assert.equal(await client.ping(), "PONG");
      const key = uniqueLattice("key");
      await client.set(key, "v", "EX", 60);
      assert.equal(await client.get(key), "v");
      await client.del(key);
    } finally {
      client.disconnect();
      await redis.stop();
    }
    if (!redis.external) assert.equal(await pingRedis("127.0.0.1", redis.port, 300), false);
  });
});

void describe("helpers", () => {
  void test("uniqueLattice() is a safe NATS token", () => {
    const a = uniqueLattice();
    assert.match(a, /^t_[0-9a-z]{10}$/);
    assert.notEqual(a, uniqueLattice());
    assert.match(uniqueLattice("demo"), /^demo_[0-9a-z]{10}$/);
    assert.throws(() => uniqueLattice("a.b"), RangeError);
  });

  void test("waitFor() returns the truthy value or times out", async () => {
    let n = 0;
    assert.equal(await waitFor(() => (++n >= 3 ? n : false), { intervalMs: 1 }), 3);
    await assert.rejects(waitFor(() => false, { timeoutMs: 50, message: "never" }), /timed out after 50 ms waiting for never/);
  });

  void test("collect() times out with the partial items", async () => {
    async function* two(): AsyncGenerator<number> {
      yield 1;
      yield 2;
      await new Promise((r) => setTimeout(r, 10_000).unref());
    }
    await assert.rejects(collect(two(), 3, 100), (err: unknown) => {
      assert.ok(err instanceof CollectTimeoutError);
      assert.deepEqual(err.items, [1, 2]);
      return true;
    });
  });
});
