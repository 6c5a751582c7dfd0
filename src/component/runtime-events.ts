/**
 * The lattice events the component runtime publishes about its components (reference §5, issue 11 G):
 * `component_scaled`, `component_scale_failed` and `component_links_unused` (the last one with a log warning).
 * @module
 */
import { EventType } from "../core/events.ts";
import { describeLink, unusableLinks } from "../core/link.ts";
import type { Logger } from "../core/logger.ts";
import type { EventPublisher, LinkSource } from "../core/ports.ts";
import type { ComponentTypes } from "./component-types.ts";
import { componentEventClaims, type ComponentMetadata, type Token } from "../claims/index.ts";

/** Where the runtime's events go: the host's event publisher and the id of this host (`host_id` of each event). */
export interface EventSink {
  events: EventPublisher;
  hostId: string;
}

/** The component a `component_scaled` event is about. */
export interface ScaledComponent {
  id: string;
  imageRef: string;
  annotations: Record<string, string>;
  /** Its verified embedded claims: the event then carries `public_key` and `claims`. */
  claims?: Token<ComponentMetadata> | undefined;
}

/** Publishes `component_scaled` for `m` now running `maxInstances` instances at most (0: stopped). */
export function publishScaled(sink: EventSink, m: ScaledComponent, maxInstances: number): void {
  sink.events.publish(EventType.ComponentScaled, {
    annotations: m.annotations,
    host_id: sink.hostId,
    image_ref: m.imageRef,
    max_instances: maxInstances,
    component_id: m.id,
    ...(m.claims ? { public_key: m.claims.claims.sub, claims: componentEventClaims(m.claims) } : {}),
  });
}

/** What a `component_scale_failed` event says: the component, the reference and instance limit asked for, and why. */
export interface ScaleFailure {
  componentId: string;
  imageRef: string;
  maxInstances: number;
  annotations: Record<string, string>;
  /** The failure's message. */
  error: string;
}

/** Publishes `component_scale_failed` for `f`. */
export function publishScaleFailed(sink: EventSink, f: ScaleFailure): void {
  sink.events.publish(EventType.ComponentScaleFailed, {
    annotations: f.annotations,
    host_id: sink.hostId,
    image_ref: f.imageRef,
    component_id: f.componentId,
    max_instances: f.maxInstances,
    error: f.error,
  });
}

/**
 * Says (log warning, `component_links_unused` event) when component `id` has links it cannot use: links whose
 * interfaces the component does not import (issue 11 G). Nothing when every link is usable.
 */
export function reportUnusableLinks(
  sink: EventSink & { links: LinkSource; logger: Logger },
  id: string,
  types: Pick<ComponentTypes, "imports" | "importedFunctions">,
): void {
  const bad = unusableLinks(sink.links.linksFrom(id), types.imports, types.importedFunctions);
  if (bad.length === 0) return;
  const messages = bad.map((b) => `link ${describeLink(b.link)}: component ${id} does not import ${b.interfaces.join(", ")}`);
  sink.logger.warn("component has links it cannot use", { component_id: id, links: messages });
  sink.events.publish(EventType.ComponentLinksUnused, { component_id: id, host_id: sink.hostId, links: messages });
}
