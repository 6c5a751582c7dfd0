/**
 * Benchmark "component-calls" (issue 3): calls through the component runtime against raw NATS request/reply measured
 * in the same run (bench/raw-nats.ts, two processes).
 *
 * The runtime runs in its own process (bench/component-host.ts), like a host. Measured from this process:
 * - export calls over the lattice: `docs:adder/add.add` (adder.wasm) and `wasi:http/incoming-handler.handle`
 *   (http_hello_world_rust.wasm), one in flight, and hello world with 32 in flight (count 32);
 * - import round trip: a WAT guest whose export calls an imported `ping(u32) -> u32` 3,000 times in a loop; the import
 *   is routed by a link to a target served in this process. Each ping's round trip is the time between two
 *   consecutive arrivals at the target (reply travels back, the guest resumes and makes the next call).
 * Raw NATS is measured before and after; ratios use the mean of the two p50s. CPU per call of every process (bench/cpu.ts:
 * `component-host`, this process = `bench` holding the ping target, nats-server) for the import loop and the pipelined
 * hello; `importRoundTripCpu` divides by a raw round trip's CPU (the mean of the two raw runs).
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { parse } from "@bytecodealliance/jco";
import { invoke, invokeHttp, serveInterfaces, t } from "../src/invocation/index.ts";
import { uniqueLattice } from "../src/testing/index.ts";
import { cpuPerRequest, cpuSnapshot, measureCpu } from "./cpu.ts";
import { measureThroughput, ratio, summarize, timeIterations } from "./harness.ts";
import { measureRawNats } from "./raw-nats.ts";
import { ComponentHostProcess, FIXTURES, PINGER_WAT } from "./component-support.ts";

export default async function componentCalls(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const rawBefore = await measureRawNats(ctx.natsUrl, { requests: 5000, pipelinedRequests: 20_000 });
  const lattice = uniqueLattice("bench");
  const dir = await mkdtemp(path.join(tmpdir(), "trellis-bench-"));
  const pinger = path.join(dir, "pinger.wasm");
  await writeFile(pinger, await parse(PINGER_WAT));
  const host = await ComponentHostProcess.start(ctx.natsUrl, lattice, path.join(dir, "cache"));
  const nc = await connect({ servers: ctx.natsUrl });
  try {
    // the import target, in this process
    let arrivals: number[] = [];
    serveInterfaces(nc, { lattice, targetId: "pingtarget" }, [
      {
        type: { name: "test:bench/ping@0.1.0", resources: [], functions: { ping: t.func([["x", t.u32]], t.u32) } },
        handlers: {
          ping: (x: number) => {
            arrivals.push(performance.now());
            return x;
          },
        },
      },
    ]);
    await nc.flush();
    await host.cmd({ op: "start", ref: path.join(FIXTURES, "adder.wasm"), id: "adder" });
    await host.cmd({ op: "start", ref: path.join(FIXTURES, "http_hello_world_rust.wasm"), id: "hello", count: 32 });
    await host.cmd({ op: "link", link: { source_id: "pinger", target: "pingtarget", wit_namespace: "test", wit_package: "bench", interfaces: ["ping"] } });
    await host.cmd({ op: "start", ref: pinger, id: "pinger" });

    const add = t.func([["x", t.u32], ["y", t.u32]], t.u32);
    const addCall = { lattice, targetId: "adder", iface: "docs:adder/add", fn: "add", timeoutMs: 5000 };
    const adder = await timeIterations(5000, () => invoke(nc, addCall, add, [2, 3]), { warmup: 500 });
    const req = { method: "GET", pathWithQuery: "/", headers: [], body: new Uint8Array(0) };
    const hello = await timeIterations(5000, () => invokeHttp(nc, lattice, "hello", req), { warmup: 500 });
    await measureThroughput(1000, 32, () => invokeHttp(nc, lattice, "hello", req));
    const { value: helloPipelined, cpu: helloPipelinedCpu } = await measureCpu(() => measureThroughput(20_000, 32, () => invokeHttp(nc, lattice, "hello", req)), 20_000);

    const run = t.func([["n", t.u32]], t.u32);
    const runCall = { lattice, targetId: "pinger", iface: "test:bench/api", fn: "run", timeoutMs: 60_000 };
    await invoke(nc, runCall, run, [500]);
    const deltas: number[] = [];
    const cpuBefore = cpuSnapshot();
    for (let round = 0; round < 3; round++) {
      arrivals = [];
      await invoke(nc, runCall, run, [3000]);
      for (let i = 1; i < arrivals.length; i++) deltas.push((arrivals[i]! - arrivals[i - 1]!) * 1000);
    }
    const importRtCpu = cpuPerRequest(cpuBefore, cpuSnapshot(), 9000);
    const importRt = summarize(deltas);

    const rawAfter = await measureRawNats(ctx.natsUrl, { requests: 5000, pipelinedRequests: 20_000 });
    const mean = (x: number, y: number) => Math.round(((x + y) / 2) * 10) / 10;
    const rawP50 = mean(rawBefore.serial.p50Us, rawAfter.serial.p50Us);
    const rawP99 = mean(rawBefore.serial.p99Us, rawAfter.serial.p99Us);
    const rawPipe = (rawBefore.pipelined.reqPerSec + rawAfter.pipelined.reqPerSec) / 2;
    return {
      raw: { before: rawBefore, after: rawAfter, p50Us: rawP50, p99Us: rawP99, pipelinedReqPerSec: rawPipe },
      exportAdder: adder,
      exportHello: hello,
      exportHelloPipelined32: { ...helloPipelined, cpu: helloPipelinedCpu },
      importRoundTrip: { ...importRt, cpu: importRtCpu },
      ratios: {
        exportAdderP50: ratio(adder.p50Us, rawP50),
        exportAdderP99: ratio(adder.p99Us, rawP99),
        exportHelloP50: ratio(hello.p50Us, rawP50),
        exportHelloP99: ratio(hello.p99Us, rawP99),
        exportHelloPipelinedThroughput: ratio(helloPipelined.reqPerSec, rawPipe),
        importRoundTripP50: ratio(importRt.p50Us, rawP50),
        importRoundTripP99: ratio(importRt.p99Us, rawP99),
        importRoundTripCpu: ratio(importRtCpu.totalUs, mean(rawBefore.serialCpu.totalUs, rawAfter.serialCpu.totalUs)),
      },
    };
  } finally {
    await nc.close();
    await host.stop();
  }
}
