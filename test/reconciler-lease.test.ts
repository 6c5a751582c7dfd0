/**
 * The reconciler lease (src/app/reconciler/lease.ts, ADR 0012) against a real nats-server: of several contenders one
 * wins; a holder that dies (its connection gone, nothing released) is replaced after the TTL, never while it still
 * counts itself the holder; a holder that stops releases at once.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Lease, readLease } from "../src/app/reconciler/lease.ts";
import { startTestNats, uniqueLattice, waitFor, type TestNats } from "../src/testing/index.ts";

const TTL = 600;

void describe("reconciler lease", () => {
  let nats: TestNats;
  const conns: NatsConnection[] = [];
  const leases: Lease[] = [];
  const conn = async () => {
    const nc = await connect({ servers: nats.url });
    conns.push(nc);
    return nc;
  };
  const contender = async (lattice: string, id: string, nc?: NatsConnection, events?: string[]) => {
    const l = await Lease.open(nc ?? (await conn()), lattice, {
      holderId: id,
      ttlMs: TTL,
      onAcquired: () => events?.push(`${id} acquired`),
      onLost: (why) => events?.push(`${id} lost: ${why}`),
    });
    leases.push(l);
    await l.start();
    return l;
  };

  before(async () => {
    nats = await startTestNats();
  });
  after(async () => {
    await Promise.allSettled(leases.map((l) => l.stop()));
    await Promise.allSettled(conns.map((c) => c.close()));
    await nats.stop();
  });

  void test("three contenders: exactly one holds it, and keeps it while it renews", async () => {
    const lattice = uniqueLattice("lease");
    const ls = await Promise.all(["A", "B", "C"].map((id) => contender(lattice, id)));
    await waitFor(() => ls.some((l) => l.held), { timeoutMs: 5000, message: "a holder" });
    const holder = ls.findIndex((l) => l.held);
    // Sample for 3 TTLs: never two holders, never a change of holder.
    const until = Date.now() + 3 * TTL;
    while (Date.now() < until) {
      assert.equal(ls.filter((l) => l.held).length, 1, "exactly one holder");
      assert.equal(ls.findIndex((l) => l.held), holder, "the holder does not change while it renews");
      await new Promise((r) => setTimeout(r, 20));
    }
    const stored = await readLease(conns[0]!, lattice);
    assert.equal(stored?.holder, ["A", "B", "C"][holder]);
    assert.equal(stored?.term, 1);
  });

  void test("a holder that dies is replaced after the TTL, and stops counting itself holder before that", async () => {
    const lattice = uniqueLattice("lease");
    const events: string[] = [];
    const ncA = await connect({ servers: nats.url });
    const a = await contender(lattice, "A", ncA, events);
    await waitFor(() => a.held, { timeoutMs: 5000, message: "A holds" });
    const b = await contender(lattice, "B", undefined, events);
    await new Promise((r) => setTimeout(r, 2 * TTL));
    assert.equal(b.held, false, "B does not take a lease that is renewed");
    // A's connection dies (as its process would); A neither renews nor releases.
    const died = performance.now();
    await ncA.close();
    let aHeldWhenBWon: boolean | undefined;
    await waitFor(
      () => {
        if (b.held && aHeldWhenBWon === undefined) aHeldWhenBWon = a.held;
        return b.held;
      },
      { timeoutMs: 5 * TTL, intervalMs: 5, message: "B takes over" },
    );
    const takeoverMs = performance.now() - died;
    assert.equal(aHeldWhenBWon, false, "A had stepped down before B won");
    assert.ok(takeoverMs >= TTL * 0.5, `not before the lease could expire (${Math.round(takeoverMs)} ms)`);
    const stored = await readLease(conns[conns.length - 1]!, lattice);
    assert.equal(stored?.holder, "B");
    assert.equal(stored?.term, 2, "a takeover starts a new term");
    assert.ok(events.includes("A lost: renewal failed"), events.join(", "));
  });

  void test("a holder that stops releases the lease: another contender takes it within one check", async () => {
    const lattice = uniqueLattice("lease");
    const a = await contender(lattice, "A");
    await waitFor(() => a.held, { timeoutMs: 5000, message: "A holds" });
    const b = await contender(lattice, "B");
    await new Promise((r) => setTimeout(r, TTL / 2));
    const t0 = performance.now();
    await a.stop();
    assert.equal(a.held, false);
    await waitFor(() => b.held, { timeoutMs: 5 * TTL, intervalMs: 5, message: "B takes over" });
    assert.ok(performance.now() - t0 < TTL, `released lease taken in less than a TTL (${Math.round(performance.now() - t0)} ms)`);
  });

  void test("a holder whose lease was overwritten steps down at its next renewal", async () => {
    const lattice = uniqueLattice("lease");
    const events: string[] = [];
    const a = await contender(lattice, "A", undefined, events);
    await waitFor(() => a.held, { timeoutMs: 5000, message: "A holds" });
    // Someone writes the key behind A's back (an operator, or a contender that saw it stale).
    const { Kvm } = await import("@nats-io/kv");
    const kv = await new Kvm(conns[conns.length - 1]!).open(`TRELLIS_RECONCILER_${lattice}`);
    await kv.put("lease", JSON.stringify({ holder: "X", term: 9, acquired_at: "", renewed_at: "", ttl_ms: TTL }));
    await waitFor(() => !a.held, { timeoutMs: 2 * TTL, message: "A steps down" });
    assert.ok(events.includes("A lost: taken over"), events.join(", "));
  });
});
