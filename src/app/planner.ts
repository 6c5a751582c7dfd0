/**
 * The app planner: a pure function from what a manifest asks ({@link DesiredState}), what the lattice shows
 * ({@link ObservedState}) and what the app owned after its last deploy ({@link AppliedState}) to the control
 * requests that close the gap ({@link AppAction}), in the order they must run. Nothing to do ⇒ an empty list: this is
 * what makes re-deploying the same manifest change nothing. Status (`deployed` / `reconciling` / `failed`) is the
 * same planner run against the current state ({@link statusFromPlan}). docs/apps.md, "How a deploy works".
 * @module
 */
import { type Link, describeLink, linksEqual } from "../core/link.ts";
import type { ComponentDescription, ProviderDescription } from "../core/host.ts";
import {
  APPSPEC_ANNOTATION,
  type AppliedState,
  type DesiredState,
  type DesiredWorkload,
  MANAGED_BY_ANNOTATION,
  MANAGED_BY_TRELLIS,
  sameLinkTarget,
} from "./desired.ts";
import { type PlacementHost, placeComponent, placeProvider } from "./placement.ts";

/** One host as observed: labels and inventory (reference §1.4 `host.get`). */
export interface ObservedHost extends PlacementHost {
  components: ComponentDescription[];
  providers: ProviderDescription[];
}

/** The lattice as observed by one deploy or status call. */
export interface ObservedState {
  hosts: ObservedHost[];
  /** Every link (`link.get`). */
  links: Link[];
  /** Values of the configs asked about; `null` when the config does not exist. Names not listed are unknown. */
  configs: Record<string, Record<string, string> | null>;
}

/** The key a link delete takes, narrowed by target (Trellis `link.del` extension). */
export interface LinkDeleteKey {
  source_id: string;
  wit_namespace: string;
  wit_package: string;
  name: string;
  target: string;
}

/** A control request the applier sends (reference §1.4); `phase` orders them, `reason` explains them. */
export type AppAction = { phase: number; reason: string } & (
  | { kind: "put_config"; name: string; values: Record<string, string> }
  | { kind: "delete_config"; name: string }
  | { kind: "put_link"; link: Link }
  | { kind: "replace_link"; delete: LinkDeleteKey; link: Link }
  | { kind: "delete_link"; delete: LinkDeleteKey }
  | {
      kind: "scale_component";
      host_id: string;
      component_id: string;
      component_ref: string;
      count: number;
      config: string[];
      annotations: Record<string, string>;
      /** Trellis: host directories given to the component. */
      preopens?: { host_path: string; guest_path?: string; read_only?: boolean }[];
    }
  | { kind: "update_component"; host_id: string; component_id: string; new_component_ref: string }
  | {
      kind: "start_provider";
      host_id: string;
      provider_id: string;
      provider_ref: string;
      config: string[];
      annotations: Record<string, string>;
    }
  | { kind: "stop_provider"; host_id: string; provider_id: string }
);

/** Action phases, run in this order; actions of one phase run concurrently. */
export const Phase = {
  /** Inline config first: links and workloads name it. */
  Config: 0,
  /** Links next: a provider started afterwards gets them at start (reference §10 item 5). */
  Link: 1,
  /** Provider stops before a restart on the same host, component updates. */
  Prepare: 2,
  /** Provider starts and component scales. */
  Place: 3,
  /** Stale links, then stale workloads, then stale config. */
  RemoveLink: 4,
  RemoveWorkload: 5,
  RemoveConfig: 6,
} as const;

/** What a planner run found. */
export interface AppPlan {
  app: string;
  /** Sorted by phase. Empty: nothing to do. */
  actions: AppAction[];
  /** What cannot be done now (no matching host, a missing external config, a failed provider). */
  problems: string[];
  /** Work the lattice is still doing that needs no request (a provider starting or restarting). */
  pending: string[];
}

/** Status of a deployed app (wadm's `deployed` / `reconciling` / `failed`). */
export type AppStatusKind = "deployed" | "reconciling" | "failed";

/** A control request that failed during a deploy or undeploy. */
export interface ApplyFailure {
  /** {@link describeAction} of the request. */
  action: string;
  code: string;
  message: string;
}

