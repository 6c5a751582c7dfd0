/**
 * The link rules, as pure functions over one source's component specification.
 *
 * - put (reference §2.3, seed link-definitions.md "Immutable Links"): an identical re-put is accepted and changes
 *   nothing; a put with the same (source, namespace, package, link name, target) but other interfaces or config is
 *   rejected because links are immutable; a put that points an overlapping interface of the same
 *   (source, namespace, package, link name) at another target is rejected as a conflict.
 * - delete (reference §2.4, plus an optional target): removes every link with the key; idempotent.
 * @module
 */
import type { ComponentSpecification } from "../core/host.ts";
import { type Link, type LinkKey, describeLink, linksEqual, matchesKey } from "../core/link.ts";
import { InvalidArgumentError, LinkConflictError, LinkImmutableError } from "../core/errors.ts";

/** Result of {@link applyPut}: whether the link was added or was already there, identical. */
export type PutOutcome = "created" | "unchanged";

/** An empty spec, as a link put creates it before the source ever ran (reference §3.2: `url` is `""`). */
export function emptySpec(): ComponentSpecification {
  return { url: "", links: [] };
}

/**
 * Applies a put of `link` to the source's spec.
 * @returns the new spec (undefined when unchanged) and the outcome.
 * @throws LinkImmutableError when a link with the same key and target exists with other values.
 * @throws LinkConflictError when an overlapping interface of the same key points at another target.
 */
export function applyPut(
  current: ComponentSpecification | undefined,
  link: Link,
): { spec?: ComponentSpecification; result: PutOutcome } {
  const spec = current ?? emptySpec();
  const key: LinkKey = {
    source_id: link.source_id,
    wit_namespace: link.wit_namespace,
    wit_package: link.wit_package,
    name: link.name,
  };
  for (const existing of spec.links) {
    if (!matchesKey(existing, key)) continue;
    if (existing.target === link.target) {
      if (linksEqual(existing, link)) return { result: "unchanged" };
      throw new LinkImmutableError(
        `link ${describeLink(existing)} already exists with other values; links are immutable: ` +
          "delete it and put it again to change its interfaces or config",
        { existing, requested: link },
      );
    }
    const overlap = existing.interfaces.filter((i) => link.interfaces.includes(i));
    if (overlap.length > 0) {
      throw new LinkConflictError(
        `link already exists with different target (${existing.target}) for ${link.wit_namespace}:${link.wit_package}/` +
          `{${overlap.join(",")}} under link name ${link.name}; delete the existing link or use a different link name`,
        { existing, requested: link },
      );
    }
  }
  return { spec: { url: spec.url, links: [...spec.links, link] }, result: "created" };
}

/**
 * Applies a delete of every link with `key` (narrowed by `key.target` when given).
 * @returns the new spec (undefined when nothing matched) and the links removed.
 */
export function applyDelete(
  current: ComponentSpecification | undefined,
  key: LinkKey & { target?: string },
): { spec?: ComponentSpecification; result: Link[] } {
  if (!current) return { result: [] };
  const removed = current.links.filter((l) => matchesKey(l, key));
  if (removed.length === 0) return { result: [] };
  return { spec: { url: current.url, links: current.links.filter((l) => !matchesKey(l, key)) }, result: removed };
}

/**
 * Applies a delete then a put in one step (the atomic re-link of `link.replace`).
 * @throws InvalidArgumentError when the delete key and the new link have different sources (two KV keys cannot
 *   change atomically); whatever {@link applyPut} throws after the delete.
 */
export function applyReplace(
  current: ComponentSpecification | undefined,
  key: LinkKey & { target?: string },
  link: Link,
): { spec?: ComponentSpecification; result: { removed: Link[]; outcome: PutOutcome } } {
  if (key.source_id !== link.source_id) {
    throw new InvalidArgumentError(
      "link.source_id",
      `replace needs the same source for the deleted and the new link (${key.source_id} ≠ ${link.source_id})`,
    );
  }
  const del = applyDelete(current, key);
  const afterDelete = del.spec ?? current;
  const put = applyPut(afterDelete, link);
  const spec = put.spec ?? del.spec;
  return spec
    ? { spec, result: { removed: del.result, outcome: put.result } }
    : { result: { removed: del.result, outcome: put.result } };
}
