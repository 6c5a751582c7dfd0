/**
 * The resident reconciler with in-process hosts (ADR 0012): `deployApp` stores the manifest and returns, the lease
 * holder's reconciler applies it; `wait` waits for it; a joining host gets a daemonscaler's instance, a label change
 * moves it, and `undeployApp` leaves the removal to the reconciler — nobody re-runs a deploy. Components run through
 * a stand-in component manager (no WebAssembly: the host contract of reference §1.4 only).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ok } from "../src/core/envelope.ts";
import type { ComponentDescription } from "../src/core/host.ts";
import type { HostOptions } from "../src/host/options.ts";
import type { ComponentManager, WorkloadFactories } from "../src/host/workloads.ts";
import { AppStore, applyApp, deployApp, getAppStatus, parseManifestText, undeployApp } from "../src/app/index.ts";
import { ErrorCode, TrellisError } from "../src/core/errors.ts";
import { ctlRoot } from "../src/core/subjects.ts";
import { Reconciler, readLease } from "../src/app/reconciler/index.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { testLattice } from "./support/lattice.ts";

/** A component manager that keeps an inventory and answers scale requests, without running anything. */
function standInComponents(): WorkloadFactories["components"] {
  return (ctx) => {
    const running = new Map<string, ComponentDescription>();
    const manager: ComponentManager = {
      handleScale(payload) {
        const body = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
        const id = String(body.component_id);
        const count = Number(body.count ?? 0);
        if (count === 0) running.delete(id);
        else running.set(id, { id, image_ref: String(body.component_ref), revision: 0, max_instances: count, annotations: body.annotations as Record<string, string> });
        ctx.events.publish("component_scaled", { component_id: id, host_id: ctx.hostId, image_ref: body.component_ref, max_instances: count });
        return Promise.resolve(ok(""));
      },
      handleUpdate: () => Promise.resolve(ok("")),
      inventory: () => [...running.values()],
      close: () => Promise.resolve(),
    };
    return Promise.resolve(manager);
  };
}

const host = (zone: string, reconciler = true): HostOptions => ({ labels: { zone }, reconciler, workloads: { components: standInComponents() } });

const MANIFEST = `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: { name: daemon, annotations: { version: v1 } }
spec:
  components:
    - name: web
      type: component
      properties: { image: ./web.wasm }
      traits:
        - type: daemonscaler
          properties:
            instances: 2
            spread:
              - name: east
                requirements: { zone: east }
`;

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats.stop();
});

