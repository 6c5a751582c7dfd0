/**
 * Benchmark "link-put": `link put` → `linkdef_set` event, with the host in its own process (`trellis up`), against
 * raw NATS request/reply measured in the same run (issue 2).
 *
 * Each iteration puts a new link through the control client and waits for its `linkdef_set` event. Two shapes:
 * `perSource` puts each link on its own source (the usual case: a component has a handful of links), `oneSource`
 * puts 1,000 links on one source (its `COMPONENT_{id}` document grows to 1,000 links, rewritten on every put).
 * Reported: the reply latency of `link.put` and the latency to the event, p50/p99 in µs, and ratios to raw NATS
 * serial latency of the same run.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { CtlClient } from "../src/control/client.ts";
import { eventSubject } from "../src/core/subjects.ts";
import { uniqueLattice, waitFor } from "../src/testing/index.ts";
import { ratio, summarize } from "./harness.ts";
import { measureRawNats } from "./raw-nats.ts";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");

export default async function linkPut(ctx: { natsUrl: string }): Promise<Record<string, unknown>> {
  const n = 1000;
  const warmup = 50;
  const raw = await measureRawNats(ctx.natsUrl, { requests: 2000, pipelinedRequests: 2000 });
  const lattice = uniqueLattice("bench");
  const host = spawn(process.execPath, [path.join(ROOT, "bin/trellis.mjs"), "--nats-url", ctx.natsUrl, "--lattice", lattice, "up", "--no-nats-autostart", "--log-level", "warn"], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, TRELLIS_DATA_DIR: path.join(ROOT, ".cache", "bench-data") },
  });
  const client = await CtlClient.connect({ natsUrl: ctx.natsUrl, lattice, timeoutMs: 5000 });
  const nc = await connect({ servers: ctx.natsUrl });
  try {
    await waitFor(async () => (await client.getHosts(1000, 100)).length === 1, { timeoutMs: 20_000, message: "host up" });
    const seen = new Map<string, () => void>();
    nc.subscribe(eventSubject(lattice, "linkdef_set"), {
      callback: (_e, m) => {
        const name = (m.json<{ data: { name: string } }>()).data.name;
        seen.get(name)?.();
      },
    });
    await nc.flush();
    const measure = async (shape: string, source: (i: number) => string) => {
      const replyUs: number[] = [];
      const eventUs: number[] = [];
      const start = performance.now();
      for (let i = 0; i < n + warmup; i++) {
        const name = `${shape}${i}`;
        const event = new Promise<void>((r) => seen.set(name, r));
        const t0 = performance.now();
        await client.putLink({ source_id: source(i), target: "bench-target", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"], name });
        const t1 = performance.now();
        await event;
        const t2 = performance.now();
        seen.delete(name);
        if (i >= warmup) {
          replyUs.push((t1 - t0) * 1000);
          eventUs.push((t2 - t0) * 1000);
        }
      }
      const wall = (performance.now() - start) / 1000;
      const toEvent = summarize(eventUs, wall);
      return {
        reply: summarize(replyUs, wall),
        toEvent,
        ratioEventP50ToRawP50: ratio(toEvent.p50Us, raw.serial.p50Us),
        ratioEventP99ToRawP99: ratio(toEvent.p99Us, raw.serial.p99Us),
      };
    };
    const perSource = await measure("p", (i) => `source-${i}`);
    const oneSource = await measure("o", () => "one-source");
    return { links: n, rawNatsSerialP50Us: raw.serial.p50Us, rawNatsSerialP99Us: raw.serial.p99Us, perSource, oneSource };
  } finally {
    host.kill("SIGTERM");
    await client.close();
    await nc.close();
  }
}
