/**
 * Benchmark "policy-invocation" (issue 8 item 5; docs/security.md): the cost of per-invocation policy decisions once
 * cached. Two hosts in this process run adder.wasm; one has a policy service (`policyTopic`, a responder in this
 * process that permits everything), the other none. Serial `docs:adder/add.add` calls (5,000 after 500 warm-up) and
 * 32-in-flight throughput (20,000) on each, four rounds alternating which goes first; raw NATS request/reply is the baseline of the same run.
 * With the decision cached, a call pays one map lookup in the component's worker; the ratio policy/no-policy should
 * be about 1.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { componentRuntime } from "../src/component/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { Host } from "../src/host/host.ts";
import { invoke, t } from "../src/invocation/index.ts";
import { uniqueLattice } from "../src/testing/index.ts";
import { FIXTURES } from "./component-support.ts";
import { measureThroughput, ratio, timeIterations, type LatencySummary, type ThroughputSummary } from "./harness.ts";
import { measureRawNats } from "./raw-nats.ts";

const TOPIC = "bench.policy";

export default async function policyInvocation(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const raw = await measureRawNats(ctx.natsUrl, { requests: 5000, pipelinedRequests: 20_000 });
  const dir = await mkdtemp(path.join(tmpdir(), "trellis-bench-policy-"));
  const nc = await connect({ servers: ctx.natsUrl });
  let asked = 0;
  nc.subscribe(TOPIC, {
    callback: (_e, m) => {
      asked++;
      m.respond(JSON.stringify({ requestId: m.json<{ requestId: string }>().requestId, permitted: true }));
    },
  });
  await nc.flush();
  const hosts: Host[] = [];
  try {
    const start = async (policy: boolean) => {
      const lattice = uniqueLattice("bench");
      const host = await Host.create({
        natsUrl: ctx.natsUrl,
        lattice,
        logger: silentLogger,
        cacheDir: path.join(dir, "cache"),
        allowedPaths: [FIXTURES],
        workloads: { components: componentRuntime({ policy: { maxWorkers: 1 } }) },
        ...(policy ? { policyTopic: TOPIC } : {}),
      });
      hosts.push(host);
      const rt = host.components as unknown as { start(ref: string, id: string): Promise<void> };
      await rt.start(path.join(FIXTURES, "adder.wasm"), "adder");
      return { lattice, targetId: "adder", iface: "docs:adder/add", fn: "add", timeoutMs: 5000 };
    };
    const withPolicy = await start(true);
    const without = await start(false);
    const add = t.func([["x", t.u32], ["y", t.u32]], t.u32);
    const serial = async (call: typeof without) => timeIterations(5000, () => invoke(nc, call, add, [2, 3]), { warmup: 500 });
    const piped = async (call: typeof without) => measureThroughput(20_000, 32, () => invoke(nc, call, add, [2, 3]), { warmup: 1000 });
    const runs: { policy: LatencySummary; none: LatencySummary; policyPiped: ThroughputSummary; nonePiped: ThroughputSummary }[] = [];
    for (let i = 0; i < 4; i++) {
      // alternate which host goes first, so that warm-up and drift do not favour one
      if (i % 2 === 0) runs.push({ none: await serial(without), policy: await serial(withPolicy), nonePiped: await piped(without), policyPiped: await piped(withPolicy) });
      else {
        const policy = await serial(withPolicy);
        const none = await serial(without);
        const policyPiped = await piped(withPolicy);
        runs.push({ policy, none, policyPiped, nonePiped: await piped(without) });
      }
    }
    const mean = (f: (r: (typeof runs)[number]) => number) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
    const p50Policy = mean((r) => r.policy.p50Us);
    const p50None = mean((r) => r.none.p50Us);
    return {
      raw: { p50Us: raw.serial.p50Us, pipelinedReqPerSec: raw.pipelined.reqPerSec },
      runs,
      policyRequests: asked,
      ratios: {
        serialP50PolicyVsNone: ratio(p50Policy, p50None),
        pipelinedPolicyVsNone: ratio(mean((r) => r.policyPiped.reqPerSec), mean((r) => r.nonePiped.reqPerSec)),
        serialP50PolicyVsRawNats: ratio(p50Policy, raw.serial.p50Us),
        serialP50NoneVsRawNats: ratio(p50None, raw.serial.p50Us),
      },
    };
  } finally {
    await Promise.allSettled(hosts.map((h) => h.stop()));
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  }
}
