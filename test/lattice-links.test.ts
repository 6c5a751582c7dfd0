/**
 * Links as lattice data (issue 2, reference §2.3–§2.4, seed link-definitions.md): put before any party exists,
 * idempotent re-put, immutability, conflicts, deletes, concurrency, restart, and their events.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const kvLink = (over: Record<string, unknown> = {}) => ({
  source_id: "app",
  target: "kvredis",
  wit_namespace: "wasi",
  wit_package: "keyvalue",
  interfaces: ["store", "atomics"],
  ...over,
});

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TrellisError, `expected a TrellisError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, re);
    return true;
  });
}

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats.stop();
});

describe("links", () => {
  let t: TestLattice;
  before(async () => {
    t = await testLattice(nats);
    await t.startHost();
  });
  after(async () => t.close());

  test("link put before any party exists; identical re-put accepted; get returns it with defaults filled", async () => {
    const rec = await t.recordEvents();
    assert.equal(await t.client.putLink(kvLink()), "successfully set link");
    assert.match(await t.client.putLink(kvLink({ interfaces: ["atomics", "store"] })), /successfully set link/);
    const links = await t.client.getLinks();
    assert.deepEqual(links, [
      { ...kvLink(), interfaces: ["atomics", "store"], name: "default", source_config: [], target_config: [] },
    ]);
    await waitFor(() => rec.ofType("linkdef_set").length === 2, { message: "two linkdef_set events" });
    const data = rec.ofType("linkdef_set")[0]?.data as Record<string, unknown>;
    assert.equal(data.source_id, "app");
    assert.equal(data.target, "kvredis");
    assert.equal(rec.ofType("linkdef_set")[0]?.source, t.hosts[0]?.id);
  });

  test("a put that changes an existing link is rejected: links are immutable", async () => {
    const rec = await t.recordEvents();
    await rejects(t.client.putLink(kvLink({ interfaces: ["store"] })), ErrorCode.LinkImmutable, /immutable.*delete it and put it again/);
    await t.client.putConfig("redis-url", { url: "redis://127.0.0.1:6379" });
    await rejects(t.client.putLink(kvLink({ target_config: ["redis-url"] })), ErrorCode.LinkImmutable, /immutable/);
    await waitFor(() => rec.ofType("linkdef_set_failed").length === 2);
    assert.match(String(rec.ofType("linkdef_set_failed")[0]?.data.error), /immutable/);
    assert.equal((await t.client.getLinks()).length, 1, "the stored link is unchanged");
  });

  test("an overlapping interface to another target is rejected; disjoint interfaces or another link name are fine", async () => {
    await rejects(t.client.putLink(kvLink({ target: "kvmem", interfaces: ["store"] })), ErrorCode.LinkConflict, /different target.*different link name/);
    await t.client.putLink(kvLink({ target: "kvmem", interfaces: ["batch"] }));
    await t.client.putLink(kvLink({ target: "kvmem", name: "cache" }));
    assert.equal((await t.client.getLinks()).length, 3);
  });

  test("a link naming a config that does not exist is rejected", async () => {
    await rejects(t.client.putLink(kvLink({ source_id: "other", source_config: ["nope"] })), ErrorCode.NotFound, /Configuration nope not found/);
  });

  test("bad identifiers are rejected with the field named", async () => {
    await rejects(t.client.putLink(kvLink({ source_id: "" })), ErrorCode.InvalidArgument, /source_id must not be empty/);
    await rejects(t.client.putLink(kvLink({ target: "a.b" })), ErrorCode.InvalidArgument, /target .*unsafe/);
    await rejects(t.client.putLink(kvLink({ wit_package: "x".repeat(300) })), ErrorCode.InvalidArgument, /wit_package is too long/);
    await rejects(t.client.putLink(kvLink({ name: "a*" })), ErrorCode.InvalidArgument, /name .*unsafe/);
    await rejects(t.client.putLink(kvLink({ interfaces: [] })), ErrorCode.InvalidArgument, /interfaces must name/);
    await rejects(t.client.putLink(kvLink({ interfaces: ["st ore"] })), ErrorCode.InvalidArgument, /interfaces\[0\]/);
  });

  test("delete is idempotent, keyed by (source, namespace, package, name), optionally narrowed by target", async () => {
    const rec = await t.recordEvents();
    assert.equal(await t.client.deleteLink({ source_id: "app", wit_namespace: "wasi", wit_package: "keyvalue", target: "kvmem" }), "successfully deleted link");
    let links = await t.client.getLinks();
    assert.deepEqual(links.map((l) => `${l.name}->${l.target}`).sort(), ["cache->kvmem", "default->kvredis"]);
    await t.client.deleteLink({ source_id: "app", wit_namespace: "wasi", wit_package: "keyvalue" });
    await t.client.deleteLink({ source_id: "app", wit_namespace: "wasi", wit_package: "keyvalue" });
    await t.client.deleteLink({ source_id: "nobody", wit_namespace: "wasi", wit_package: "keyvalue" });
    links = await t.client.getLinks();
    assert.deepEqual(links.map((l) => `${l.name}->${l.target}`), ["cache->kvmem"]);
    await waitFor(() => rec.ofType("linkdef_deleted").length === 4);
    const withTarget = rec.ofType("linkdef_deleted").filter((e) => e.data.target !== undefined);
    assert.equal(withTarget.length, 2, "one event with target per removed link");
  });

  test("replace deletes and puts in one KV update", async () => {
    await t.client.putLink(kvLink({ source_id: "counter", target: "kvmem", interfaces: ["store"] }));
    await t.client.replaceLink(
      { source_id: "counter", wit_namespace: "wasi", wit_package: "keyvalue" },
      kvLink({ source_id: "counter", target: "kvredis", interfaces: ["store"] }),
    );
    const links = (await t.client.getLinks()).filter((l) => l.source_id === "counter");
    assert.deepEqual(links.map((l) => l.target), ["kvredis"]);
  });
});

describe("links under concurrency and restarts", () => {
  test("two hosts × 500 concurrent puts for one source lose nothing", async () => {
    const t = await testLattice(nats);
    try {
      const [a, b] = [await t.startHost(), await t.startHost()];
      const puts = (h: typeof a, prefix: string) =>
        Array.from({ length: 500 }, (_, i) => h.links.put(kvLink({ source_id: "hot", name: `${prefix}${i}`, interfaces: ["store"] })));
      const results = await Promise.all([...puts(a, "a"), ...puts(b, "b")]);
      assert.equal(results.length, 1000);
      const stored = await a.lattice.specs.read("hot");
      assert.equal(stored?.links.length, 1000);
      // and through the control interface (queue group spreads the requests over both hosts)
      await Promise.all(Array.from({ length: 200 }, (_, i) => t.client.putLink(kvLink({ source_id: "hot2", name: `n${i}`, interfaces: ["store"] }))));
      const all = await t.client.getLinks();
      assert.equal(all.filter((l) => l.source_id === "hot2").length, 200);
      assert.equal(all.filter((l) => l.source_id === "hot").length, 1000);
    } finally {
      await t.close();
    }
  });

  test("a host restart restores every link from KV", async () => {
    const t = await testLattice(nats);
    try {
      const h = await t.startHost();
      await t.client.putConfig("c1", { k: "v" });
      for (let i = 0; i < 20; i++) await t.client.putLink(kvLink({ source_id: `s${i % 4}`, name: `l${i}`, source_config: ["c1"] }));
      const before = await t.client.getLinks();
      await h.stop();
      t.hosts.length = 0;
      const h2 = await t.startHost();
      assert.notEqual(h2.id, h.id);
      assert.equal(h2.lattice.specs.allLinks().length, 20, "loaded at start, before any request");
      const afterLinks = await t.client.getLinks();
      const key = (l: { source_id: string; name: string }) => `${l.source_id}/${l.name}`;
      assert.deepEqual(afterLinks.map(key).sort(), before.map(key).sort());
      assert.deepEqual(await t.client.getConfig("c1"), { k: "v" });
    } finally {
      await t.close();
    }
  });

  test("two lattices on one NATS server see none of each other's data, events or control traffic", async () => {
    const one = await testLattice(nats);
    const two = await testLattice(nats);
    try {
      const h1 = await one.startHost();
      const h2 = await two.startHost();
      const rec2 = await two.recordEvents();
      await one.client.putConfig("shared-name", { lattice: "one" });
      await one.client.putLink(kvLink());
      await one.client.putLabel(h1.id, "zone", "east");
      assert.deepEqual(await two.client.getLinks(), []);
      assert.equal(await two.client.getConfig("shared-name"), undefined);
      assert.deepEqual((await two.client.getHosts()).map((h) => h.id), [h2.id]);
      await assert.rejects(two.client.getInventory(h1.id), (e: TrellisError) => e.code === ErrorCode.NoResponders);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(rec2.events, []);
      assert.equal(h2.lattice.specs.allLinks().length, 0);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
