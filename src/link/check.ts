/**
 * Links checked against the parties they join (issue 11 G): when the source's imports or the target's exports are
 * known, a link for interfaces the source does not import, or the target does not export, is reported — a warning
 * in the `link.put` reply and a `linkdef_warning` event, or an error with `strict`.
 *
 * What is known comes from the parties themselves, wherever in the lattice they run: every Trellis target answers
 * `trellis:runtime/introspect.world` (docs/protocol.md §11). A component declares both its imports and its exports;
 * a provider declares what it serves (exports) but not what it calls, so a provider as a source is never reported.
 * A party that is not running (no responders), or does not answer in time, is not checked.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Link } from "../core/link.ts";
import { invoke } from "../../packages/wire/src/invocation/client.ts";
import { INTROSPECT_IFACE, INTROSPECT_TYPE, INTROSPECT_WORLD_FN, WORLD_LINK_NAMESPACE, WORLD_LINK_PACKAGE, type WorldDescription } from "../../packages/wire/src/invocation/server.ts";

/** Looks up what a party (component or provider id) imports and exports; undefined when unknown. */
export type WorldLookup = (id: string) => Promise<WorldDescription | undefined>;

/** One mismatch between a link and a party. */
export interface LinkMismatch {
  /** Which end of the link. */
  party: "source" | "target";
  /** The party's id. */
  id: string;
  /** The interfaces (`namespace:package/interface`, no version) the party does not import (source) / export (target). */
  interfaces: string[];
  /** One line for humans. */
  message: string;
}

/** Default time budget of one introspection request, ms. */
export const DEFAULT_CHECK_TIMEOUT_MS = 750;

/**
 * A {@link WorldLookup} that asks the party over the lattice (`trellis:runtime/introspect.world`).
 * @param timeoutMs budget per request. @default DEFAULT_CHECK_TIMEOUT_MS
 */
export function introspectionLookup(nc: NatsConnection, lattice: string, timeoutMs = DEFAULT_CHECK_TIMEOUT_MS): WorldLookup {
  return async (id) => {
    try {
      const text = (await invoke(nc, { lattice, targetId: id, iface: INTROSPECT_IFACE, fn: INTROSPECT_WORLD_FN, sourceId: "trellis-link-check", timeoutMs }, INTROSPECT_TYPE, [])) as string;
      const w = JSON.parse(text) as WorldDescription;
      return typeof w === "object" && w !== null && typeof w.exports === "object" ? w : undefined;
    } catch {
      return undefined; // not running, not a Trellis target, too slow: unknown
    }
  };
}

const strip = (name: string): string => name.replace(/@[^@/]*$/, "");

/**
 * `ns:pkg/iface` names (no version) in a map keyed by full interface names, plus world-level functions as
 * `trellis:world/{name}` (how links name them, docs/protocol.md §2).
 */
function names(m: Record<string, unknown>, worldFns: Record<string, unknown> = {}): Set<string> {
  return new Set([...Object.keys(m).map(strip), ...Object.keys(worldFns).map((f) => `${WORLD_LINK_NAMESPACE}:${WORLD_LINK_PACKAGE}/${f}`)]);
}

/**
 * Compares a link with what its parties declare.
 * @returns one entry per party that lacks some of the link's interfaces (empty when all fit or nothing is known).
 */
export async function checkLink(link: Link, lookup: WorldLookup): Promise<LinkMismatch[]> {
  const wanted = link.interfaces.map((i) => `${link.wit_namespace}:${link.wit_package}/${i}`);
  const [src, tgt] = await Promise.all([lookup(link.source_id), link.target === link.source_id ? undefined : lookup(link.target)]);
  const out: LinkMismatch[] = [];
  if (src && src.importsKnown !== false) {
    const have = names(src.imports, src.importedFunctions);
    const missing = wanted.filter((w) => !have.has(w));
    if (missing.length > 0) {
      out.push({ party: "source", id: link.source_id, interfaces: missing, message: `source ${link.source_id} does not import ${missing.join(", ")}` });
    }
  }
  if (tgt) {
    const have = names(tgt.exports, tgt.exportedFunctions);
    const missing = wanted.filter((w) => !have.has(w));
    if (missing.length > 0) {
      out.push({ party: "target", id: link.target, interfaces: missing, message: `target ${link.target} does not export ${missing.join(", ")}` });
    }
  }
  return out;
}