void describe("app reconciler (in-process hosts)", () => {
  void test("hosts run the reconciler: deploy stores and returns, the lease holder applies it, --wait waits for it", async () => {
    const t = await testLattice(nats);
    try {
      const a = await t.startHost(host("east"));
      const b = await t.startHost(host("east"));
      await waitFor(async () => (await readLease(t.client.nc, t.lattice))?.holder === a.id, { message: "the first host holds the lease" });
      assert.ok(a.reconciler?.active);
      assert.equal(b.reconciler?.active, false);
      const runs = async (id: string) => (await t.client.getInventory(id)).components.some((c) => c.id === "daemon-web");
      const { manifest } = parseManifestText(MANIFEST);
      const r = await deployApp(t.client, manifest);
      assert.equal(r.applied_by, "reconciler");
      assert.equal(r.outcome, "created");
      assert.deepEqual(r.actions, [], "the client sent nothing");
      await waitFor(async () => (await runs(a.id)) && (await runs(b.id)), { timeoutMs: 10_000, message: "the reconciler placed the daemon on both hosts" });
      const again = await deployApp(t.client, manifest, { wait: true, waitTimeoutMs: 10_000 });
      assert.equal(again.outcome, "unchanged");
      assert.equal(again.status.status, "deployed");
      // a graceful stop hands the lease over at once
      await a.stop();
      await waitFor(() => b.reconciler?.active, { timeoutMs: 2000, message: "the other host's reconciler takes over" });
    } finally {
      await t.close();
    }
  });

  void test("the reconciler fills a joining host, follows labels and undeploys, without waiting for its resync", async () => {
    const t = await testLattice(nats);
    // A reconciler of its own (hosts opt out) with a resync far beyond the test: only its reactions to events count.
    const rec = await Reconciler.start({ nc: t.client.nc, lattice: t.lattice, hostId: "NTESTRECONCILER", resyncIntervalMs: 600_000 });
    try {
      await waitFor(() => rec.active, { message: "the reconciler is active" });
      const a = await t.startHost(host("east", false));
      const b = await t.startHost(host("east", false));
      const runs = async (id: string) => (await t.client.getInventory(id)).components.some((c) => c.id === "daemon-web");
      const r = await deployApp(t.client, parseManifestText(MANIFEST).manifest, { applyBy: "reconciler", wait: true, waitTimeoutMs: 10_000 });
      assert.equal(r.status.status, "deployed");
      assert.ok((await runs(a.id)) && (await runs(b.id)));

      // a host joins: a daemonscaler wants it filled
      const c = await t.startHost(host("east", false));
      await waitFor(() => runs(c.id), { timeoutMs: 5000, message: "the joining host gets the daemon" });
      // labels change: the host no longer matches, its instance is stopped (after the reconciles the join caused
      // have settled, so that only the label event can explain the move)
      await new Promise((r) => setTimeout(r, 500));
      await t.client.putLabel(b.id, "zone", "west");
      await waitFor(async () => !(await runs(b.id)), { timeoutMs: 5000, message: "the instance leaves the host that no longer matches" });
      assert.equal((await getAppStatus(t.client, "daemon")).status, "deployed");

      const gone = await undeployApp(t.client, "daemon", { applyBy: "reconciler", wait: true, waitTimeoutMs: 5000 });
      assert.equal(gone.applied_by, "reconciler");
      assert.equal(gone.removed, true);
      assert.equal(await (await AppStore.open(t.client.nc, t.lattice)).get("daemon"), undefined);
      for (const h of [a, c]) assert.equal(await runs(h.id), false, "stopped everywhere");
    } finally {
      await rec.stop();
      await t.close();
    }
  });

  void test("a failure the reconciler meets is reported to a waiting deploy, and the app is retried with back-off", async () => {
    const t = await testLattice(nats);
    try {
      await t.startHost(host("east")); // runs no capability providers: provider.start fails
      const bad = `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: { name: broken, annotations: { version: v1 } }
spec:
  components:
    - name: kv
      type: capability
      properties: { image: kv-memory }
`;
      const r = await deployApp(t.client, parseManifestText(bad).manifest, { wait: true, waitTimeoutMs: 10_000 });
      assert.equal(r.applied_by, "reconciler");
      assert.equal(r.status.status, "failed", r.status.message);
      assert.equal(r.timed_out, false);
      assert.match(r.failures.map((f) => f.action).join(";"), /start provider broken-kv/);
      const stored = await (await AppStore.open(t.client.nc, t.lattice)).get("broken");
      assert.ok(stored && stored.record.last_apply.failures.length > 0, "the reconciler recorded the failure");
      // Back-off: retries at 1 s, 2 s, 4 s … — not a loop on its own record writes.
      let starts = 0;
      const sub = t.client.nc.subscribe(`${ctlRoot(t.lattice)}.provider.start.>`, { callback: () => void starts++ });
      await new Promise((r) => setTimeout(r, 3500));
      sub.unsubscribe();
      assert.ok(starts >= 1 && starts <= 3, `retried with back-off, not in a loop (${starts} attempts in 3.5 s)`);
    } finally {
      await t.close();
    }
  });

  void test("with no reconciler on the lattice, deploy applies from the client as before", async () => {
    const t = await testLattice(nats);
    try {
      const a = await t.startHost({ ...host("east"), reconciler: false });
      const r = await deployApp(t.client, parseManifestText(MANIFEST).manifest, { wait: true, waitTimeoutMs: 10_000 });
      assert.equal(r.applied_by, "client");
      assert.equal(r.status.status, "deployed");
      assert.ok((await t.client.getInventory(a.id)).components.some((c) => c.id === "daemon-web"));
      // what the reconciler relies on: an apply of a record revision that is no longer current is refused
      const stored = await (await AppStore.open(t.client.nc, t.lattice)).get("daemon");
      assert.ok(stored);
      const v2 = parseManifestText(MANIFEST.replace("version: v1", "version: v2").replace("instances: 2", "instances: 3")).manifest;
      await assert.rejects(applyApp(t.client, v2, { ifRevision: stored.revision - 1 }), (e: unknown) => e instanceof TrellisError && e.code === ErrorCode.AlreadyExists);
      assert.equal((await (await AppStore.open(t.client.nc, t.lattice)).get("daemon"))?.record.version, "v1", "nothing written");
    } finally {
      await t.close();
    }
  });
});
