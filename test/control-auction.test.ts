/**
 * Control interface completeness (issue 14 item 2): `component.auction` and `provider.auction` answered as wasmCloud
 * 1.x does (reference §1.4: only hosts whose labels match every constraint and that do not run the id bid; the others
 * stay silent), `trellis start component|provider` without `--host-id` placing through the auction, and every
 * subject Trellis does not implement getting an immediate "unsupported subject" error envelope (docs/control-interface.md).
 * Real nats-server, real hosts (component runtime + provider supervisor); adder.wasm found through
 * test/support/components.ts (`TRELLIS_FIXTURES_DIR`; bytecodealliance/jco, Apache-2.0 WITH LLVM-exception) — the
 * component placement test skips when it is absent.
 */
import { runCliEntry, writeCliEntry, type CliResult } from "./support/cli.ts";
import { fixture, needsFixtures, RUNTIME_TEST_LOADS } from "./support/components.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { defaultWorkloads } from "../src/host/default-workloads.ts";
import { ctl, ctlRoot } from "../src/core/subjects.ts";
import type { CtlResponse } from "../src/core/envelope.ts";
import type { Host } from "../src/host/host.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";
import { waitFor } from "../src/testing/index.ts";

const ADDER = fixture("adder.wasm");

describe("auctions and unsupported subjects", () => {
  let t: TestLattice;
  let entry: string;
  let east: Host;
  let west: Host;
  let nc: NatsConnection;

  const trellis = (...args: string[]): Promise<CliResult> => runCliEntry(entry, { natsUrl: t.nats.url, lattice: t.lattice }, args, 60_000);

  /** Every reply to one request, collected for `ms`. */
  const allReplies = async (subject: string, body: unknown, ms = 600): Promise<{ replies: CtlResponse[]; firstMs: number }> => {
    const t0 = Date.now();
    let firstMs = -1;
    const replies: CtlResponse[] = [];
    const it = await nc.requestMany(subject, body === undefined ? new Uint8Array() : JSON.stringify(body), { strategy: "timer", maxWait: ms });
    for await (const m of it) {
      if (firstMs < 0) firstMs = Date.now() - t0;
      replies.push(m.json<CtlResponse>());
    }
    return { replies, firstMs };
  };

  before(async () => {
    t = await testLattice();
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-auction-"));
    entry = await writeCliEntry(dir, [["component.ts", "registerComponentCommands"], ["provider.ts", "registerProviderCommands"]]);
    east = await t.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, labels: { zone: "east", tier: "gold" }, workloads: defaultWorkloads() });
    west = await t.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, labels: { zone: "west" }, workloads: defaultWorkloads() });
    nc = await t.connection();
  });
  after(async () => {
    await t?.close();
  });

  test("component.auction: every matching host bids with the wasmCloud ack shape; others stay silent", async () => {
    const all = await t.client.auctionComponent({ component_ref: "file:///x.wasm", component_id: "adder", constraints: {} });
    assert.deepEqual(all.map((a) => a.host_id).sort(), [east.id, west.id].sort());
    const eastOnly = await t.client.auctionComponent({ component_ref: "file:///x.wasm", component_id: "adder", constraints: { zone: "east" } });
    assert.deepEqual(eastOnly, [{ component_ref: "file:///x.wasm", component_id: "adder", host_id: east.id, constraints: { zone: "east" } }]);
    const both = await t.client.auctionComponent({ component_ref: "r", component_id: "adder", constraints: { zone: "east", tier: "silver" } }, { waitMs: 1000 });
    assert.deepEqual(both, []);
    assert.deepEqual(await t.client.auctionComponent({ component_ref: "r", component_id: "adder", constraints: { zone: "north" } }, { waitMs: 1000 }), []);
    // the raw envelope, as wash reads it
    const { replies } = await allReplies(ctl.componentAuction(t.lattice), { component_ref: "r", component_id: "adder", constraints: { zone: "west" } });
    assert.deepEqual(replies, [{ success: true, message: "", response: { component_ref: "r", component_id: "adder", host_id: west.id, constraints: { zone: "west" } } }]);
  });

  test("provider.auction: constraints match labels; a host already running the provider id does not bid", async () => {
    const acks = await t.client.auctionProvider({ provider_ref: "kv-memory", provider_id: "kv", constraints: { zone: "west" } });
    assert.deepEqual(acks, [{ host_id: west.id, provider_ref: "kv-memory", provider_id: "kv", constraints: { zone: "west" } }]);
    await t.client.startProvider(west.id, { provider_id: "kv", provider_ref: "kv-memory" });
    await waitFor(() => west.providers?.inventory().some((p) => p.id === "kv"), { message: "provider kv in west's inventory" });
    const after = await t.client.auctionProvider({ provider_ref: "kv-memory", provider_id: "kv", constraints: {} });
    assert.deepEqual(after.map((a) => a.host_id), [east.id]);
    await t.client.stopProvider(west.id, "kv");
  });

  test("a malformed auction request gets an error envelope, not silence", async () => {
    await assert.rejects(t.client.request(ctl.providerAuction(t.lattice), { provider_id: "kv" }).then((r) => {
      if (!r.success) throw new Error(`${r.error?.code}: ${r.message}`);
    }), /INVALID_ARGUMENT: constraints is required/);
  });

  test("trellis start provider without --host-id places through the auction, honouring --constraint", async () => {
    let r = await trellis("start", "provider", "kv-memory", "kv2", "--constraint", "zone=east", "--constraint", "tier=gold", "--output", "json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { host_id: string }).host_id, east.id);
    r = await trellis("start", "provider", "kv-memory", "kv3", "--constraint", "zone=north");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no host with labels zone=north in lattice .* can run provider kv3/);
  });

  test("trellis start component without --host-id places through the auction, honouring --constraint", { skip: needsFixtures("adder.wasm") }, async () => {
    let r = await trellis("start", "component", ADDER, "adder", "--constraint", "zone=west", "--output", "json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { host_id: string }).host_id, west.id);
    // adder runs on west already: west does not bid again; east does
    r = await trellis("start", "component", ADDER, "adder", "--output", "json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { host_id: string }).host_id, east.id);
  });

  test("every subject Trellis does not implement gets one immediate unsupported-subject error envelope", async () => {
    const root = ctlRoot(t.lattice);
    // claims.get is implemented (src/claims): one successful answer, not the catch-all
    const claims = await allReplies(`${root}.claims.get`, {});
    assert.equal(claims.replies.length, 1, `claims.get: exactly one reply, got ${JSON.stringify(claims.replies)}`);
    assert.equal(claims.replies[0]?.success, true);
    const subjects = [
      `${root}.registry.put`,
      `${root}.nosuchnoun`,
      `${root}.nosuch.verb`,
      `${root}.component.nosuchverb`,
      `${root}.host.get`,
      `${root}.claims.get.extra`,
      `${root}.link.put.extra`,
      `${root}.config.put.a.b`,
      `${root}.nosuch.verb.arg.more`,
      `${root}.host.get.${east.id}.extra`,
      `${root}.component.nosuchverb.${east.id}`,
      `${root}.component.auction.${east.id}`,
    ];
    for (const s of subjects) {
      const { replies, firstMs } = await allReplies(s, {});
      assert.equal(replies.length, 1, `${s}: exactly one reply, got ${JSON.stringify(replies)}`);
      assert.equal(replies[0]?.success, false, s);
      assert.equal(replies[0]?.message, "unsupported subject", s);
      assert.equal(replies[0]?.error?.code, "INVALID_ARGUMENT", s);
      assert.ok(firstMs < 500, `${s}: answered in ${firstMs} ms`);
    }
    // served subjects are answered once, by their handler, not also by the catch-all
    const ping = await allReplies(`${root}.host.ping`, undefined);
    assert.equal(ping.replies.length, 2);
    assert.ok(ping.replies.every((r) => r.success));
    const links = await allReplies(`${root}.link.get`, undefined);
    assert.equal(links.replies.length, 1);
    assert.equal(links.replies[0]?.success, true);
    // a host-addressed request to a host that does not exist still fails at once (NATS no-responders)
    const t0 = Date.now();
    await assert.rejects(t.client.getInventory("NXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"), (e: { code?: string }) => e.code === "NO_RESPONDERS");
    assert.ok(Date.now() - t0 < 500);
  });
});
