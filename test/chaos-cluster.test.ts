/**
 * NATS node loss on a 3-node cluster (issue 9 item 5, ADR 0015, docs/nats-cluster.md, docs/reliability.md "NATS node
 * loss"). Real nats-server 2.9.10 processes (src/testing/nats-cluster.ts), real hosts: host A (component runtime,
 * connected to n0 only) runs the counter guest (test/support/providers.ts), host B (provider supervisor, connected to
 * n1 only) runs kv-memory; the component calls the provider through a link while a caller invokes it every 50 ms.
 *
 * The node killed is chosen deliberately: the leader of the `LATTICEDATA_` and `CONFIGDATA_` streams is moved (leader
 * step-down) to n2, the node no host is connected to, and n2 is killed with SIGKILL, so every lattice-data operation
 * needs a new stream leader elected on the survivors. Then: no link or config is lost; every control request is
 * answered (failures are `JETSTREAM_UNAVAILABLE` envelopes, never silence); reads succeed again within 5 s; writes
 * succeed once nats-server has elected a new stream leader (4–9 s raft election timeout on 2.9.10); calls resume. A
 * second test kills another node (no quorum left): writes get a `JETSTREAM_UNAVAILABLE` envelope before the client's
 * 2 s timeout, reads still answer. A third test restarts the nodes and kills host A's own node: host A reconnects to
 * a member it learned from the server INFO and answers again, and calls resume.
 *
 * Figures are printed as one `CHAOS_FIGURES {json}` line (recorded in docs/reliability.md).
 */
import { RUNTIME_TEST_LOADS } from "./support/components.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Host } from "../src/host/host.ts";
import { CtlClient } from "../src/control/client.ts";
import { componentRuntime } from "../src/component/index.ts";
import { providerSupervisor } from "../src/provider/supervisor.ts";
import { silentLogger } from "../src/core/logger.ts";
import { configDataBucket, ctl, latticeDataBucket } from "../src/core/subjects.ts";
import type { Link } from "../src/core/link.ts";
import { invokeJson } from "../src/invocation/index.ts";
import { startTestNatsCluster, type TestNatsCluster } from "../src/testing/nats-cluster.ts";
import { uniqueLattice, waitFor } from "../src/testing/index.ts";
import { buildCounterGuest, FAST_SUPERVISION } from "./support/providers.ts";

const LINKS = 40;
const CONFIGS = 20;

