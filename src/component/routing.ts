/**
 * Import routing (issue 3 §4): which imports the host implements itself, and the table that maps
 * (interface, link name) to a target for every other import, built from a component's outbound links
 * (reference §2.5: `link_name → "ns:pkg/iface" → target`, version suffix ignored).
 * @module
 */
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { DEFAULT_LINK_NAME, type Link } from "../core/link.ts";
import { stripVersion } from "../core/subjects.ts";

/** Interfaces the host implements locally (never routed by links), by unversioned name or `namespace:package/*`. */
const LOCAL_PACKAGES = new Set(["wasi:io", "wasi:cli", "wasi:clocks", "wasi:random", "wasi:filesystem", "wasi:sockets"]);
const LOCAL_INTERFACES = new Set([
  "wasi:http/types",
  "wasi:http/outgoing-handler",
  "wasi:logging/logging",
  "wasi:config/store",
  "wasi:config/runtime",
  "wasmcloud:bus/lattice",
  "wasi:blobstore/types",
  "wasmcloud:secrets/store",
  "wasmcloud:secrets/reveal",
]);

/** True when the host implements `iface` itself (WASI, logging, config, the bus); false when links route it. */
export function isLocalInterface(iface: string): boolean {
  const name = stripVersion(iface);
  if (LOCAL_INTERFACES.has(name)) return true;
  const slash = name.indexOf("/");
  return slash > 0 && LOCAL_PACKAGES.has(name.slice(0, slash));
}

/** `wasi:keyvalue/store@0.2.0` → `{ namespace: "wasi", package: "keyvalue", interface: "store" }`. */
export function splitInterface(iface: string): { namespace: string; package: string; interface: string } | undefined {
  const m = /^([^:/@]+):([^:/@]+)\/([^:/@]+)(@.*)?$/.exec(iface);
  return m ? { namespace: m[1]!, package: m[2]!, interface: m[3]! } : undefined;
}

/** Routing table of one component: `linkName → unversioned interface → target id`. Plain data (crosses threads). */
export type LinkTable = Record<string, Record<string, string>>;

/** Builds the routing table from a component's outbound links. */
export function buildLinkTable(links: readonly Link[]): LinkTable {
  const table: LinkTable = {};
  for (const l of links) {
    const byIface = (table[l.name] ??= {});
    for (const i of l.interfaces) byIface[`${l.wit_namespace}:${l.wit_package}/${i}`] = l.target;
  }
  return table;
}

/** The import had no link: names the component, the interface and the link name (issue 3 §4). */
export class LinkNotFoundError extends TrellisError {
  constructor(componentId: string, iface: string, linkName: string) {
    super(
      ErrorCode.LinkNotFound,
      `component ${componentId} has no link for interface ${stripVersion(iface)} with link name "${linkName}"` +
        ` (put a link: source_id=${componentId}, wit_namespace/wit_package/interfaces for ${stripVersion(iface)}, name=${linkName})`,
      { details: { componentId, iface: stripVersion(iface), linkName } },
    );
    this.name = "LinkNotFoundError";
  }
}

/**
 * The target for a call of `iface` under `linkName`.
 * @throws LinkNotFoundError when the table has no such link.
 */
export function resolveTarget(table: LinkTable, componentId: string, iface: string, linkName = DEFAULT_LINK_NAME): string {
  const target = table[linkName]?.[stripVersion(iface)];
  if (target === undefined) throw new LinkNotFoundError(componentId, iface, linkName);
  return target;
}
