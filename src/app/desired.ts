/**
 * What a manifest asks of the lattice (reference §8.3): workloads with their ids, refs, config and scaler, the inline
 * config the app owns, the external config it needs, and its links — and the {@link AppliedState} bookkeeping kept
 * with a deployed app so that a later deploy knows what it owns.
 * @module
 */
import type { Link } from "../core/link.ts";
import {
  type AppManifest,
  type ConfigRef,
  type ManifestComponent,
  type ScalerTrait,
  componentId,
  configName,
} from "./manifest.ts";

/** Annotation key naming who manages a workload (wadm's key; value {@link MANAGED_BY_TRELLIS}). */
export const MANAGED_BY_ANNOTATION = "wasmcloud.dev/managed-by";
/** Annotation key naming the app a workload belongs to (wadm's key; value: the manifest name). */
export const APPSPEC_ANNOTATION = "wasmcloud.dev/appspec";
/** Annotation key naming the scaler that placed a workload (wadm's key; value `{trait type}/{component name}`). */
export const SCALER_ANNOTATION = "wasmcloud.dev/scaler";
/** Value of {@link MANAGED_BY_ANNOTATION} on workloads Trellis apps place. */
export const MANAGED_BY_TRELLIS = "trellis";

/** A component or provider the app runs. */
export interface DesiredWorkload {
  /** Manifest name. */
  name: string;
  /** Component or provider id on the lattice. */
  id: string;
  /** `component_ref` / `provider_ref`. */
  ref: string;
  /** Config names passed at scale / start, in manifest order. */
  config: string[];
  /**
   * How it is placed. Components without a scaler trait are not run (as in wadm); providers without one get a
   * `spreadscaler` of 1 instance (as in wadm).
   */
  scaler: ScalerTrait | undefined;
  /** Annotations sent with scale / start requests. */
  annotations: Record<string, string>;
  /** Trellis: host directories given to a component (`properties.preopens`). */
  preopens?: { host_path: string; guest_path?: string; read_only?: boolean }[];
}

/** Everything a manifest asks for, with lattice ids resolved. */
export interface DesiredState {
  app: string;
  components: DesiredWorkload[];
  providers: DesiredWorkload[];
  /** Inline config the app owns: stored name → values. */
  configs: Record<string, Record<string, string>>;
  /** Config referenced by name only: must exist, never written or deleted by the app. */
  externalConfigs: string[];
  /** Links, normalized as the host stores them (interfaces sorted). */
  links: Link[];
}

/** Ref and config list a workload was last deployed with. */
export interface AppliedWorkload {
  ref: string;
  config: string[];
}

/**
 * What a deployed app owns on the lattice, as recorded with it: what a later deploy removes when the manifest no
 * longer asks for it, and the ref / config list each workload was placed with (a change causes an update).
 */
export interface AppliedState {
  /** Inline config names. */
  configs: string[];
  links: Link[];
  components: Record<string, AppliedWorkload>;
  providers: Record<string, AppliedWorkload>;
}

/** Nothing owned. */
export function emptyApplied(): AppliedState {
  return { configs: [], links: [], components: {}, providers: {} };
}

/** Desired state of an app that should be gone (undeploy). */
export function emptyDesired(app: string): DesiredState {
  return { app, components: [], providers: [], configs: {}, externalConfigs: [], links: [] };
}

/** Resolves a manifest into lattice terms (reference §8.3 ids, config names, annotations). */
export function desiredState(m: AppManifest): DesiredState {
  const configs: Record<string, Record<string, string>> = {};
  const external = new Set<string>();
  const names = (refs: ConfigRef[]) =>
    refs.map((r) => {
      const n = configName(m.name, r);
      if (r.properties === undefined) external.add(n);
      else configs[n] = { ...r.properties };
      return n;
    });
  const ids = new Map(m.components.map((c) => [c.name, componentId(m.name, c)]));
  const workload = (c: ManifestComponent): DesiredWorkload => {
    const scaler: ScalerTrait | undefined =
      c.scaler ?? (c.type === "capability" ? { type: "spreadscaler", instances: 1, spread: [], path: `${c.path}.traits` } : undefined);
    return {
      name: c.name,
      id: componentId(m.name, c),
      ref: c.image,
      config: names(c.config),
      scaler,
      annotations: {
        [MANAGED_BY_ANNOTATION]: MANAGED_BY_TRELLIS,
        [APPSPEC_ANNOTATION]: m.name,
        [SCALER_ANNOTATION]: `${scaler?.type ?? "none"}/${c.name}`,
      },
      ...(c.preopens ? { preopens: c.preopens } : {}),
    };
  };
  const links: Link[] = [];
  for (const c of m.components) {
    for (const l of c.links) {
      links.push({
        source_id: componentId(m.name, c),
        target: ids.get(l.target) ?? l.target,
        name: l.name,
        wit_namespace: l.namespace,
        wit_package: l.package,
        interfaces: [...l.interfaces],
        source_config: names(l.sourceConfig),
        target_config: names(l.targetConfig),
      });
    }
  }
  const state: DesiredState = {
    app: m.name,
    components: m.components.filter((c) => c.type === "component").map(workload),
    providers: m.components.filter((c) => c.type === "capability").map(workload),
    configs,
    externalConfigs: [],
    links,
  };
  for (const n of Object.keys(configs)) external.delete(n);
  state.externalConfigs = [...external].sort();
  return state;
}

/** What the app owns once `d` is fully applied. */
export function appliedFrom(d: DesiredState): AppliedState {
  const wl = (ws: DesiredWorkload[]) => Object.fromEntries(ws.map((w) => [w.id, { ref: w.ref, config: [...w.config] }]));
  return {
    configs: Object.keys(d.configs).sort(),
    links: d.links.map((l) => ({ ...l })),
    components: wl(d.components),
    providers: wl(d.providers),
  };
}

/**
 * The conservative union kept while a deploy is under way or after one that failed: every config and link either
 * state owns (so nothing is forgotten and left behind), and for workloads already owned their previous ref and config
 * (so an update that may not have happened is tried again).
 */
export function mergeApplied(prev: AppliedState, next: AppliedState): AppliedState {
  const links = [...prev.links];
  for (const l of next.links) if (!links.some((p) => sameLinkTarget(p, l))) links.push(l);
  return {
    configs: [...new Set([...prev.configs, ...next.configs])].sort(),
    links,
    components: { ...next.components, ...prev.components },
    providers: { ...next.providers, ...prev.providers },
  };
}

/** Same (source, namespace, package, link name, target): the identity of a link for ownership. */
export function sameLinkTarget(a: Link, b: Link): boolean {
  return (
    a.source_id === b.source_id &&
    a.wit_namespace === b.wit_namespace &&
    a.wit_package === b.wit_package &&
    a.name === b.name &&
    a.target === b.target
  );
}

/** Every config name whose current value the planner needs: inline and external of `d`, and owned ones. */
export function configNamesToObserve(d: DesiredState, applied: AppliedState): string[] {
  return [...new Set([...Object.keys(d.configs), ...d.externalConfigs, ...applied.configs])].sort();
}