/**
 * Plans the requests that bring the lattice from `observed` to `desired`.
 * @param applied what the app owned after its last deploy ({@link emptyApplied} for a new app).
 */
export function planApp(desired: DesiredState, observed: ObservedState, applied: AppliedState): AppPlan {
  const actions: AppAction[] = [];
  const problems: string[] = [];
  const pending: string[] = [];
  const app = desired.app;

  // ---- config
  const missing = new Set<string>();
  for (const [name, values] of Object.entries(desired.configs)) {
    const cur = observed.configs[name];
    if (cur === undefined || cur === null || !sameMap(cur, values)) {
      actions.push({ kind: "put_config", phase: Phase.Config, reason: cur ? "config values changed" : "config missing", name, values });
    }
  }
  for (const name of desired.externalConfigs) {
    if (observed.configs[name] === null) {
      missing.add(name);
      problems.push(`config ${name} does not exist (it is referenced by name only; create it with \`trellis config put ${name} KEY=VALUE\`)`);
    }
  }
  const blockedBy = (names: readonly string[]) => names.find((n) => missing.has(n));
  for (const name of applied.configs) {
    if (name in desired.configs || desired.externalConfigs.includes(name)) continue;
    if (observed.configs[name] !== null) {
      actions.push({ kind: "delete_config", phase: Phase.RemoveConfig, reason: "config no longer in the manifest", name });
    }
  }

  // ---- links
  const replaced: Link[] = [];
  for (const d of desired.links) {
    const blocker = blockedBy([...d.source_config, ...d.target_config]);
    if (blocker !== undefined) {
      if (!observed.links.some((o) => linksEqual(o, d))) problems.push(`link ${describeLink(d)} waits for config ${blocker}`);
      continue;
    }
    if (observed.links.some((o) => linksEqual(o, d))) continue;
    const sameKey = observed.links.filter(
      (o) => o.source_id === d.source_id && o.wit_namespace === d.wit_namespace && o.wit_package === d.wit_package && o.name === d.name,
    );
    const old =
      sameKey.find((o) => o.target === d.target) ??
      sameKey.find((o) => applied.links.some((a) => sameLinkTarget(a, o)) && !desired.links.some((x) => sameLinkTarget(x, o)));
    if (old) {
      replaced.push(old);
      actions.push({
        kind: "replace_link",
        phase: Phase.Link,
        reason: old.target === d.target ? "link values changed (links are immutable)" : `link re-pointed from ${old.target}`,
        delete: deleteKey(old),
        link: d,
      });
    } else {
      actions.push({ kind: "put_link", phase: Phase.Link, reason: "link missing", link: d });
    }
  }
  for (const o of observed.links) {
    if (!applied.links.some((a) => sameLinkTarget(a, o))) continue;
    if (desired.links.some((d) => sameLinkTarget(d, o)) || replaced.some((r) => sameLinkTarget(r, o))) continue;
    actions.push({ kind: "delete_link", phase: Phase.RemoveLink, reason: "link no longer in the manifest", delete: deleteKey(o) });
  }

  // ---- providers
  const ours = (a: Record<string, string> | undefined) => a?.[APPSPEC_ANNOTATION] === app && a[MANAGED_BY_ANNOTATION] === MANAGED_BY_TRELLIS;
  for (const p of desired.providers) planProvider(p, observed, applied, actions, problems, pending, blockedBy(p.config));
  const desiredProviders = new Set(desired.providers.map((p) => p.id));
  for (const h of observed.hosts) {
    for (const pr of h.providers) {
      if (desiredProviders.has(pr.id)) continue;
      if (pr.id in applied.providers || ours(pr.annotations)) {
        actions.push({ kind: "stop_provider", phase: Phase.RemoveWorkload, reason: "provider no longer in the manifest", host_id: h.id, provider_id: pr.id });
      }
    }
  }

  // ---- components
  for (const c of desired.components) planComponent(c, observed, applied, actions, problems, blockedBy(c.config));
  const desiredComponents = new Set(desired.components.map((c) => c.id));
  for (const h of observed.hosts) {
    for (const co of h.components) {
      if (desiredComponents.has(co.id)) continue;
      if (co.id in applied.components || ours(co.annotations)) {
        actions.push(stopComponent(h.id, co, "component no longer in the manifest"));
      }
    }
  }

  actions.sort((a, b) => a.phase - b.phase);
  return { app, actions, problems, pending };
}

