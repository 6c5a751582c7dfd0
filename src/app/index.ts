/**
 * Application manifests in wadm's OAM format (reference §8): parse and validate ({@link parseManifestText}), plan
 * ({@link planApp}), store for the hosts' resident reconciler or apply ({@link deployApp}, {@link applyApp}), status,
 * list, undeploy, watch. docs/apps.md; ADR 0012 (superseding ADR 0006).
 * @module
 */
export {
  parseManifest,
  parseManifestText,
  computeId,
  sanitize,
  componentId,
  configName,
  OAM_API_VERSION,
  APPLICATION_KIND,
  DEFAULT_SPREAD_WEIGHT,
} from "./manifest.ts";
export type { AppManifest, ParsedManifest, ManifestComponent, ConfigRef, Spread, ScalerTrait, LinkTrait } from "./manifest.ts";
export {
  desiredState,
  emptyDesired,
  emptyApplied,
  appliedFrom,
  mergeApplied,
  MANAGED_BY_ANNOTATION,
  APPSPEC_ANNOTATION,
  SCALER_ANNOTATION,
  MANAGED_BY_TRELLIS,
} from "./desired.ts";
export type { DesiredState, DesiredWorkload, AppliedState, AppliedWorkload } from "./desired.ts";
export { computeSpread, placeComponent, placeProvider, matchesRequirements } from "./placement.ts";
export type { PlacementHost, Placement } from "./placement.ts";
export { planApp, statusFromPlan, describeAction, Phase } from "./planner.ts";
export type {
  AppAction,
  AppPlan,
  AppStatusKind,
  AppStatusReport,
  ApplyFailure,
  ObservedHost,
  ObservedState,
  LinkDeleteKey,
} from "./planner.ts";
export { observeLattice } from "./observe.ts";
export type { ObserveOptions } from "./observe.ts";
export { applyActions, runAction, waitForApp, DEFAULT_WAIT_TIMEOUT_MS } from "./applier.ts";
export type { WaitOptions, WaitResult } from "./applier.ts";
export { AppStore } from "./store.ts";
export type { AppRecord } from "./store.ts";
export { deployApp, undeployApp, reconcileApp, getAppStatus, listApps, watchApp, manifestVersion, canonicalJson } from "./deploy.ts";
export type { DeployOptions, DeployOutcome, DeployResult, UndeployResult, AppStatusResult, WatchOptions } from "./deploy.ts";
export { applyApp, applyUndeploy, resolveApplyBy } from "./deploy.ts";
export type { ApplyBy } from "./deploy.ts";
export { Reconciler, Lease, readLease, HostTracker } from "./reconciler/index.ts";
export type { ReconcilerOptions, LeaseOptions, LeaseRecord, LostHost } from "./reconciler/index.ts";
