/**
 * The 3-node cluster starter of the test harness (src/testing/nats-cluster.ts): the nodes form one JetStream cluster,
 * a killed node can be restarted with its data, and `stop()` ends every node process by its pid.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { startTestNatsCluster, waitFor } from "../src/testing/index.ts";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("startTestNatsCluster: one cluster; kill -9 and restart keep an R3 bucket; stop ends every node by pid", async () => {
  const cluster = await startTestNatsCluster({ size: 3 });
  const pids = cluster.nodes.map((n) => n.pid!);
  try {
    assert.equal(new Set(pids).size, 3);
    assert.equal(cluster.urls.split(",").length, 3);
    const nc = await connect({ servers: cluster.nodes[0]!.url });
    try {
      assert.equal(nc.info?.cluster, "trellis-test");
      const kv = await new Kvm(nc).create("HARNESS", { replicas: 3 });
      await kv.put("k", "v1");
      await cluster.kill("n2");
      assert.equal(cluster.nodes[2]!.running, false);
      assert.equal(alive(pids[2]!), false, "SIGKILL ended n2");
      await cluster.restart("n2");
      await cluster.waitJetStream("n2");
      const nc2 = await connect({ servers: cluster.nodes[2]!.url });
      try {
        // the restarted node may still be catching its replica up: ask until it answers (bounded)
        const value = await waitFor(
          async () => {
            try {
              return (await (await new Kvm(nc2).open("HARNESS")).get("k"))?.string();
            } catch {
              return undefined;
            }
          },
          { timeoutMs: 15_000, message: "the restarted node serves the R3 bucket" },
        );
        assert.equal(value, "v1");
      } finally {
        await nc2.close();
      }
    } finally {
      await nc.close();
    }
  } finally {
    const running = cluster.nodes.map((n) => n.pid!);
    await cluster.stop();
    for (const pid of [...pids, ...running]) assert.equal(alive(pid), false, `nats-server ${pid} stopped`);
  }
});
