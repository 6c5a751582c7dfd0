/**
 * First-party providers messaging-nats (`wasmcloud:messaging@0.2.0`) and timer (`trellis:timer/handler@0.1.0`)
 * (issue 11 E), in-process as remote providers on a real nats-server, calling and called by real components built
 * here from JS with componentize-qjs and run by a host's component runtime.
 */
import { RUNTIME_TEST_LOADS } from "./support/components.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentize } from "componentize-qjs";
import type { NatsConnection } from "@nats-io/transport-node";
import { runProvider, type ProviderDefinition, type RunningProvider } from "trellis/provider-sdk";
import { componentRuntime } from "../src/component/index.ts";
import { invoke, serveInterfaces, t } from "../src/invocation/index.ts";
import { CONSUMER } from "../providers/messaging-nats/wit.ts";
import { waitFor } from "../src/testing/index.ts";
import type { Logger } from "../src/core/logger.ts";
import { messagingNatsProvider } from "../providers/messaging-nats/main.ts";
import { messagingSettings } from "../providers/messaging-nats/settings.ts";
import { scheduleOf, timerProvider, TIMER_WIT } from "../providers/timer/main.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const MESSAGING_WIT = `package wasmcloud:messaging@0.2.0;

interface types {
  record broker-message {
    subject: string,
    body: list<u8>,
    reply-to: option<string>,
  }
}

interface handler {
  use types.{broker-message};
  handle-message: func(msg: broker-message) -> result<_, string>;
}

interface consumer {
  use types.{broker-message};
  request: func(subject: string, body: list<u8>, timeout-ms: u32) -> result<broker-message, string>;
  publish: func(msg: broker-message) -> result<_, string>;
}
`;

const MSG_WORLD = `package test:msg@0.1.0;

world echo {
  import wasmcloud:messaging/consumer@0.2.0;
  export wasmcloud:messaging/handler@0.2.0;
}
`;
// every message on a subscribed subject is published again on out.<subject>, body prefixed
const MSG_JS = `
import { publish } from "wasmcloud:messaging/consumer@0.2.0";
export const handler = {
  handleMessage(msg) {
    const body = new Uint8Array([..."echo:"].map((c) => c.charCodeAt(0)).concat([...msg.body]));
    publish({ subject: "out." + msg.subject, body, replyTo: undefined });
  },
};
`;

const TICK_WORLD = `package test:tick@0.1.0;

interface sink {
  note: func(count: u64);
}

