/**
 * The invocation client's cheaper call path (issue 12 item 4, docs/adr/0024-call-path.md): request headers built from
 * a cached prefix are byte for byte what nats.js's own `headers()` sends, and arrive as such; one shared deadline timer
 * still times out every request at its own deadline, an early one among later ones included; messages of one event-loop
 * turn share a socket write.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, headers as natsHeaders, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { invokeRaw } from "../src/invocation/index.ts";
import { readRequestHeaders, requestHeaders } from "../packages/wire/src/invocation/headers.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { startTestNats, uniqueLattice, type TestNats } from "../src/testing/index.ts";

const dec = new TextDecoder();

describe("invocation client call path", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  before(async () => {
    nats = await startTestNats();
    nc = await connect({ servers: nats.url });
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  test("headers from the cached prefix encode exactly as nats.js headers(), in the same order", () => {
    const cases = [
      { sourceId: "counter", targetId: "kv", linkName: "cache", timeoutMs: 1999.7 },
      { sourceId: undefined, targetId: "adder", linkName: undefined, timeoutMs: 0.2, json: true },
      { sourceId: "p", targetId: "c", linkName: "default", timeoutMs: 5000, bodyLength: 123456, extra: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } },
    ];
    for (const c of cases) {
      for (let round = 0; round < 2; round++) {
        // twice: the second call takes the prefix from the cache
        const ours = requestHeaders(c);
        const theirs = natsHeaders();
        if (c.sourceId !== undefined) theirs.set("source-id", c.sourceId);
        theirs.set("target-id", c.targetId);
        theirs.set("link-name", c.linkName ?? "default");
        theirs.set("trellis-timeout-ms", String(Math.max(1, Math.floor(c.timeoutMs))));
        if (c.json) theirs.set("content-type", "application/json");
        if (c.bodyLength !== undefined) theirs.set("trellis-body-length", String(c.bodyLength));
        for (const [k, v] of Object.entries(c.extra ?? {})) theirs.set(k, v);
        assert.equal(dec.decode(ours.encode()), dec.decode((theirs as unknown as { encode(): Uint8Array }).encode()));
        assert.equal(ours.get("target-id"), c.targetId);
      }
    }
    // an edit after building drops the cached prefix and still encodes everything
    const h = requestHeaders({ sourceId: "a", targetId: "b", linkName: "l", timeoutMs: 10 });
    h.set("link-name", "other");
    assert.equal(dec.decode(h.encode()), "NATS/1.0\r\nsource-id: a\r\ntarget-id: b\r\ntrellis-timeout-ms: 10\r\nlink-name: other\r\n\r\n");
    assert.throws(() => requestHeaders({ sourceId: "a\r\nx: y", targetId: "t2", linkName: "l", timeoutMs: 1 }), /cannot contain/);
  });

  test("a target receives the protocol headers and the extra ones", async () => {
    const lattice = uniqueLattice("hdr");
    const got: Msg[] = [];
    const sub = nc.subscribe(`trellis.inv.v1.${lattice}.t.>`, {
      callback: (_e, m) => {
        got.push(m);
        m.respond(new Uint8Array([0]));
      },
    });
    try {
      for (let i = 0; i < 2; i++) {
        await invokeRaw(nc, { lattice, targetId: "t", iface: "a:b/c", fn: "f", sourceId: "src", linkName: "ln", timeoutMs: 3000, headers: { traceparent: `tp-${i}` } }, new Uint8Array(0));
      }
      assert.equal(got.length, 2);
      for (const [i, m] of got.entries()) {
        const r = readRequestHeaders(m.headers);
        assert.equal(r.sourceId, "src");
        assert.equal(r.linkName, "ln");
        assert.ok(Number(r.timeout) > 0 && Number(r.timeout) <= 3000);
        assert.equal(m.headers?.get("target-id"), "t");
        assert.equal(m.headers?.get("traceparent"), `tp-${i}`);
      }
    } finally {
      sub.unsubscribe();
    }
  });

  test("one shared timer: a short deadline among long ones times out on time; the long ones still get their replies", async () => {
    const lattice = uniqueLattice("tmo");
    // a connection of its own: no timer armed by earlier calls
    const nc = await connect({ servers: nats.url });
    const held: Msg[] = [];
    const sub = nc.subscribe(`trellis.inv.v1.${lattice}.slow.>`, { callback: (_e, m) => void held.push(m) });
    await nc.flush();
    try {
      const call = (timeoutMs: number) => invokeRaw(nc, { lattice, targetId: "slow", iface: "a:b/c", fn: "f", timeoutMs }, new Uint8Array(0));
      const long = call(30_000);
      const t0 = performance.now();
      const short = call(300);
      await assert.rejects(short, (e: TrellisError) => e.code === "TIMEOUT");
      const took = performance.now() - t0;
      assert.ok(took >= 290 && took < 10_000, `the short call timed out after ${took} ms`);
      // the long one is still pending and completes when answered
      for (const m of held) m.respond(new Uint8Array([0, 7]));
      assert.deepEqual([...(await long)], [7]);
    } finally {
      sub.unsubscribe();
      await nc.close();
    }
  });

  test("requests sent by separate callbacks of one event-loop turn leave in at most two socket writes (the first alone, the rest corked until setImmediate)", async () => {
    const lattice = uniqueLattice("cork");
    const sub = nc.subscribe(`trellis.inv.v1.${lattice}.t.>`, { callback: (_e, m) => void m.respond(new Uint8Array([0])) });
    await nc.flush();
    // count the socket's low-level writes (nats.js's Node transport keeps its socket at protocol.transport.socket)
    const socket = (nc as unknown as { protocol: { transport: { socket: Record<string, (...a: unknown[]) => unknown> } } }).protocol.transport.socket;
    let writes = 0;
    const spy = (name: string) => {
      const original = socket[name]!;
      socket[name] = function (this: unknown, ...a: unknown[]) {
        writes++;
        return original.apply(this, a);
      };
      return () => delete socket[name];
    };
    const restore = [spy("_write"), spy("_writev")];
    try {
      const calls: Promise<Uint8Array>[] = [];
      // 20 separate macrotasks of one check phase, each sending one request (nats.js alone flushes each on its own)
      await new Promise<void>((resolve) => {
        for (let i = 0; i < 20; i++) {
          setImmediate(() => {
            calls.push(invokeRaw(nc, { lattice, targetId: "t", iface: "a:b/c", fn: "f", timeoutMs: 5000 }, new Uint8Array([i])));
            if (calls.length === 20) resolve();
          });
        }
      });
      await Promise.all(calls);
      assert.ok(writes <= 3, `20 requests of one turn took ${writes} socket writes`);
    } finally {
      for (const r of restore) r();
      sub.unsubscribe();
    }
  });
});
