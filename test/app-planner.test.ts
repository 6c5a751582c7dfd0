/**
 * The app planner and placement (issue 5, reference §8.2–§8.3) as pure functions: first deploy, idempotence (a plan
 * applied to the lattice it was made for leaves nothing to do), changed manifests (replace, delete, scale, update,
 * restart), spreads and weights, daemonscaler, hosts joining and leaving, missing config, undeploy, status. No NATS:
 * the lattice is a value, and `simulate` plays the actions on it as hosts would.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type AppAction,
  type AppliedState,
  type DesiredState,
  type ObservedHost,
  type ObservedState,
  Phase,
  appliedFrom,
  computeSpread,
  desiredState,
  emptyApplied,
  emptyDesired,
  parseManifest,
  placeComponent,
  placeProvider,
  planApp,
  statusFromPlan,
} from "../src/app/index.ts";

// ---- helpers ---------------------------------------------------------------------------------------

function manifest(components: unknown[], name = "app"): DesiredState {
  return desiredState(parseManifest({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name }, spec: { components } }).manifest);
}

const spread = (instances: number, s: unknown[] = [], type = "spreadscaler") => ({ type, properties: { instances, spread: s } });
const kvLink = (target: string, extra: Record<string, unknown> = {}) => ({
  type: "link",
  properties: { namespace: "wasi", package: "keyvalue", interfaces: ["store"], target: { name: target }, ...extra },
});

/** The counter-like app: a component linked to a kv provider with inline config on the target side. */
function counterApp(over: { instances?: number; target?: string; interfaces?: string[]; bucket?: string; image?: string } = {}): DesiredState {
  return manifest([
    {
      name: "counter",
      type: "component",
      properties: { image: over.image ?? "counter.wasm" },
      traits: [
        spread(over.instances ?? 2),
        kvLink(over.target ?? "kv", {
          interfaces: over.interfaces ?? ["store", "atomics"],
          target: { name: over.target ?? "kv", config: [{ name: "bucket", properties: { bucket: over.bucket ?? "demo" } }] },
        }),
      ],
    },
    { name: "kv", type: "capability", properties: { image: "kv-memory" } },
    { name: "kv2", type: "capability", properties: { image: "kv-redis" } },
  ]);
}

function host(id: string, labels: Record<string, string> = {}): ObservedHost {
  return { id, labels, components: [], providers: [] };
}

function lattice(...hosts: ObservedHost[]): ObservedState {
  return { hosts, links: [], configs: {} };
}

/** Plays actions on an observed lattice as hosts would (config, links, inventories). */
function simulate(o: ObservedState, actions: readonly AppAction[]): ObservedState {
  const s: ObservedState = structuredClone(o);
  const hostOf = (id: string) => {
    const h = s.hosts.find((x) => x.id === id);
    assert.ok(h, `action for unknown host ${id}`);
    return h;
  };
  const del = (k: { source_id: string; wit_namespace: string; wit_package: string; name: string; target: string }) => {
    s.links = s.links.filter((l) => !(l.source_id === k.source_id && l.wit_namespace === k.wit_namespace && l.wit_package === k.wit_package && l.name === k.name && l.target === k.target));
  };
  for (const a of actions) {
    switch (a.kind) {
      case "put_config":
        s.configs[a.name] = { ...a.values };
        break;
      case "delete_config":
        s.configs[a.name] = null;
        break;
      case "put_link":
        s.links.push(a.link);
        break;
      case "replace_link":
        del(a.delete);
        s.links.push(a.link);
        break;
      case "delete_link":
        del(a.delete);
        break;
      case "scale_component": {
        const h = hostOf(a.host_id);
        h.components = h.components.filter((c) => c.id !== a.component_id);
        if (a.count > 0) h.components.push({ id: a.component_id, image_ref: a.component_ref, revision: 0, max_instances: a.count, annotations: a.annotations });
        break;
      }
      case "update_component": {
        const c = hostOf(a.host_id).components.find((x) => x.id === a.component_id);
        assert.ok(c);
        c.image_ref = a.new_component_ref;
        break;
      }
      case "start_provider": {
        const h = hostOf(a.host_id);
        assert.ok(!h.providers.some((p) => p.id === a.provider_id), `provider ${a.provider_id} already running on ${a.host_id}`);
        h.providers.push({ id: a.provider_id, image_ref: a.provider_ref, revision: 0, annotations: a.annotations, status: "running" });
        break;
      }
      case "stop_provider": {
        const h = hostOf(a.host_id);
        assert.ok(h.providers.some((p) => p.id === a.provider_id), `provider ${a.provider_id} not running on ${a.host_id}`);
        h.providers = h.providers.filter((p) => p.id !== a.provider_id);
        break;
      }
    }
  }
  return s;
}

