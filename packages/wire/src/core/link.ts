/**
 * The link wire type (reference §2.1) and its provider-facing form (reference §2.2).
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { validateId } from "./ids.ts";

/** The link name used when none is given. */
export const DEFAULT_LINK_NAME = "default";

/**
 * A link: binds a source to a target for a WIT namespace:package and some of its interfaces, under a link name,
 * with named config on each side (reference §2.1; JSON field names are the wire names).
 */
export interface Link {
  /** The importer / caller (component id or provider id). */
  source_id: string;
  /** The exporter / callee (component id or provider id). */
  target: string;
  /** Link name; `default` when none is given. */
  name: string;
  /** WIT namespace, e.g. `wasi`. */
  wit_namespace: string;
  /** WIT package, e.g. `keyvalue`. */
  wit_package: string;
  /** WIT interfaces of that package, e.g. `["store", "atomics"]`. */
  interfaces: string[];
  /** Names of configs given to the source, merged left to right. */
  source_config: string[];
  /** Names of configs given to the target, merged left to right. */
  target_config: string[];
}

/** The key links are deleted by: (source, namespace, package, link name) (reference §2.4). */
export interface LinkKey {
  source_id: string;
  wit_namespace: string;
  wit_package: string;
  name: string;
}

/** A link as a provider sees it, with its named configs resolved and merged (reference §2.2). */
export interface InterfaceLinkDefinition {
  source_id: string;
  target: string;
  name: string;
  wit_namespace: string;
  wit_package: string;
  interfaces: string[];
  source_config: Record<string, string>;
  target_config: Record<string, string>;
  source_secrets: number[] | null;
  target_secrets: number[] | null;
}

function stringList(field: string, value: unknown, itemField: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InvalidArgumentError(field, `${field} must be an array of strings`);
  return value.map((v, i) => validateId(`${itemField}[${i}]`, v));
}

/**
 * Validates and normalizes a link from untrusted JSON: fills `name` (`default`) and the config lists (`[]`),
 * sorts and de-duplicates `interfaces`.
 * @throws InvalidArgumentError naming the first bad field (missing, wrong type, empty, too long, unsafe characters).
 */
export function parseLink(value: unknown): Link {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError("link", "a link must be a JSON object");
  }
  const v = value as Record<string, unknown>;
  const interfaces = stringList("interfaces", v.interfaces, "interfaces");
  if (v.interfaces === undefined) throw new InvalidArgumentError("interfaces", "interfaces is required");
  if (interfaces.length === 0) throw new InvalidArgumentError("interfaces", "interfaces must name at least one interface");
  return {
    source_id: validateId("source_id", v.source_id),
    target: validateId("target", v.target),
    name: v.name === undefined || v.name === null ? DEFAULT_LINK_NAME : validateId("name", v.name),
    wit_namespace: validateId("wit_namespace", v.wit_namespace),
    wit_package: validateId("wit_package", v.wit_package),
    interfaces: [...new Set(interfaces)].sort(),
    source_config: stringList("source_config", v.source_config, "source_config"),
    target_config: stringList("target_config", v.target_config, "target_config"),
  };
}

/**
 * Validates a delete request `{ source_id, wit_namespace, wit_package, name?, target? }` (reference §2.4;
 * `target` is a Trellis extension that narrows the delete).
 * @throws InvalidArgumentError naming the bad field.
 */
export function parseLinkKey(value: unknown): LinkKey & { target?: string } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError("request", "a link delete request must be a JSON object");
  }
  const v = value as Record<string, unknown>;
  const key: LinkKey & { target?: string } = {
    source_id: validateId("source_id", v.source_id),
    wit_namespace: validateId("wit_namespace", v.wit_namespace),
    wit_package: validateId("wit_package", v.wit_package),
    name: v.name === undefined || v.name === null || v.name === "" ? DEFAULT_LINK_NAME : validateId("name", v.name),
  };
  if (v.target !== undefined && v.target !== null && v.target !== "") key.target = validateId("target", v.target);
  return key;
}

/** True when `link` has the delete key `key` (and `key.target`, when given). */
export function matchesKey(link: Link, key: LinkKey & { target?: string }): boolean {
  return (
    link.source_id === key.source_id &&
    link.wit_namespace === key.wit_namespace &&
    link.wit_package === key.wit_package &&
    link.name === key.name &&
    (key.target === undefined || link.target === key.target)
  );
}

/** True when two normalized links have the same values in all eight fields. */
export function linksEqual(a: Link, b: Link): boolean {
  return (
    a.source_id === b.source_id &&
    a.target === b.target &&
    a.name === b.name &&
    a.wit_namespace === b.wit_namespace &&
    a.wit_package === b.wit_package &&
    sameList([...a.interfaces].sort(), [...b.interfaces].sort()) &&
    sameList(a.source_config, b.source_config) &&
    sameList(a.target_config, b.target_config)
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A short human label: `source -[ns:pkg/{a,b} @name]-> target`. */
export function describeLink(l: Pick<Link, "source_id" | "target" | "name" | "wit_namespace" | "wit_package" | "interfaces">): string {
  return `${l.source_id} -[${l.wit_namespace}:${l.wit_package}/{${l.interfaces.join(",")}} @${l.name}]-> ${l.target}`;
}

/**
 * The links of a component that it cannot use: links whose interfaces it does not import (checked when it starts).
 * @param imports the component's imported interfaces, keyed by full name.
 */
export function unusableLinks(
  links: readonly Link[],
  imports: Record<string, unknown>,
  importedFunctions: Record<string, unknown> = {},
): { link: Link; interfaces: string[] }[] {
  // world-level imported functions are linked as trellis:world/{name} (docs/protocol.md §2)
  const have = new Set([...Object.keys(imports).map((n) => n.replace(/@[^@/]*$/, "")), ...Object.keys(importedFunctions).map((f) => `trellis:world/${f}`)]);
  return links
    .map((link) => ({ link, interfaces: link.interfaces.map((i) => `${link.wit_namespace}:${link.wit_package}/${i}`).filter((w) => !have.has(w)) }))
    .filter((x) => x.interfaces.length > 0);
}
