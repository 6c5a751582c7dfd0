/**
 * wadm's API and lattice state, wire-compatible, on Trellis' app store and planner: the `wadm.api.{lattice}.model.*`
 * server every host runs ({@link WadmServer}), the operations behind it ({@link WadmApi}, also used by `trellis app
 * get|history|put|delete`), the version history ({@link ModelStore}) and the `wadm_state` writer
 * ({@link WadmStateWriter}). docs/apps.md "wadm API"; ADR 0013.
 * @module
 */
export { WadmApi, LATEST_VERSION, errorReply, parseVersionBody } from "./api.ts";
export type { WadmApiOptions } from "./api.ts";
export { WadmServer, parseWadmSubject, DEFAULT_WADM_MAX_PAYLOAD_BYTES } from "./server.ts";
export type { WadmServerOptions, ParsedWadmSubject } from "./server.ts";
export { ModelStore, currentVersion, fromAppRecord, ulid } from "./models.ts";
export type { StoredModel, ModelVersion } from "./models.ts";
export {
  WadmStateWriter,
  DEFAULT_WADM_HOST_EXPIRY_MS,
  openWadmState,
  updateComponents,
  updateHosts,
  updateProviders,
  wadmHostEntry,
  wadmProviderStatus,
} from "./state.ts";
export type { WadmStateWriterOptions } from "./state.ts";
export { statusInfo, wadmStatus, wadmStatusFromApp } from "./status.ts";
export type * from "./types.ts";