/** Deploys `d` over `o` (plan, play), checks that a second plan is empty, returns the new lattice and applied state. */
function deploy(d: DesiredState, o: ObservedState, applied: AppliedState = emptyApplied()) {
  const plan = planApp(d, o, applied);
  const after = simulate(o, plan.actions);
  const again = planApp(d, after, appliedFrom(d));
  assert.deepEqual(again.actions, [], "re-planning after the plan was applied finds nothing to do");
  return { plan, observed: after, applied: appliedFrom(d) };
}

const kinds = (as: readonly AppAction[]) => as.map((a) => a.kind);
const counts = (o: ObservedState, id: string) =>
  Object.fromEntries(o.hosts.flatMap((h) => h.components.filter((c) => c.id === id).map((c) => [h.id, c.max_instances])));

// ---- tests -----------------------------------------------------------------------------------------

describe("spreads", () => {
  test("computeSpread matches wadm's compute_spread", () => {
    const s = (weights: number[]) => weights.map((w, i) => ({ name: `s${i}`, requirements: {}, weight: w }));
    assert.deepEqual(computeSpread(12, []).map((x) => x.count), [12]);
    assert.deepEqual(computeSpread(10, s([100, 100])).map((x) => x.count), [5, 5]);
    assert.deepEqual(computeSpread(7, s([30, 40])).map((x) => [x.spread.weight, x.count]), [[40, 4], [30, 3]]);
    assert.deepEqual(computeSpread(7, s([100, 100])).map((x) => x.count), [4, 3]);
    assert.deepEqual(computeSpread(103, s([42, 3, 37, 384])).map((x) => [x.spread.weight, x.count]), [[384, 85], [42, 10], [37, 8], [3, 0]]);
  });

  test("components: each spread's share is split evenly over its matching hosts; weights honoured", () => {
    const hosts = [host("A", { zone: "east" }), host("B", { zone: "east" }), host("C", { zone: "west" })];
    const trait = { type: "spreadscaler" as const, instances: 6, path: "", spread: [
      { name: "east", requirements: { zone: "east" }, weight: 200 },
      { name: "west", requirements: { zone: "west" }, weight: 100 },
    ] };
    assert.deepEqual(Object.fromEntries(placeComponent(trait, hosts, new Map()).placed), { A: 2, B: 2, C: 2 });
    const seven = { ...trait, instances: 7 }; // east 4 + the remainder, west 2
    assert.deepEqual(Object.fromEntries(placeComponent(seven, hosts, new Map()).placed), { A: 3, B: 2, C: 2 }, "remainder to the first host by id");
    assert.deepEqual(Object.fromEntries(placeComponent(seven, hosts, new Map([["B", 3], ["A", 1]])).placed), { A: 2, B: 3, C: 2 }, "…or to the host that runs more now");
    const none = placeComponent({ ...trait, spread: [{ name: "mars", requirements: { zone: "mars" }, weight: 100 }] }, hosts, new Map());
    assert.equal(none.placed.size, 0);
    assert.match(none.problems[0] ?? "", /spread mars \(zone=mars\): no host matches, 6 instance/);
  });

  test("daemonscaler: every matching host; providers: one per host", () => {
    const hosts = [host("A", { gpu: "yes" }), host("B"), host("C", { gpu: "yes" })];
    const daemon = { type: "daemonscaler" as const, instances: 3, path: "", spread: [{ name: "gpu", requirements: { gpu: "yes" }, weight: 100 }] };
    assert.deepEqual(Object.fromEntries(placeComponent(daemon, hosts, new Map()).placed), { A: 3, C: 3 });
    assert.deepEqual([...placeProvider(daemon, hosts, new Set()).placed], ["A", "C"]);
    assert.deepEqual([...placeProvider({ ...daemon, spread: [] }, hosts, new Set()).placed], ["A", "B", "C"]);
    const two = { type: "spreadscaler" as const, instances: 2, path: "", spread: [] };
    assert.deepEqual([...placeProvider(two, hosts, new Set(["C"])).placed].sort(), ["A", "C"], "keeps the host that runs it");
    const five = placeProvider({ ...two, instances: 5 }, hosts, new Set());
    assert.equal(five.placed.size, 3);
    assert.match(five.problems[0] ?? "", /3 of 5 provider instance/);
  });

  test("placement is stable: its own result as the current state gives the same result (random cases)", () => {
    let seed = 42;
    const rnd = (k: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % k;
    };
    for (let i = 0; i < 3000; i++) {
      const hosts = Array.from({ length: 1 + rnd(6) }, (_, j) => host(`H${j}`, { zone: ["a", "b", "c"][rnd(3)] ?? "a" }));
      const zones = ["a", "b", "c"].slice(0, rnd(4));
      const trait = {
        type: "spreadscaler" as const,
        instances: rnd(15),
        path: "",
        spread: zones.map((z) => ({ name: z, requirements: { zone: z }, weight: [50, 100, 30][rnd(3)] ?? 100 })),
      };
      const current = new Map(hosts.filter(() => rnd(2) === 0).map((h) => [h.id, 1 + rnd(3)] as [string, number]));
      const d1 = placeComponent(trait, hosts, current).placed;
      assert.deepEqual(placeComponent(trait, hosts, d1).placed, d1, `case ${i}`);
      const p1 = placeProvider(trait, hosts, new Set(current.keys())).placed;
      assert.deepEqual(placeProvider(trait, hosts, p1).placed, p1, `case ${i}`);
    }
  });
});