world ticked {
  import sink;
  export trellis:timer/handler@0.1.0;
}
`;
const TICK_JS = `
import { note } from "test:tick/sink@0.1.0";
export const handler = { tick(count, scheduledMs) { note(count); } };
`;

const log = (level: string) => (msg: string, meta?: object) => {
  if (process.env["TEST_LOG"]) process.stderr.write(`${level} ${msg} ${JSON.stringify(meta ?? {})}\n`);
};
const quiet: Logger = { trace: log("trace"), debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error"), child: () => quiet };
const enc = new TextEncoder();
const dec = new TextDecoder();

async function build(dir: string, name: string, files: Record<string, string>, js: string): Promise<string> {
  const witDir = path.join(dir, `${name}-wit`);
  const deps = path.join(witDir, "deps");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(deps, { recursive: true });
  for (const [f, text] of Object.entries(files)) {
    const p = f === "world.wit" ? path.join(witDir, f) : path.join(deps, f);
    await writeFile(p, text);
  }
  const { component } = await componentize({ witPath: witDir, jsSource: js, sync: true, optSize: true });
  const out = path.join(dir, `${name}.wasm`);
  await writeFile(out, component);
  return out;
}

describe("messaging-nats and timer providers", () => {
  let tl: TestLattice;
  let nc: NatsConnection;
  let dir: string;
  const running: RunningProvider<unknown>[] = [];
  const start = async <X>(id: string, def: ProviderDefinition<X>) => {
    running.push((await runProvider(def, { remote: { providerId: id, lattice: tl.lattice, natsUrl: tl.nats.url }, exitOnShutdown: false, logger: quiet })) as RunningProvider<unknown>);
  };

  before(async () => {
    tl = await testLattice();
    dir = await mkdtemp(path.join(tmpdir(), "trellis-msg-"));
    await tl.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, workloads: { components: componentRuntime() } });
    nc = await tl.connection();
  });
  after(async () => {
    await Promise.allSettled(running.map((p) => p.shutdown()));
    await tl?.close();
  });

  test("link config: subjects, queue group, cluster URIs and timeouts are checked", async () => {
    assert.deepEqual(messagingSettings({ SUBSCRIPTIONS: " a.b , c.> ", queue_group: "q" }), {
      clusterUris: [],
      subscriptions: ["a.b", "c.>"],
      queueGroup: "q",
      handlerTimeoutMs: 10_000,
    });
    assert.throws(() => messagingSettings({ subscriptions: "a b" }), /subscriptions/);
    assert.throws(() => messagingSettings({ handler_timeout_ms: "0" }), /handler_timeout_ms/);
    await assert.rejects(scheduleOf({}), /interval_ms or cron/);
    await assert.rejects(scheduleOf({ interval_ms: "5" }), /interval_ms/);
    await assert.rejects(scheduleOf({ interval_ms: "100", cron: "* * * * *" }), /not both/);
    assert.equal((await scheduleOf({ interval_ms: "100" })).schedule(1000), 1100);
  });

  test("a message published on NATS reaches the handler component; its consumer.publish reaches a NATS subscriber; the queue group is honoured", async () => {
    const wasm = await build(dir, "echo", { "world.wit": MSG_WORLD, "messaging.wit": MESSAGING_WIT }, MSG_JS);
    await tl.client.putConfig("msg-sub", { subscriptions: "in.a,in.b", queue_group: "workers" });
    await tl.client.putLink({ source_id: "echo", target: "messaging", wit_namespace: "wasmcloud", wit_package: "messaging", interfaces: ["consumer"] });
    await tl.client.putLink({ source_id: "messaging", target: "echo", wit_namespace: "wasmcloud", wit_package: "messaging", interfaces: ["handler"], source_config: ["msg-sub"] });
    await start("messaging", messagingNatsProvider());
    await tl.client.scaleComponent(tl.hosts[0]!.id, { component_ref: wasm, component_id: "echo", count: 1 });

    const got: { subject: string; body: string }[] = [];
    const out = nc.subscribe("out.>", { callback: (_e, m) => void got.push({ subject: m.subject, body: dec.decode(m.data) }) });
    await nc.flush();
    // the component may still be starting: publish until the first echo comes back
    await waitFor(
      () => {
        nc.publish("in.a", enc.encode("hello"));
        return got.length > 0;
      },
      { timeoutMs: 30_000, intervalMs: 500, message: "an echo of in.a" },
    );
    assert.deepEqual(got[0], { subject: "out.in.a", body: "echo:hello" });
    nc.publish("in.b", enc.encode("second"));
    nc.publish("in.c", enc.encode("not subscribed"));
    await waitFor(() => got.some((g) => g.subject === "out.in.b"), { timeoutMs: 5000 });
    assert.deepEqual(got.find((g) => g.subject === "out.in.b"), { subject: "out.in.b", body: "echo:second" });

    // a plain subscriber in the same queue group shares the messages with the provider: none is delivered twice
    got.length = 0;
    let peer = 0;
    const rival = nc.subscribe("in.a", { queue: "workers", callback: () => void peer++ });
    await nc.flush();
    for (let i = 0; i < 40; i++) nc.publish("in.a", enc.encode(`m${i}`));
    await waitFor(() => peer + got.length >= 40, { timeoutMs: 10_000, message: "40 messages handled" });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(peer + got.length, 40, `each message once (peer ${peer}, component ${got.length})`);
    assert.ok(peer > 0 && got.length > 0, `both members of the group got messages (peer ${peer}, component ${got.length})`);
    assert.ok(!got.some((g) => g.subject === "out.in.c"));
    rival.unsubscribe();
    out.unsubscribe();

    // consumer.request, as the component's import reaches it (source-id echo, its link)
    const responder = nc.subscribe("svc.time", { callback: (_e, m) => void m.respond(enc.encode(`pong:${dec.decode(m.data)}`)) });
    await nc.flush();
    const consumer = { lattice: tl.lattice, targetId: "messaging", iface: "wasmcloud:messaging/consumer", sourceId: "echo", timeoutMs: 5000 };
    const reply = (await invoke(nc, { ...consumer, fn: "request" }, CONSUMER.functions["request"]!, ["svc.time", enc.encode("ping"), 2000])) as { tag: string; val: { subject: string; body: Uint8Array } };
    assert.equal(reply.tag, "ok");
    assert.equal(dec.decode(reply.val.body), "pong:ping");
    responder.unsubscribe();
    const none = (await invoke(nc, { ...consumer, fn: "request" }, CONSUMER.functions["request"]!, ["svc.nobody", enc.encode("x"), 300])) as { tag: string; val: string };
    assert.equal(none.tag, "err", "no responder is an err value, not a trap");
    // a caller without a link is refused
    await assert.rejects(invoke(nc, { ...consumer, sourceId: "stranger", fn: "request" }, CONSUMER.functions["request"]!, ["svc.time", enc.encode("x"), 300]), /LINK_NOT_FOUND|no link/i);
  });

  test("a timer link calls the component at its interval, at least 3 times, and stops when the link is deleted", async () => {
    const wasm = await build(dir, "ticked", { "world.wit": TICK_WORLD, "timer.wit": TIMER_WIT }, TICK_JS);
    const ticks: { count: bigint; at: number }[] = [];
    serveInterfaces(nc, { lattice: tl.lattice, targetId: "sink" }, [
      {
        type: { name: "test:tick/sink@0.1.0", resources: [], functions: { note: t.func([["count", t.u64]]) } },
        handlers: { note: (count: bigint) => void ticks.push({ count, at: Date.now() }) },
      },
    ]);
    await tl.client.putLink({ source_id: "ticked", target: "sink", wit_namespace: "test", wit_package: "tick", interfaces: ["sink"] });
    await tl.client.scaleComponent(tl.hosts[0]!.id, { component_ref: wasm, component_id: "ticked", count: 1 });
    await waitFor(async () => (await tl.client.getInventory(tl.hosts[0]!.id)).components.some((c) => c.id === "ticked"), { timeoutMs: 30_000 });
    await start("timer", timerProvider());
    await tl.client.putConfig("every-200ms", { interval_ms: "200" });
    const link = { source_id: "timer", target: "ticked", wit_namespace: "trellis", wit_package: "timer", interfaces: ["handler"], source_config: ["every-200ms"] };
    await tl.client.putLink(link);
    await waitFor(() => ticks.length >= 4, { timeoutMs: 20_000, message: "4 ticks" });
    const counts = ticks.map((x) => x.count);
    assert.deepEqual(counts.slice(0, 4), [1n, 2n, 3n, 4n]);
    const gaps = ticks.slice(1, 4).map((x, i) => x.at - ticks[i]!.at);
    assert.ok(gaps.every((g) => g >= 100 && g <= 1500), `about 200 ms apart: ${gaps.join(", ")}`);
    await tl.client.deleteLink({ source_id: "timer", wit_namespace: "trellis", wit_package: "timer" });
    await new Promise((r) => setTimeout(r, 300));
    const n = ticks.length;
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(ticks.length, n, "no tick after the link was deleted");
  });
});
