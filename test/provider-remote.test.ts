/**
 * Remote providers (issue 4 part 3): a provider started by hand — not by a host — with `--nats-url`, `--lattice` and
 * `--provider-id` loads the links that already exist (`link.get`), receives later puts and deletes, serves calls like
 * a spawned one, ignores hosts' shutdown requests, and stops on SIGTERM. Both providers, each as its own process.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { providerRpc } from "../src/core/subjects.ts";
import { invoke } from "../src/invocation/index.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { KEYVALUE_ATOMICS } from "trellis/provider-sdk";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { testLink, TRACE_PREFIX } from "./support/providers.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const handles = { toHandle: (_r: string, v: unknown) => new TextEncoder().encode(String(v)), fromHandle: (_r: string, h: Uint8Array) => new TextDecoder().decode(h) };

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats.stop();
});

const PROVIDERS: [string, string[]][] = [
  ["kv-memory (TypeScript SDK)", [process.execPath, path.join(ROOT, "providers", "kv-memory", "main.ts")]],
  ["python-kv (Python)", ["python3", path.join(ROOT, "providers", "python-kv", "provider.py")]],
];

for (const [title, cmd] of PROVIDERS) {
  describe(`remote provider: ${title}`, () => {
    let t: TestLattice;
    let child: ChildProcess;
    const traces: Record<string, unknown>[] = [];
    const id = "remotekv";

    before(async () => {
      t = await testLattice(nats);
      await t.startHost();
      await t.client.putConfig("trace", { trellis_conformance_trace: "stdout" });
      await t.client.putConfig("bucketcfg", { region: "eu" });
      await t.client.putLink(testLink({ source_id: "early", target: id, target_config: ["bucketcfg"] }));
      child = spawn(cmd[0]!, [...cmd.slice(1), "--provider-id", id, "--lattice", t.lattice, "--nats-url", t.nats.url, "--config", "trace"], { stdio: ["ignore", "pipe", "pipe"] });
      let buf = "";
      child.stdout!.setEncoding("utf8").on("data", (c: string) => {
        buf += c;
        for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.startsWith(TRACE_PREFIX)) traces.push(JSON.parse(line.slice(TRACE_PREFIX.length)) as Record<string, unknown>);
        }
      });
      child.stderr!.resume();
    });
    after(async () => {
      if (child.exitCode === null) child.kill("SIGKILL");
      await t.close();
    });

    const increment = (source: string) =>
      invoke(t.client.nc, { lattice: t.lattice, targetId: id, iface: KEYVALUE_ATOMICS.name, fn: "increment", sourceId: source, timeoutMs: 3000 }, KEYVALUE_ATOMICS.functions.increment!, ["b", "n", 1n], handles);

    test("loads existing links with link.get (config resolved), then serves the linked source", async () => {
      const put = await waitFor(() => traces.find((r) => r.event === "link_put" && r.source_id === "early"), { timeoutMs: 10_000, message: "the existing link" });
      assert.deepEqual(put.config, { region: "eu" });
      // the provider may trace its links a moment before its invocation subscription reaches the server
      const first = await waitFor(() => increment("early").catch((e: TrellisError) => (e.code === ErrorCode.NoResponders ? undefined : Promise.reject(e))), { message: "served" });
      assert.deepEqual(first, { tag: "ok", val: 1n });
      assert.deepEqual(await increment("early"), { tag: "ok", val: 2n });
    });

    test("later puts and deletes arrive; calls follow them", async () => {
      await assert.rejects(increment("late"), (e: TrellisError) => e.code === ErrorCode.LinkNotFound);
      await t.client.putLink(testLink({ source_id: "late", target: id }));
      await waitFor(() => traces.some((r) => r.event === "link_put" && r.source_id === "late"));
      assert.deepEqual(await increment("late"), { tag: "ok", val: 1n });
      await t.client.deleteLink({ source_id: "late", wit_namespace: "wasi", wit_package: "keyvalue" });
      await waitFor(() => traces.some((r) => r.event === "link_del" && r.source_id === "late"));
      // a provider may keep serving a deleted link for a short drain (docs/protocol.md P5, rule 4); then calls fail
      await waitFor(
        () => increment("late").then(
          () => false,
          (e: unknown) => e instanceof TrellisError && e.code === ErrorCode.LinkNotFound,
        ),
        { timeoutMs: 5000, intervalMs: 100, message: "LINK_NOT_FOUND once the deleted link has drained" },
      );
    });

    test("ignores shutdown requests from hosts; answers health; stops on SIGTERM", async () => {
      await assert.rejects(t.client.nc.request(providerRpc.shutdown(t.lattice, id), JSON.stringify({ host_id: t.hosts[0]!.id }), { timeout: 500 }));
      const h = await t.client.nc.request(providerRpc.health(t.lattice, id), new Uint8Array(), { timeout: 2000 });
      assert.equal((h.json() as { healthy: boolean }).healthy, true);
      child.kill("SIGTERM");
      const [code] = (await once(child, "exit")) as [number | null];
      assert.equal(code, 0);
    });
  });
}
