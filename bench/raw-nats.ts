/**
 * The BASELINE every other benchmark divides by: raw NATS request/reply between two processes
 * (this one and a responder child, `bench/raw-nats-responder.ts`), 16-byte payloads, no
 * Trellis code in the path.
 *
 *  serial:    one request in flight at a time: latency p50/p90/p99/mean (µs) and req/s, and the CPU per request of
 *             the requester (`bench`), the responder and nats-server (`serialCpu`, ./cpu.ts).
 *  pipelined: `inFlight` (default 32) requests outstanding: req/s.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { cpuPerRequest, cpuSnapshot, type CpuPerRequest } from "./cpu.ts";
import { measureThroughput, timeIterations, type LatencySummary, type ThroughputSummary } from "./harness.ts";

/** Options for {@link measureRawNats}. */
export interface RawNatsOptions {
  /** Measured serial requests. Default 5000. */
  requests?: number;
  /** Unmeasured warm-up requests (before each phase). Default 500. */
  warmup?: number;
  /** Measured requests in the pipelined phase. Default 20000. */
  pipelinedRequests?: number;
  /** Requests in flight in the pipelined phase. Default 32. */
  inFlight?: number;
  /** Request payload size in bytes. Default 16. */
  payloadBytes?: number;
  /** Per-request timeout in ms. Default 5000. */
  timeoutMs?: number;
}

/** Result of {@link measureRawNats}. */
export interface RawNatsResult {
  payloadBytes: number;
  serial: LatencySummary;
  /** CPU per request of the serial phase, per process: the cost of one raw round trip. */
  serialCpu: CpuPerRequest;
  pipelined: ThroughputSummary;
}

const RESPONDER = path.join(path.dirname(fileURLToPath(import.meta.url)), "raw-nats-responder.ts");

/**
 * Measure raw NATS request/reply against a responder in a separate process.
 *
 * @param url NATS server URL.
 * @throws if the responder cannot be started within 10 s or a request fails.
 */
export async function measureRawNats(url: string, opts: RawNatsOptions = {}): Promise<RawNatsResult> {
  const requests = opts.requests ?? 5000;
  const warmup = opts.warmup ?? 500;
  const pipelinedRequests = opts.pipelinedRequests ?? 20_000;
  const inFlight = opts.inFlight ?? 32;
  const payloadBytes = opts.payloadBytes ?? 16;
  const timeout = opts.timeoutMs ?? 5000;
  const subject = `bench.raw.${process.pid}.${Date.now().toString(36)}`;

  const child = spawn(process.execPath, [RESPONDER, url, subject], { stdio: ["pipe", "pipe", "inherit"] });
  const nc = await connect({ servers: url });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("raw-nats responder not ready within 10 s")), 10_000);
      let out = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (c: string) => {
        out += c;
        if (out.includes("ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`raw-nats responder exited with ${String(code)}`));
      });
    });

    const payload = new Uint8Array(payloadBytes).fill(0x71);
    const request = async (): Promise<void> => {
      const m = await nc.request(subject, payload, { timeout });
      if (m.data.length !== 16) throw new Error(`unexpected reply size ${m.data.length}`);
    };
    for (let i = 0; i < warmup; i++) await request();
    const before = cpuSnapshot();
    const serial = await timeIterations(requests, request);
    const serialCpu = cpuPerRequest(before, cpuSnapshot(), requests);
    const pipelined = await measureThroughput(pipelinedRequests, inFlight, request, { warmup });
    return { payloadBytes, serial, serialCpu, pipelined };
  } finally {
    await nc.close();
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  }
}