function planProvider(
  p: DesiredWorkload,
  observed: ObservedState,
  applied: AppliedState,
  actions: AppAction[],
  problems: string[],
  pending: string[],
  blocker: string | undefined,
): void {
  const running = new Map<string, ProviderDescription>();
  for (const h of observed.hosts) {
    const pr = h.providers.find((x) => x.id === p.id);
    if (pr) running.set(h.id, pr);
  }
  const scaler = p.scaler ?? { type: "spreadscaler" as const, instances: 1, spread: [], path: "" };
  const { placed, problems: why } = placeProvider(scaler, observed.hosts, new Set(running.keys()));
  for (const w of why) problems.push(`provider ${p.name} (${p.id}): ${w}`);
  const prev = applied.providers[p.id];
  const changed = prev !== undefined && (prev.ref !== p.ref || !sameList(prev.config, p.config));
  const start = (hostId: string, reason: string) => {
    if (blocker !== undefined) {
      problems.push(`provider ${p.name} (${p.id}) waits for config ${blocker}`);
      return;
    }
    actions.push({
      kind: "start_provider",
      phase: Phase.Place,
      reason,
      host_id: hostId,
      provider_id: p.id,
      provider_ref: p.ref,
      config: [...p.config],
      annotations: { ...p.annotations },
    });
  };
  for (const hostId of placed) {
    const pr = running.get(hostId);
    if (!pr) {
      start(hostId, "provider not running on this host");
      continue;
    }
    if (changed && blocker === undefined) {
      actions.push({ kind: "stop_provider", phase: Phase.Prepare, reason: "provider ref or config changed: restart", host_id: hostId, provider_id: p.id });
      start(hostId, "provider ref or config changed: restart");
      continue;
    }
    if (pr.status === "failed") problems.push(`provider ${p.name} (${p.id}) failed on host ${hostId}`);
    else if (pr.status !== undefined && pr.status !== "running") pending.push(`provider ${p.name} (${p.id}) is ${pr.status} on host ${hostId}`);
  }
  for (const hostId of running.keys()) {
    if (!placed.has(hostId)) {
      actions.push({ kind: "stop_provider", phase: Phase.RemoveWorkload, reason: "host no longer selected by the scaler", host_id: hostId, provider_id: p.id });
    }
  }
}

function planComponent(
  c: DesiredWorkload,
  observed: ObservedState,
  applied: AppliedState,
  actions: AppAction[],
  problems: string[],
  blocker: string | undefined,
): void {
  const current = new Map<string, number>();
  const running = new Map<string, ComponentDescription>();
  for (const h of observed.hosts) {
    const co = h.components.find((x) => x.id === c.id);
    if (co) {
      running.set(h.id, co);
      current.set(h.id, co.max_instances);
    }
  }
  let placed = new Map<string, number>();
  if (c.scaler) {
    const r = placeComponent(c.scaler, observed.hosts, current);
    placed = r.placed;
    for (const w of r.problems) problems.push(`component ${c.name} (${c.id}): ${w}`);
  }
  const prev = applied.components[c.id];
  const refChanged = prev !== undefined && prev.ref !== c.ref;
  const configChanged = prev !== undefined && !sameList(prev.config, c.config);
  const scale = (hostId: string, count: number, phase: number, reason: string): AppAction => ({
    kind: "scale_component",
    phase,
    reason,
    host_id: hostId,
    component_id: c.id,
    component_ref: c.ref,
    count,
    config: [...c.config],
    annotations: { ...c.annotations },
    ...(c.preopens ? { preopens: c.preopens } : {}),
  });
  let waiting = false;
  for (const [hostId, want] of placed) {
    const have = running.get(hostId);
    if (blocker !== undefined && (!have || have.max_instances !== want || configChanged || refChanged)) {
      waiting = true;
      continue;
    }
    if (!have) {
      actions.push(scale(hostId, want, Phase.Place, "component not running on this host"));
      continue;
    }
    if (refChanged) {
      actions.push({ kind: "update_component", phase: Phase.Prepare, reason: `component ref changed from ${prev.ref}`, host_id: hostId, component_id: c.id, new_component_ref: c.ref });
    }
    if (have.max_instances !== want || configChanged) {
      actions.push(scale(hostId, want, Phase.Place, have.max_instances !== want ? `scale from ${have.max_instances}` : "config list changed"));
    }
  }
  if (waiting) problems.push(`component ${c.name} (${c.id}) waits for config ${blocker}`);
  for (const [hostId, co] of running) {
    if (!placed.has(hostId)) actions.push(stopComponent(hostId, co, c.scaler ? "host no longer selected by the scaler" : "component has no scaler trait"));
  }
}

