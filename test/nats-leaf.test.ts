/**
 * A lattice across sites (docs/nats-cluster.md, "Across sites: leaf nodes"): a hub nats-server 2.9.10 with JetStream in
 * domain `hub` and a leaf-node listener, and a leaf server without JetStream connected to it. A host on the hub and a
 * host on the leaf (`jsDomain: "hub"`) share one lattice: both answer the control interface through the leaf
 * connection, and the leaf host keeps its lattice data in the hub's JetStream. Without the domain the leaf host cannot
 * reach JetStream (the server denies `$JS.API.>` / `$KV.>` across the leaf connection) and fails to start clearly.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Host } from "../src/host/host.ts";
import { CtlClient } from "../src/control/client.ts";
import { silentLogger } from "../src/core/logger.ts";
import { getFreePort, startNatsServer, type NatsServerHandle } from "../src/lattice/nats-server.ts";
import { uniqueLattice, waitFor } from "../src/testing/index.ts";

describe("a lattice across a leaf node", () => {
  let hub: NatsServerHandle;
  let leaf: NatsServerHandle;
  let dir: string;
  const hosts: Host[] = [];
  const clients: CtlClient[] = [];
  const lattice = uniqueLattice("leaf");

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "trellis-leaf-"));
    const leafPort = await getFreePort();
    hub = await startNatsServer({
      extraConfig: [
        `server_name: "hub"`,
        `jetstream { store_dir: ${JSON.stringify(path.join(dir, "hub"))}, domain: "hub" }`,
        `leafnodes { listen: "127.0.0.1:${leafPort}" }`,
      ],
    });
    leaf = await startNatsServer({
      extraConfig: [`server_name: "leaf-east"`, `jetstream: disabled`, `leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:${leafPort}" } ] }`],
    });
  });
  after(async () => {
    await Promise.allSettled(hosts.map((h) => h.stop(2000)));
    await Promise.allSettled(clients.map((c) => c.close()));
    await leaf?.stop();
    await hub?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("without a JetStream domain a host on the leaf fails to start with LATTICE_ERROR", async () => {
    await assert.rejects(
      Host.create({ natsUrl: leaf.url, lattice: uniqueLattice("noleaf"), logger: silentLogger, workloads: {} }),
      (e: { code?: string; message: string }) => e.code === "LATTICE_ERROR" && /cannot open or create JetStream KV bucket/.test(e.message),
    );
  });

  test("with jsDomain the leaf host shares the hub's lattice data and both hosts answer across the leaf connection", async () => {
    const hubHost = await Host.create({ natsUrl: hub.url, lattice, logger: silentLogger, workloads: {}, friendlyName: "hub-host" });
    hosts.push(hubHost);
    const leafHost = await Host.create({ natsUrl: leaf.url, lattice, logger: silentLogger, workloads: {}, friendlyName: "leaf-host", jsDomain: "hub" });
    hosts.push(leafHost);
    const atLeaf = await CtlClient.connect({ natsUrl: leaf.url, lattice });
    const atHub = await CtlClient.connect({ natsUrl: hub.url, lattice });
    clients.push(atLeaf, atHub);
    // both hosts answer a ping from either side
    for (const c of [atLeaf, atHub]) {
      await waitFor(async () => (await c.getHosts(1000)).length === 2, { timeoutMs: 5000, message: "both hosts answer" });
    }
    // writes through either host land in the one set of buckets
    await atLeaf.putConfig("east-cfg", { zone: "east" });
    await atLeaf.putLink({ source_id: "app", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"], target_config: ["east-cfg"] });
    await atHub.putLink({ source_id: "app2", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] });
    assert.deepEqual(await atHub.getConfig("east-cfg"), { zone: "east" });
    for (const h of [hubHost, leafHost]) {
      await h.lattice.specs.sync();
      assert.deepEqual((await h.links.list()).map((l) => l.source_id).sort(), ["app", "app2"]);
    }
    // host-addressed requests cross the leaf connection too
    assert.equal((await atHub.getInventory(leafHost.id)).friendly_name, "leaf-host");
    assert.equal((await atLeaf.getInventory(hubHost.id)).friendly_name, "hub-host");
  });
});
