/**
 * Replica count of the lattice KV buckets (ADR 0015, docs/nats-cluster.md): 3 by default on a 3-node cluster (measured
 * from the server INFO's `cluster` / `connect_urls`), 1 on a single server, `kvReplicas` when given, and an existing
 * bucket bound as it is. Real nats-server 2.9.10 processes (src/testing/nats-cluster.ts, src/testing/nats.ts).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Host } from "../src/host/host.ts";
import { AppStore } from "../src/app/store.ts";
import { silentLogger } from "../src/core/logger.ts";
import { appsBucket, configDataBucket, latticeDataBucket } from "../src/core/subjects.ts";
import { clusterOf, defaultKvReplicas, openBucket } from "../src/lattice/kv.ts";
import { compileHostOptions } from "../src/host/options.ts";
import { startTestNatsCluster, type TestNatsCluster } from "../src/testing/nats-cluster.ts";
import { startTestNats, uniqueLattice, type TestNats } from "../src/testing/index.ts";

const replicasOf = async (nc: NatsConnection, bucket: string) => (await (await jetstreamManager(nc)).streams.info(`KV_${bucket}`)).config.num_replicas;

describe("lattice KV replicas on a 3-node cluster", () => {
  let cluster: TestNatsCluster;
  let nc: NatsConnection;
  const hosts: Host[] = [];
  before(async () => {
    cluster = await startTestNatsCluster({ size: 3 });
    nc = await connect({ servers: cluster.nodes[1]!.url });
  });
  after(async () => {
    await Promise.allSettled(hosts.map((h) => h.stop()));
    await nc?.close();
    await cluster?.stop();
  });
  const host = async (lattice: string, kvReplicas?: number) => {
    const h = await Host.create({ natsUrl: cluster.nodes[0]!.url, lattice, logger: silentLogger, workloads: {}, ...(kvReplicas === undefined ? {} : { kvReplicas }) });
    hosts.push(h);
    return h;
  };

  test("the server INFO tells the cluster size; the default is 3", () => {
    assert.deepEqual(clusterOf(nc), { name: "trellis-test", servers: 3, jetstream: true });
    assert.equal(defaultKvReplicas(nc), 3);
  });

  test("a host creates LATTICEDATA_ and CONFIGDATA_ with 3 replicas; AppStore creates TRELLIS_APPS_ with 3", async () => {
    const lattice = uniqueLattice();
    await host(lattice);
    assert.equal(await replicasOf(nc, latticeDataBucket(lattice)), 3);
    assert.equal(await replicasOf(nc, configDataBucket(lattice)), 3);
    await AppStore.open(nc, lattice);
    assert.equal(await replicasOf(nc, appsBucket(lattice)), 3);
  });

  test("kvReplicas overrides the default", async () => {
    const lattice = uniqueLattice();
    await host(lattice, 2);
    assert.equal(await replicasOf(nc, latticeDataBucket(lattice)), 2);
    assert.equal(await replicasOf(nc, configDataBucket(lattice)), 2);
  });

  test("an existing bucket keeps its replica count: bound, not changed, not an error", async () => {
    const lattice = uniqueLattice();
    await new Kvm(nc).create(latticeDataBucket(lattice), { history: 1, replicas: 1 });
    const h = await host(lattice);
    assert.equal(await replicasOf(nc, latticeDataBucket(lattice)), 1);
    assert.equal(await replicasOf(nc, configDataBucket(lattice)), 3);
    // and it works
    await h.links.put({ source_id: "a", target: "b", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] });
    assert.equal((await h.links.list()).length, 1);
    // a second host asking for 3 explicitly binds it too
    await host(lattice, 3);
    assert.equal(await replicasOf(nc, latticeDataBucket(lattice)), 1);
  });
});

describe("lattice KV replicas on a single server", () => {
  let nats: TestNats;
  before(async () => {
    nats = await startTestNats({ private: true, websocket: false });
  });
  after(async () => nats?.stop());

  test("no cluster: the default is 1; asking for 3 fails with a clear LATTICE_ERROR", async () => {
    const nc = await connect({ servers: nats.url });
    try {
      assert.deepEqual(clusterOf(nc), { name: undefined, servers: 1, jetstream: true });
      assert.equal(defaultKvReplicas(nc), 1);
      const b = uniqueLattice("B");
      await openBucket(nc, b);
      assert.equal(await replicasOf(nc, b), 1);
      await assert.rejects(openBucket(nc, uniqueLattice("C"), { replicas: 3 }), (e: { code?: string; message: string }) => e.code === "LATTICE_ERROR" && /replicas 3/.test(e.message));
    } finally {
      await nc.close();
    }
  });

  test("kvReplicas is validated once at start (1–5)", () => {
    for (const bad of [0, 6, 1.5, -1]) {
      assert.throws(() => compileHostOptions({ kvReplicas: bad, workloads: {} }), /kvReplicas must be an integer from 1 to 5/);
    }
    assert.equal(compileHostOptions({ kvReplicas: 5, workloads: {} }).kvReplicas, 5);
    assert.equal(compileHostOptions({ workloads: {} }).kvReplicas, undefined);
  });
});