describe("planner", () => {
  test("first deploy: config, then links, then providers and components, in that order; then nothing", () => {
    const d = counterApp();
    const { plan, observed } = deploy(d, lattice(host("A"), host("B")));
    assert.deepEqual(kinds(plan.actions), ["put_config", "put_link", "start_provider", "start_provider", "scale_component", "scale_component"]);
    assert.deepEqual(plan.actions.map((a) => a.phase), [Phase.Config, Phase.Link, Phase.Place, Phase.Place, Phase.Place, Phase.Place]);
    assert.deepEqual(observed.configs, { "app-bucket": { bucket: "demo" } });
    assert.deepEqual(observed.links, [
      { source_id: "app-counter", target: "app-kv", name: "default", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"], source_config: [], target_config: ["app-bucket"] },
    ]);
    assert.deepEqual(counts(observed, "app-counter"), { A: 1, B: 1 });
    const start = plan.actions.find((a) => a.kind === "start_provider");
    assert.deepEqual(start?.kind === "start_provider" && start.annotations, {
      "wasmcloud.dev/managed-by": "trellis",
      "wasmcloud.dev/appspec": "app",
      "wasmcloud.dev/scaler": "spreadscaler/kv",
    });
    assert.equal(statusFromPlan(planApp(d, observed, appliedFrom(d))).status, "deployed");
    assert.equal(statusFromPlan(plan).status, "reconciling");
  });

  test("a changed manifest: re-pointed and changed links are replaced, scale changes applied, stale config deleted", () => {
    const first = deploy(counterApp(), lattice(host("A"), host("B")));
    // re-point the link to kv2 and change its interfaces and bucket; 3 instances
    const d2 = counterApp({ target: "kv2", interfaces: ["store"], bucket: "other", instances: 3 });
    const { plan, observed } = deploy(d2, first.observed, first.applied);
    assert.deepEqual(kinds(plan.actions), ["put_config", "replace_link", "scale_component"]);
    const rep = plan.actions[1];
    assert.ok(rep?.kind === "replace_link");
    assert.deepEqual(rep.delete, { source_id: "app-counter", wit_namespace: "wasi", wit_package: "keyvalue", name: "default", target: "app-kv" });
    assert.equal(rep.link.target, "app-kv2");
    assert.equal(observed.links.length, 1);
    assert.deepEqual(Object.values(counts(observed, "app-counter")).sort(), [1, 2]);
    // same target, other interfaces: a replace narrowed by the same target (links are immutable)
    const d3 = counterApp({ target: "kv2", interfaces: ["store", "atomics"], bucket: "other", instances: 3 });
    const third = deploy(d3, observed, appliedFrom(d2));
    assert.deepEqual(kinds(third.plan.actions), ["replace_link"]);
    assert.ok(third.plan.actions[0]?.kind === "replace_link" && third.plan.actions[0].delete.target === "app-kv2");
    // drop the link trait entirely: the link is deleted, and its inline config with it
    const d4 = manifest([
      { name: "counter", type: "component", properties: { image: "counter.wasm" }, traits: [spread(3)] },
      { name: "kv", type: "capability", properties: { image: "kv-memory" } },
      { name: "kv2", type: "capability", properties: { image: "kv-redis" } },
    ]);
    const fourth = deploy(d4, third.observed, third.applied);
    assert.deepEqual(kinds(fourth.plan.actions), ["delete_link", "delete_config"]);
    assert.equal(fourth.observed.configs["app-bucket"], null);
  });

  test("removed workloads are stopped; ref changes update components and restart providers", () => {
    const first = deploy(counterApp(), lattice(host("A")));
    const d2 = manifest([
      { name: "counter", type: "component", properties: { image: "counter-v2.wasm" }, traits: [spread(2)] },
      { name: "kv", type: "capability", properties: { image: "kv-memory-v2" } },
    ]);
    const { plan } = deploy(d2, first.observed, first.applied);
    assert.deepEqual(
      plan.actions.map((a) => `${a.phase}:${a.kind}`),
      [`${Phase.Prepare}:stop_provider`, `${Phase.Prepare}:update_component`, `${Phase.Place}:start_provider`, `${Phase.RemoveLink}:delete_link`, `${Phase.RemoveWorkload}:stop_provider`, `${Phase.RemoveConfig}:delete_config`],
    );
    const stopped = plan.actions.filter((a) => a.kind === "stop_provider").map((a) => a.kind === "stop_provider" && a.provider_id);
    assert.deepEqual(stopped, ["app-kv", "app-kv2"]);
  });

  test("a config list change re-scales with the new list; config values alone only put the config", () => {
    const withConfig = (values: Record<string, string>, extra: unknown[] = []) =>
      manifest([{ name: "c", type: "component", properties: { image: "c.wasm", config: [{ name: "settings", properties: values }, ...extra] }, traits: [spread(1)] }]);
    const first = deploy(withConfig({ a: "1" }), lattice(host("A")));
    const second = deploy(withConfig({ a: "2" }), first.observed, first.applied);
    assert.deepEqual(kinds(second.plan.actions), ["put_config"]);
    const observed = { ...second.observed, configs: { ...second.observed.configs, more: { b: "1" } } };
    const third = deploy(withConfig({ a: "2" }, [{ name: "more" }]), observed, second.applied);
    assert.deepEqual(kinds(third.plan.actions), ["scale_component"]);
    assert.ok(third.plan.actions[0]?.kind === "scale_component");
    assert.deepEqual(third.plan.actions[0].config, ["app-settings", "more"]);
  });

  test("a missing external config blocks what needs it and fails the status", () => {
    const d = manifest([
      { name: "c", type: "component", properties: { image: "c.wasm", config: [{ name: "creds" }] }, traits: [spread(1), kvLink("kv", { source: { config: [{ name: "creds" }] } })] },
      { name: "kv", type: "capability", properties: { image: "kv-memory" } },
    ]);
    const o = { ...lattice(host("A")), configs: { creds: null } };
    const plan = planApp(d, o, emptyApplied());
    assert.deepEqual(kinds(plan.actions), ["start_provider"]);
    assert.equal(plan.problems.length, 3);
    assert.match(plan.problems[0] ?? "", /config creds does not exist.*trellis config put creds/);
    const status = statusFromPlan(plan);
    assert.equal(status.status, "failed");
    const ok = planApp(d, simulate({ ...o, configs: { creds: { k: "v" } } }, plan.actions), emptyApplied());
    assert.deepEqual(kinds(ok.actions), ["put_link", "scale_component"]);
  });

  test("links the app does not own are left alone; a conflicting foreign link is not stolen", () => {
    const d = counterApp();
    const foreign = { source_id: "app-counter", target: "elsewhere", name: "default", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"], source_config: [], target_config: [] };
    const unrelated = { ...foreign, source_id: "someone", target: "app-kv" };
    const o = { ...lattice(host("A")), links: [foreign, unrelated] };
    const plan = planApp(d, o, emptyApplied());
    assert.deepEqual(kinds(plan.actions).filter((k) => k.includes("link")), ["put_link"], "a put (the host reports the conflict), no delete");
  });

  test("ineligible hosts and hosts that left: instances move; a new matching host gets a daemon", () => {
    const d = manifest([{ name: "c", type: "component", properties: { image: "c.wasm" }, traits: [spread(2, [{ name: "east", requirements: { zone: "east" } }])] }]);
    const first = deploy(d, lattice(host("A", { zone: "east" }), host("B", { zone: "east" })));
    assert.deepEqual(counts(first.observed, "app-c"), { A: 1, B: 1 });
    // B is relabelled west: its instance goes, A takes both
    const relabelled = structuredClone(first.observed);
    const b = relabelled.hosts[1];
    assert.ok(b);
    b.labels = { zone: "west" };
    const second = deploy(d, relabelled, first.applied);
    assert.deepEqual(second.plan.actions.map((a) => a.kind === "scale_component" && `${a.host_id}:${a.count}`), ["A:2", "B:0"]);
    // A leaves: C (east) joins and gets both
    const moved = { ...second.observed, hosts: [host("C", { zone: "east" }), ...second.observed.hosts.filter((h) => h.id !== "A")] };
    const third = deploy(d, moved, second.applied);
    assert.deepEqual(counts(third.observed, "app-c"), { C: 2 });
    // daemonscaler: a joining host gets its instance, nothing else moves
    const daemon = manifest([{ name: "c", type: "component", properties: { image: "c.wasm" }, traits: [spread(1, [], "daemonscaler")] }]);
    const d1 = deploy(daemon, lattice(host("A"), host("B")));
    const d2 = deploy(daemon, { ...d1.observed, hosts: [...d1.observed.hosts, host("C")] }, d1.applied);
    assert.deepEqual(d2.plan.actions.map((a) => a.kind === "scale_component" && `${a.host_id}:${a.count}`), ["C:1"]);
  });

  test("a component without a scaler is not run; one running under its id is stopped", () => {
    const d = manifest([{ name: "c", type: "component", properties: { image: "c.wasm" } }]);
    const o = lattice(host("A"));
    assert.deepEqual(planApp(d, o, emptyApplied()).actions, []);
    o.hosts[0]?.components.push({ id: "app-c", image_ref: "c.wasm", revision: 0, max_instances: 1 });
    assert.deepEqual(kinds(planApp(d, o, emptyApplied()).actions), ["scale_component"]);
  });

  test("undeploy removes what the app owns, and workloads annotated as the app's; not other apps' things", () => {
    const first = deploy(counterApp(), lattice(host("A"), host("B")));
    const o = structuredClone(first.observed);
    // a stray instance annotated as ours (from an interrupted deploy), and another app's provider
    o.hosts[0]?.providers.push({ id: "stray", revision: 0, status: "running", annotations: { "wasmcloud.dev/managed-by": "trellis", "wasmcloud.dev/appspec": "app" } });
    o.hosts[0]?.providers.push({ id: "theirs", revision: 0, status: "running", annotations: { "wasmcloud.dev/managed-by": "trellis", "wasmcloud.dev/appspec": "other" } });
    o.configs["app-bucket"] = { bucket: "demo" };
    const plan = planApp(emptyDesired("app"), o, first.applied);
    const after = simulate(o, plan.actions);
    assert.deepEqual(after.links, []);
    assert.equal(after.configs["app-bucket"], null);
    assert.deepEqual(after.hosts.flatMap((h) => [...h.components.map((c) => c.id), ...h.providers.map((p) => p.id)]), ["theirs"]);
    assert.deepEqual(planApp(emptyDesired("app"), after, first.applied).actions, []);
  });

  test("status: failed provider, pending provider, last failures", () => {
    const d = counterApp();
    const { observed } = deploy(d, lattice(host("A")));
    const applied = appliedFrom(d);
    const p = observed.hosts[0]?.providers[0];
    assert.ok(p);
    p.status = "starting";
    let s = statusFromPlan(planApp(d, observed, applied));
    assert.equal(s.status, "reconciling");
    assert.match(s.pending[0] ?? "", /provider kv \(app-kv\) is starting on host A/);
    p.status = "failed";
    s = statusFromPlan(planApp(d, observed, applied));
    assert.equal(s.status, "failed");
    assert.match(s.message, /failed on host A/);
    p.status = "running";
    const gone = structuredClone(observed);
    gone.hosts[0]!.components = [];
    const failure = { action: "scale component app-counter on A to 2", code: "ILLEGAL_STATE", message: "components are not available on this host" };
    s = statusFromPlan(planApp(d, gone, applied), [failure]);
    assert.equal(s.status, "failed");
    assert.deepEqual(s.failures, [failure]);
    assert.deepEqual(s.missing, ["scale component app-counter on A to 2"]);
    assert.equal(statusFromPlan(planApp(d, observed, applied), [failure]).status, "deployed", "old failures do not matter once nothing is left");
  });
});