describe("NATS node loss on a 3-node JetStream cluster", () => {
  let cluster: TestNatsCluster;
  const lattice = uniqueLattice("chaos");
  let hostA: Host;
  let hostB: Host;
  let client: CtlClient;
  let caller: NatsConnection;
  let killed: string;

  before(async () => {
    const wasm = await buildCounterGuest();
    cluster = await startTestNatsCluster({ size: 3 });
    const [n0, n1] = cluster.nodes;
    hostA = await Host.create({ ...RUNTIME_TEST_LOADS, natsUrl: n0!.url, lattice, logger: silentLogger, cacheDir: "/tmp/trellis-test-cache", workloads: { components: componentRuntime() } });
    hostB = await Host.create({ natsUrl: n1!.url, lattice, logger: silentLogger, cacheDir: "/tmp/trellis-test-cache", workloads: { providers: providerSupervisor(FAST_SUPERVISION) } });
    // the control client is connected to the nodes that stay up, so that what it measures is the hosts' answers
    client = await CtlClient.connect({ natsUrl: `${n0!.url},${n1!.url}`, lattice, timeoutMs: 2000 });
    caller = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    await client.startProvider(hostB.id, { provider_id: "kv", provider_ref: "kv-memory" });
    await client.putLink({ source_id: "counter", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"] });
    await client.scaleComponent(hostA.id, { component_ref: wasm, component_id: "counter", count: 4 });
    await waitFor(async () => (await client.getInventory(hostA.id)).components.some((c) => c.id === "counter"), { timeoutMs: 30_000, message: "counter running" });
    await waitFor(async () => (await client.getInventory(hostB.id)).providers.some((p) => p.id === "kv" && p.status === "running"), { timeoutMs: 15_000, message: "kv healthy" });
  });

  after(async () => {
    await Promise.allSettled([hostA?.stop(2000), hostB?.stop(2000)]);
    await client?.close().catch(() => undefined);
    await caller?.close().catch(() => undefined);
    await cluster?.stop();
  });

  test("kill -9 of the lattice streams' leader: 0 links or configs lost, every request answered, reads back within 5 s, writes after the election, calls resume", async () => {
    const jsm = await jetstreamManager(caller);
    const streams = [`KV_${latticeDataBucket(lattice)}`, `KV_${configDataBucket(lattice)}`];
    for (const s of streams) {
      const info = await jsm.streams.info(s);
      assert.equal(info.config.num_replicas, 3, `${s} is created with 3 replicas on a 3-node cluster`);
    }
    // the data that must survive
    for (let i = 0; i < CONFIGS; i++) await client.putConfig(`cfg-${i}`, { i: String(i) });
    for (let i = 0; i < LINKS; i++) {
      await client.putLink({ source_id: `src-${i}`, target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"], target_config: [`cfg-${i % CONFIGS}`] });
    }
    const linksBefore = (await client.getLinks()).length;
    assert.equal(linksBefore, LINKS + 1);

    // move both streams' leaders to n2, the node no host is connected to (JetStream leader step-down), and kill it
    const leaderOf = async (s: string) => (await jsm.streams.info(s)).cluster?.leader;
    for (const s of streams) {
      for (let i = 0; i < 12 && (await leaderOf(s)) !== "n2"; i++) {
        await caller.request(`$JS.API.STREAM.LEADER.STEPDOWN.${s}`, new Uint8Array(), { timeout: 2000 }).catch(() => undefined);
        await waitFor(async () => (await leaderOf(s)) !== undefined, { timeoutMs: 10_000, message: `${s} leader` });
      }
    }
    const leaders = await Promise.all(streams.map(leaderOf));
    killed = leaders[0] ?? "n2";

    // light load: one call every 50 ms, 1 s timeout each
    const calls: { at: number; ok: boolean }[] = [];
    let loading = true;
    const load = (async () => {
      while (loading) {
        const at = Date.now();
        const ok = await invokeJson(caller, { lattice, targetId: "counter", iface: "test:counter/api", fn: "hit", timeoutMs: 1000 }, ["k"]).then(
          () => true,
          () => false,
        );
        calls.push({ at, ok });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await new Promise((r) => setTimeout(r, 500));

    const t0 = Date.now();
    let readRecoveryMs: number, writeRecoveryMs: number, linkGetMs: number, linkPutMs: number, configPutMs: number, configGetMs: number;
    let firstOkAfter: { at: number; ok: boolean };
    const errorsSeen: Record<string, number> = {};
    let slowestErrorMs = 0;
    try {
      await cluster.kill(killed);

      // control operations: repeat until each answers with success
      const untilOk = async <T>(what: string, op: () => Promise<T>): Promise<number> => {
        for (;;) {
          const a0 = Date.now();
          try {
            await op();
            return Date.now() - t0;
          } catch (err) {
            const code = (err as { code?: string }).code ?? "?";
            slowestErrorMs = Math.max(slowestErrorMs, Date.now() - a0);
            errorsSeen[`${what}:${code}`] = (errorsSeen[`${what}:${code}`] ?? 0) + 1;
            if (Date.now() - t0 > 30_000) throw err;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      };
      [linkGetMs, linkPutMs, configPutMs, configGetMs] = await Promise.all([
        untilOk("link.get", () => client.getLinks()),
        untilOk("link.put", () => client.putLink({ source_id: "after-kill", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] })),
        untilOk("config.put", () => client.putConfig("after-kill", { a: "1" })),
        untilOk("config.get", () => client.getConfig("cfg-0")),
      ]);
      readRecoveryMs = Math.max(linkGetMs, configGetMs);
      writeRecoveryMs = Math.max(linkPutMs, configPutMs);

      // calls resume
      firstOkAfter = await waitFor(() => calls.find((c) => c.at > t0 + 100 && c.ok), { timeoutMs: 15_000, message: "a successful call after the kill" });
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      loading = false;
      await load;
    }
    // nothing lost
    const links = await client.getLinks();
    const configs = await Promise.all(Array.from({ length: CONFIGS }, (_, i) => client.getConfig(`cfg-${i}`)));
    const lostLinks = LINKS - links.filter((l) => l.source_id.startsWith("src-")).length;
    const lostConfigs = configs.filter((c, i) => c?.["i"] !== String(i)).length;
    const during = calls.filter((c) => c.at >= t0);
    let maxGapMs = 0;
    let lastOk = t0;
    for (const c of during) {
      if (c.ok) {
        maxGapMs = Math.max(maxGapMs, c.at - lastOk);
        lastOk = c.at;
      }
    }
    const figures = {
      killed,
      stream_leaders_before: leaders,
      host_a_node: "n0",
      host_b_node: "n1",
      links: links.length,
      lost_links: lostLinks,
      lost_configs: lostConfigs,
      read_recovery_ms: readRecoveryMs,
      write_recovery_ms: writeRecoveryMs,
      slowest_error_reply_ms: slowestErrorMs,
      link_get_ms: linkGetMs,
      link_put_ms: linkPutMs,
      config_put_ms: configPutMs,
      config_get_ms: configGetMs,
      errors_while_recovering: errorsSeen,
      calls_after_kill: during.length,
      failed_calls_after_kill: during.filter((c) => !c.ok).length,
      first_ok_call_after_kill_ms: firstOkAfter.at - t0,
      longest_gap_between_ok_calls_ms: maxGapMs,
    };
    process.stdout.write(`CHAOS_FIGURES ${JSON.stringify(figures)}\n`);
    assert.equal(lostLinks, 0);
    assert.equal(lostConfigs, 0);
    assert.ok(links.some((l) => l.source_id === "after-kill"));
    assert.deepEqual(await client.getConfig("after-kill"), { a: "1" });
    // reads answer within 5 s — in fact they do not wait for the election (≥ 4 s on 2.9.10): replicas answer them
    assert.ok(readRecoveryMs < 2500, `link.get and config.get succeeded again after ${readRecoveryMs} ms`);
    // writes need a new stream leader: nats-server 2.9.10 elects one after 4–9 s (raft election timeout, not
    // configurable); until then every write is answered with an error envelope, never silence
    assert.ok(writeRecoveryMs < 12_000, `link.put and config.put succeeded again after ${writeRecoveryMs} ms`);
    for (const k of Object.keys(errorsSeen)) assert.match(k, /:JETSTREAM_UNAVAILABLE$/, `every failed attempt was a JETSTREAM_UNAVAILABLE envelope: ${JSON.stringify(errorsSeen)}`);
    assert.ok(slowestErrorMs < 2000, `error replies came within ${slowestErrorMs} ms`);
    assert.ok(firstOkAfter.at - t0 < 5000);
  });

  test("with JetStream unavailable (no quorum) writes get a JETSTREAM_UNAVAILABLE envelope before the client's timeout; reads still answer", async () => {
    // two of three nodes down: the streams have no quorum; host A's node n0 stays
    const second = ["n1", "n2"].find((n) => n !== killed && cluster.nodes.find((x) => x.name === n)?.running) ?? "n1";
    // Stall every host's watch of the lattice data (its ordered consumer is deleted; nats.js notices only after missed
    // 30 s heartbeats), then write a link the watches do not deliver, and lose quorum: link.get must still list it,
    // read from a replica by direct get (no new consumer can be created without a stream leader).
    const jsm = await jetstreamManager(caller);
    const stream = `KV_${latticeDataBucket(lattice)}`;
    for await (const c of jsm.consumers.list(stream)) await jsm.consumers.delete(stream, c.name);
    await client.putLink({ source_id: "while-stalled", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] });
    await waitFor(async () => {
      const info = await jsm.streams.info(stream);
      // the node killed before is listed as a replica that is not current (nats-server 2.9.10 does not say offline)
      return (info.cluster?.replicas ?? []).filter((r) => r.name !== killed).every((r) => r.current && (r.lag ?? 0) === 0);
    }, { timeoutMs: 5000, message: "the replicas hold the link written while the watches stall" });
    await cluster.kill(second);
    const direct = await CtlClient.connect({ natsUrl: cluster.nodes[0]!.url, lattice, timeoutMs: 2000 });
    try {
      // wait until the host's connection and the streams have noticed
      await new Promise((r) => setTimeout(r, 1500));
      const figures: Record<string, number> = {};
      for (const [what, subject, body] of [
        ["link.put", ctl.linkPut(lattice), { source_id: "noquorum", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] }],
        ["config.put", ctl.configPut(lattice, "noquorum"), { a: "1" }],
        ["config.del", ctl.configDel(lattice, "cfg-1"), undefined],
      ] as const) {
        const t0 = Date.now();
        const r = await direct.request(subject, body, 2000);
        figures[what] = Date.now() - t0;
        assert.equal(r.success, false, `${what} cannot succeed without quorum: ${JSON.stringify(r)}`);
        assert.equal(r.error?.code, "JETSTREAM_UNAVAILABLE", `${what}: ${JSON.stringify(r)}`);
        assert.match(r.message, /JetStream/);
        assert.ok(figures[what]! < 2000);
      }
      // reads are answered from a replica without quorum (JetStream direct get), quickly
      for (const [what, subject] of [["link.get", ctl.linkGet(lattice)], ["config.get", ctl.configGet(lattice, "cfg-2")]] as const) {
        const t0 = Date.now();
        const r = await direct.request(subject, undefined, 2000);
        figures[what] = Date.now() - t0;
        assert.equal(r.success, true, `${what}: ${JSON.stringify(r).slice(0, 300)}`);
        if (what === "link.get") {
          assert.ok((r.response as Link[]).some((l) => l.source_id === "while-stalled"), "the link written while the watches stalled is listed");
        }
      }
      process.stdout.write(`CHAOS_NOQUORUM_FIGURES ${JSON.stringify(figures)}\n`);
    } finally {
      await direct.close();
    }
  });

  test("kill -9 of a host's own node: the host reconnects to another member and answers again; calls resume", async () => {
    // bring the cluster back to 3 nodes first
    for (const n of cluster.nodes) if (!n.running) await cluster.restart(n.name);
    await cluster.waitJetStream();
    await waitFor(async () => (await client.getLinks()).length > 0 && (await client.putConfig("healed", { a: "1" })) !== "", { timeoutMs: 20_000, message: "lattice data writable again" });
    const call = () => invokeJson(caller, { lattice, targetId: "counter", iface: "test:counter/api", fn: "hit", timeoutMs: 1000 }, ["k"]);
    await waitFor(async () => (await call()) !== undefined, { timeoutMs: 15_000, message: "calls work before the kill" });
    // host A (component runtime) was given only n0's URL; it learned the others from the server INFO
    const t0 = Date.now();
    await cluster.kill("n0");
    const hostBackMs = await (async () => {
      for (;;) {
        try {
          await client.getInventory(hostA.id);
          return Date.now() - t0;
        } catch {
          if (Date.now() - t0 > 20_000) throw new Error("host A did not answer again within 20 s");
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    const callsBackMs = await (async () => {
      for (;;) {
        try {
          await call();
          return Date.now() - t0;
        } catch {
          if (Date.now() - t0 > 20_000) throw new Error("calls did not resume within 20 s");
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    process.stdout.write(`CHAOS_HOSTNODE_FIGURES ${JSON.stringify({ killed: "n0", host_answers_again_ms: hostBackMs, calls_resume_ms: callsBackMs })}\n`);
    assert.ok(hostBackMs < 5000, `host A answered again after ${hostBackMs} ms`);
    assert.ok(callsBackMs < 5000, `calls resumed after ${callsBackMs} ms`);
  });
});
