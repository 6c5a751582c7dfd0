/**
 * wadm's API wire shapes (wasmCloud/wadm@589e98b3 `crates/wadm-types/src/api.rs`; what
 * `@wasmcloud/lattice-client-core` `controllers/applications.ts` and `wash app …` read) and its `wadm_state` entries
 * (`crates/wadm/src/storage/state.rs`, read by lattice-client-core `controllers/hosts.ts` / `providers.ts`).
 * Field names and enum strings are wadm's, byte for byte. docs/apps.md "wadm API"; ADR 0013.
 * @module
 */

/** `GetResult` (lower-case): outcome of `model.get` (one or list) and `model.versions`. */
export type GetResult = "error" | "success" | "notfound";
/** `PutResult`: `created` for the first version of a name, `newversion` after. */
export type PutResult = "error" | "created" | "newversion";
/** `DeleteResult`. */
export type DeleteResult = "deleted" | "error" | "noop";
/** `DeployResult`: outcome of `model.deploy` / `model.undeploy`. */
export type DeployResultKind = "error" | "acknowledged" | "notfound";
/** `StatusResult`. */
export type StatusResult = "error" | "ok" | "notfound";
/** `StatusType` (lower-case). Trellis produces `undeployed`, `reconciling`, `deployed`, `failed`. */
export type StatusType = "waiting" | "undeployed" | "reconciling" | "deployed" | "failed" | "unhealthy";

/** The reply every handler sends on a failure it cannot express otherwise (wadm `Handler::send_error`). */
export interface ErrorReply {
  result: "error";
  message: string;
}

/** `StatusInfo`: `message` is left out when empty (serde `skip_serializing_if = "String::is_empty"`). */
export interface StatusInfo {
  type: StatusType;
  message?: string;
}

/** `ScalerStatus`. `kind`: `SpreadScaler`, `DaemonScaler`, `LinkScaler`, `ConfigScaler`. */
export interface ScalerStatus {
  id: string;
  kind: string;
  name: string;
  status: StatusInfo;
}

/** `Status`: `scalers` is left out when empty; `version` and `components` are deprecated and always `""` / `[]`. */
export interface WadmStatus {
  status: StatusInfo;
  scalers?: ScalerStatus[];
  version: string;
  components: unknown[];
}

/** `ModelSummary`, one row of `model.get` (list). */
export interface ModelSummary {
  name: string;
  version: string;
  description: string | null;
  deployed_version: string | null;
  detailed_status: WadmStatus;
  /** Deprecated in wadm 0.14; `waiting` is reported as `undeployed` here, as wadm does. */
  status: StatusType;
  status_message: string | null;
}

/** `ListModelsResponse` (`model.get` without a name). */
export interface ListModelsResponse {
  result: GetResult;
  message: string;
  models: ModelSummary[];
}

/** `GetModelResponse` (`model.get.{name}`); `manifest` is left out unless found. */
export interface GetModelResponse {
  result: GetResult;
  message: string;
  manifest?: Record<string, unknown>;
}

/** `PutModelResponse` (`model.put`). */
export interface PutModelResponse {
  result: PutResult;
  total_versions: number;
  current_version: string;
  message: string;
  name: string;
}

/** `VersionInfo`. */
export interface VersionInfo {
  version: string;
  deployed: boolean;
}

/** `VersionResponse` (`model.versions.{name}`). */
export interface VersionResponse {
  result: GetResult;
  message: string;
  versions: VersionInfo[];
}

/** `DeleteModelResponse` (`model.del.{name}`). `undeploy`: the deployed version went away. */
export interface DeleteModelResponse {
  result: DeleteResult;
  message: string;
  undeploy: boolean;
}

/** `DeployModelResponse` (`model.deploy.{name}` and `model.undeploy.{name}`). */
export interface DeployModelResponse {
  result: DeployResultKind;
  message: string;
  name: string;
  version: string | null;
}

/** `StatusResponse` (`model.status.{name}`); `status` is left out unless `ok`. */
export interface StatusResponse {
  result: StatusResult;
  message: string;
  status?: WadmStatus;
}

/** Any reply of the wadm API. */
export type WadmReply =
  | ErrorReply
  | ListModelsResponse
  | GetModelResponse
  | PutModelResponse
  | VersionResponse
  | DeleteModelResponse
  | DeployModelResponse
  | StatusResponse;

// ---- wadm_state -------------------------------------------------------------------------------

/** `ProviderInfo` in a host entry. */
export interface WadmProviderInfo {
  provider_id: string;
  provider_ref: string;
  annotations: Record<string, string>;
}

/** `Host`: one value of the `host_{lattice}` map (keyed by host id). */
export interface WadmHost {
  /** component id → instances (`max_instances`). */
  components: Record<string, number>;
  friendly_name: string;
  labels: Record<string, string>;
  providers: WadmProviderInfo[];
  uptime_seconds: number;
  /** Semver of the host, or null. */
  version: string | null;
  id: string;
  /** RFC 3339. */
  last_seen: string;
}

/** `WadmComponentInfo`: one set of instances of a component on a host. */
export interface WadmComponentInfo {
  annotations: Record<string, string>;
  count: number;
}

/** `Component`: one value of the `component_{lattice}` map (keyed by component id). */
export interface WadmComponent {
  id: string;
  name: string;
  issuer: string;
  /** host id → instance sets. */
  instances: Record<string, WadmComponentInfo[]>;
  reference: string;
}

/** `ProviderStatus` (serde unit variants: capitalized). */
export type WadmProviderStatus = "Pending" | "Running" | "Failed";

/** `Provider`: one value of the `provider_{lattice}` map (keyed by provider id). */
export interface WadmProvider {
  id: string;
  name: string;
  issuer: string;
  reference: string;
  hosts: Record<string, WadmProviderStatus>;
}
