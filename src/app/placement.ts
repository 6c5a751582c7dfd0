/**
 * Placement of components and providers on hosts by `spreadscaler` / `daemonscaler` traits (reference §8.2): pure
 * functions of the trait, the hosts (ids and labels) and where the workload runs now. Stable: given its own result as
 * the current state, a placement returns the same result, so re-deploying changes nothing.
 *
 * - {@link computeSpread} splits `instances` over the spreads by weight exactly as wadm's `compute_spread`.
 * - Components, spreadscaler: each spread's share is split evenly over the hosts whose labels match its
 *   `requirements` (wadm puts it all on one host); the remainder goes to the hosts that run the most already, then by
 *   host id. `instances` is the component's `max_instances` summed over hosts.
 * - Components, daemonscaler: every host that matches any spread (every host when there is none) runs `instances`.
 * - Providers, spreadscaler: `instances` is a number of hosts (one provider per host); each spread takes its share of
 *   matching hosts not yet taken, preferring hosts that run it already, then by host id.
 * - Providers, daemonscaler: every host that matches any spread (every host when there is none).
 * @module
 */
import type { ScalerTrait, Spread } from "./manifest.ts";

/** A host as placement sees it. */
export interface PlacementHost {
  id: string;
  labels: Record<string, string>;
}

/** A placement and what could not be placed. */
export interface Placement<T> {
  placed: T;
  /** Human-readable reasons the trait is not satisfiable now (e.g. no host matches a spread). */
  problems: string[];
}

/** True when `labels` carry every requirement with the same value. */
export function matchesRequirements(labels: Record<string, string>, requirements: Record<string, string>): boolean {
  return Object.entries(requirements).every(([k, v]) => labels[k] === v);
}

/**
 * wadm's `compute_spread`: spreads ordered by weight (highest first, stable), each given
 * `floor(instances × weight / total weight)`, the rounding remainder handed out one by one from the first. No
 * spread: one spread named `default` without requirements takes everything.
 */
export function computeSpread(instances: number, spreads: readonly Spread[]): { spread: Spread; count: number }[] {
  if (spreads.length === 0) return [{ spread: { name: "default", requirements: {}, weight: 100 }, count: instances }];
  const sorted = [...spreads].sort((a, b) => b.weight - a.weight);
  const total = sorted.reduce((s, x) => s + x.weight, 0);
  const out = sorted.map((spread) => ({ spread, count: Math.floor((instances * spread.weight) / total) }));
  let diff = instances - out.reduce((s, x) => s + x.count, 0);
  for (const o of out) {
    if (diff <= 0) break;
    o.count += 1;
    diff -= 1;
  }
  return out;
}

function byId(a: PlacementHost, b: PlacementHost): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function eligibleForAny(scaler: ScalerTrait, hosts: readonly PlacementHost[]): PlacementHost[] {
  if (scaler.spread.length === 0) return [...hosts].sort(byId);
  return hosts.filter((h) => scaler.spread.some((s) => matchesRequirements(h.labels, s.requirements))).sort(byId);
}

function describe(s: Spread): string {
  const req = Object.entries(s.requirements).map(([k, v]) => `${k}=${v}`);
  return `spread ${s.name}${req.length ? ` (${req.join(", ")})` : ""}`;
}

/**
 * Where a component runs and with how many instances.
 * @param current host id → `max_instances` now (hosts not listed run none).
 * @returns host id → desired `max_instances` (hosts not listed run none).
 */
export function placeComponent(
  scaler: ScalerTrait,
  hosts: readonly PlacementHost[],
  current: ReadonlyMap<string, number>,
): Placement<Map<string, number>> {
  const placed = new Map<string, number>();
  const problems: string[] = [];
  if (scaler.instances === 0) return { placed, problems };
  if (scaler.type === "daemonscaler") {
    const eligible = eligibleForAny(scaler, hosts);
    if (eligible.length === 0) problems.push(`no host matches any spread of the daemonscaler`);
    for (const h of eligible) placed.set(h.id, scaler.instances);
    return { placed, problems };
  }
  // Pass 1: every spread's even base share. Pass 2: the remainders, to the hosts that run more than their base now.
  const residual = new Map(current);
  const add = (id: string, n: number) => {
    placed.set(id, (placed.get(id) ?? 0) + n);
    residual.set(id, (residual.get(id) ?? 0) - n);
  };
  const shares: { eligible: PlacementHost[]; extra: number }[] = [];
  for (const { spread, count } of computeSpread(scaler.instances, scaler.spread)) {
    if (count === 0) continue;
    const eligible = hosts.filter((h) => matchesRequirements(h.labels, spread.requirements)).sort(byId);
    if (eligible.length === 0) {
      problems.push(`${describe(spread)}: no host matches, ${count} instance(s) not placed`);
      continue;
    }
    const base = Math.floor(count / eligible.length);
    if (base > 0) for (const h of eligible) add(h.id, base);
    shares.push({ eligible, extra: count % eligible.length });
  }
  // most constrained spreads first, so that a broad spread does not take the hosts a narrow one needs
  shares.sort((a, b) => a.eligible.length - b.eligible.length);
  for (const { eligible, extra } of shares) {
    const order = [...eligible].sort((a, b) => (residual.get(b.id) ?? 0) - (residual.get(a.id) ?? 0) || byId(a, b));
    for (const h of order.slice(0, extra)) add(h.id, 1);
  }
  return { placed, problems };
}

/**
 * On which hosts a provider runs (one instance per host).
 * @param running ids of the hosts that run it now.
 */
export function placeProvider(
  scaler: ScalerTrait,
  hosts: readonly PlacementHost[],
  running: ReadonlySet<string>,
): Placement<Set<string>> {
  const placed = new Set<string>();
  const problems: string[] = [];
  if (scaler.instances === 0) return { placed, problems };
  if (scaler.type === "daemonscaler") {
    const eligible = eligibleForAny(scaler, hosts);
    if (eligible.length === 0) problems.push(`no host matches any spread of the daemonscaler`);
    for (const h of eligible) placed.add(h.id);
    return { placed, problems };
  }
  // most constrained spreads first, so that a broad spread does not take the hosts a narrow one needs
  const spreads = computeSpread(scaler.instances, scaler.spread)
    .map((s) => ({ ...s, matching: hosts.filter((h) => matchesRequirements(h.labels, s.spread.requirements)).length }))
    .sort((a, b) => a.matching - b.matching);
  for (const { spread, count } of spreads) {
    if (count === 0) continue;
    const eligible = hosts
      .filter((h) => !placed.has(h.id) && matchesRequirements(h.labels, spread.requirements))
      .sort((a, b) => Number(running.has(b.id)) - Number(running.has(a.id)) || byId(a, b));
    for (const h of eligible.slice(0, count)) placed.add(h.id);
    if (eligible.length < count) {
      problems.push(`${describe(spread)}: ${eligible.length} of ${count} provider instance(s) placed (one per host, ${eligible.length} free matching host(s))`);
    }
  }
  return { placed, problems };
}
