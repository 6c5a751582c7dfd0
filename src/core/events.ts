/**
 * Lattice events: CloudEvents 1.0 on `wasmbus.evt.{lattice}.{type}` (reference §5).
 * @module
 */
import { randomUUID } from "node:crypto";

/** Event names Trellis publishes (reference §5). */
export const EventType = {
  HostStarted: "host_started",
  HostStopped: "host_stopped",
  HostHeartbeat: "host_heartbeat",
  LinkdefSet: "linkdef_set",
  LinkdefSetFailed: "linkdef_set_failed",
  LinkdefDeleted: "linkdef_deleted",
  ConfigSet: "config_set",
  ConfigDeleted: "config_deleted",
  LabelsChanged: "labels_changed",
  ComponentScaled: "component_scaled",
  ComponentScaleFailed: "component_scale_failed",
  ProviderStarted: "provider_started",
  ProviderStartFailed: "provider_start_failed",
  ProviderStopped: "provider_stopped",
  HealthCheckPassed: "health_check_passed",
  HealthCheckFailed: "health_check_failed",
  HealthCheckStatus: "health_check_status",
  /** Trellis: a link put for interfaces its source does not import or its target does not export (src/link/check.ts). */
  LinkdefWarning: "linkdef_warning",
  /** Trellis: a component started with links for interfaces it does not import. */
  ComponentLinksUnused: "component_links_unused",
} as const;
/** One of {@link EventType}'s values. */
export type EventType = (typeof EventType)[keyof typeof EventType];

/** A CloudEvents 1.0 envelope as wasmCloud 1.x hosts publish it (reference §5). */
export interface CloudEvent<T = Record<string, unknown>> {
  specversion: "1.0";
  id: string;
  /** `com.wasmcloud.lattice.{event_name}`. */
  type: string;
  /** The publishing host's id (`N…`). */
  source: string;
  /** RFC 3339 UTC. */
  time: string;
  datacontenttype: "application/json";
  data: T;
}

/** Builds a CloudEvent for `eventName` from host `source`. */
export function cloudEvent<T>(eventName: string, source: string, data: T): CloudEvent<T> {
  return {
    specversion: "1.0",
    id: randomUUID(),
    type: `com.wasmcloud.lattice.${eventName}`,
    source,
    time: new Date().toISOString(),
    datacontenttype: "application/json",
    data,
  };
}

/** The event name of a CloudEvent's `type` (`com.wasmcloud.lattice.linkdef_set` → `linkdef_set`). */
export function eventName(ev: Pick<CloudEvent, "type">): string {
  const i = ev.type.lastIndexOf(".");
  return i < 0 ? ev.type : ev.type.slice(i + 1);
}
