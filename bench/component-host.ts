/**
 * A component host in its own process for the component benchmarks: `node bench/component-host.ts NATS_URL LATTICE
 * CACHE_DIR`. Runs a ComponentRuntime with in-memory links/config, reads one JSON command per stdin line and answers
 * one JSON line on stdout: `{op:"start",ref,id,count?}`, `{op:"link",link}`, `{op:"rss"}`, `{op:"gc"}`, `{op:"exit"}`.
 * Answers `{ok:true,...}` or `{ok:false,error}`; prints `{"ready":true}` first.
 */
import { createInterface } from "node:readline";
import { connect } from "@nats-io/transport-node";
import { ComponentRuntime } from "../src/component/index.ts";
import { Admission } from "../src/policy/admission.ts";
import { parseLink, type Link } from "../src/core/link.ts";
import { silentLogger } from "../src/core/logger.ts";
import type { LinkChange } from "../src/core/ports.ts";

const [url, lattice, cacheDir] = process.argv.slice(2);
if (!url || !lattice || !cacheDir) {
  process.stderr.write("usage: node bench/component-host.ts NATS_URL LATTICE CACHE_DIR\n");
  process.exit(2);
}
const links: Link[] = [];
const listeners = new Set<(c: LinkChange) => void>();
const nc = await connect({ servers: url });
const runtime = await ComponentRuntime.create({
  nc,
  lattice,
  hostId: "NBENCHHOST",
  logger: silentLogger,
  // references come from the parent benchmark on stdin, not from the lattice
  admission: new Admission({ allowFileLoad: true }),
  rpcTimeoutMs: 10_000,
  cacheDir,
  links: {
    sync: async () => {},
    linksFrom: (id) => links.filter((l) => l.source_id === id),
    linksTo: (id) => links.filter((l) => l.target === id),
    onChange: (f) => {
      listeners.add(f);
      return () => listeners.delete(f);
    },
  },
  config: { resolve: async () => ({}), current: () => ({}), onChange: () => () => undefined },
  events: { publish: () => undefined },
  specs: { setUrl: async () => undefined },
  policy: { maxWorkers: Number(process.env["BENCH_WORKERS"] ?? 2) },
});
const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
out({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as { op: string; ref?: string; id?: string; count?: number; link?: unknown };
  try {
    if (cmd.op === "start") {
      const t0 = performance.now();
      await runtime.start(cmd.ref!, cmd.id!, { count: cmd.count ?? 1 });
      out({ ok: true, ms: performance.now() - t0 });
    } else if (cmd.op === "link") {
      const l = parseLink(cmd.link);
      links.push(l);
      for (const f of listeners) f({ sourceId: l.source_id, added: [l], removed: [], links: links.filter((x) => x.source_id === l.source_id) });
      out({ ok: true });
    } else if (cmd.op === "rss") {
      out({ ok: true, rss: process.memoryUsage().rss });
    } else if (cmd.op === "exit") {
      out({ ok: true });
      break;
    } else out({ ok: false, error: `unknown op ${cmd.op}` });
  } catch (err) {
    out({ ok: false, error: (err as Error).message });
  }
}
await runtime.close();
await nc.close();
process.exit(0);