function stopComponent(hostId: string, co: ComponentDescription, reason: string): AppAction {
  return {
    kind: "scale_component",
    phase: Phase.RemoveWorkload,
    reason,
    host_id: hostId,
    component_id: co.id,
    component_ref: co.image_ref,
    count: 0,
    config: [],
    annotations: co.annotations ?? {},
  };
}

function deleteKey(l: Link): LinkDeleteKey {
  return { source_id: l.source_id, wit_namespace: l.wit_namespace, wit_package: l.wit_package, name: l.name, target: l.target };
}

/** A one-line description of an action, e.g. `scale component app-hello on NABC… to 2`. */
export function describeAction(a: AppAction): string {
  switch (a.kind) {
    case "put_config":
      return `put config ${a.name}`;
    case "delete_config":
      return `delete config ${a.name}`;
    case "put_link":
      return `put link ${describeLink(a.link)}`;
    case "replace_link":
      return `replace link to ${a.delete.target} with ${describeLink(a.link)}`;
    case "delete_link":
      return `delete link ${a.delete.source_id} -[${a.delete.wit_namespace}:${a.delete.wit_package} @${a.delete.name}]-> ${a.delete.target}`;
    case "scale_component":
      return `scale component ${a.component_id} on ${shortHost(a.host_id)} to ${a.count}`;
    case "update_component":
      return `update component ${a.component_id} on ${shortHost(a.host_id)} to ${a.new_component_ref}`;
    case "start_provider":
      return `start provider ${a.provider_id} (${a.provider_ref}) on ${shortHost(a.host_id)}`;
    case "stop_provider":
      return `stop provider ${a.provider_id} on ${shortHost(a.host_id)}`;
  }
}

/** The first 12 characters of a host id and an ellipsis. */
export function shortHost(id: string): string {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}

/** A status report: the plan of the current state, summarized. */
export interface AppStatusReport {
  status: AppStatusKind;
  /** One line: what is left, or why it failed; empty when deployed. */
  message: string;
  /** What a deploy would still do ({@link describeAction} of each action). */
  missing: string[];
  problems: string[];
  pending: string[];
  /** Failures of the last deploy, when requests are still left to do. */
  failures: ApplyFailure[];
}

/**
 * `failed` when something cannot be done now (a plan problem) or the last deploy's requests failed and are still
 * needed; `deployed` when nothing is left; else `reconciling`.
 */
export function statusFromPlan(plan: AppPlan, lastFailures: readonly ApplyFailure[] = []): AppStatusReport {
  const missing = plan.actions.map(describeAction);
  const base = { missing, problems: [...plan.problems], pending: [...plan.pending] };
  if (plan.problems.length > 0) return { ...base, status: "failed", message: plan.problems.join("; "), failures: [] };
  if (plan.actions.length === 0 && plan.pending.length === 0) return { ...base, status: "deployed", message: "", failures: [] };
  if (plan.actions.length > 0 && lastFailures.length > 0) {
    return {
      ...base,
      status: "failed",
      message: lastFailures.map((f) => `${f.action}: ${f.message}`).join("; "),
      failures: [...lastFailures],
    };
  }
  const parts = [...missing, ...plan.pending];
  return { ...base, status: "reconciling", message: `${parts.length} thing(s) left: ${parts.slice(0, 3).join("; ")}${parts.length > 3 ? "; …" : ""}`, failures: [] };
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
