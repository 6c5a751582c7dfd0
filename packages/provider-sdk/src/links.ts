/**
 * The provider's link table: delivers each link once, keeps per-link resources, and turns changes into a delete
 * callback followed by a put callback (seed link-definitions.md "idempotent", reference §10.4 — never a silent drop).
 * @module
 */
import type { InterfaceLinkDefinition } from "../../wire/src/core/link.ts";
import type { Logger } from "../../wire/src/core/logger.ts";
import { linkIdentity, sameLinkDefinition } from "../../wire/src/provider/host-data.ts";
import type { ProviderContext, ProviderDefinition, ProviderLink } from "./types.ts";
import type { SecretValue } from "./secrets.ts";

/** What happened to a put or a delete. */
export type LinkOutcome = "added" | "replaced" | "duplicate" | "deleted" | "unknown" | "not-mine" | "failed";

interface Entry<R> {
  link: ProviderLink;
  resource: R | undefined;
}

/** Builds the provider's view of a link definition; undefined when the provider is neither source nor target. */
export function toProviderLink(
  def: InterfaceLinkDefinition,
  providerId: string,
  openSecrets?: (sealed: number[] | null) => Record<string, SecretValue>,
): ProviderLink | undefined {
  const role = def.source_id === providerId ? "source" : def.target === providerId ? "target" : undefined;
  if (!role) return undefined;
  const sealed = role === "source" ? def.source_secrets : def.target_secrets;
  return Object.freeze({
    role,
    sourceId: def.source_id,
    target: def.target,
    name: def.name,
    namespace: def.wit_namespace,
    package: def.wit_package,
    interfaces: Object.freeze([...def.interfaces]),
    peerId: role === "source" ? def.target : def.source_id,
    config: Object.freeze({ ...(role === "source" ? def.source_config : def.target_config) }),
    secrets: Object.freeze(sealed && openSecrets ? openSecrets(sealed) : {}),
    definition: def,
  });
}

/** Releases a resource: `Symbol.asyncDispose`, else `Symbol.dispose`, else a `close()` method, else nothing. */
export async function releaseResource(resource: unknown): Promise<void> {
  if (typeof resource !== "object" || resource === null) return;
  const r = resource as Record<PropertyKey, unknown>;
  if (typeof r[Symbol.asyncDispose] === "function") await (r[Symbol.asyncDispose] as () => Promise<void>).call(resource);
  else if (typeof r[Symbol.dispose] === "function") (r[Symbol.dispose] as () => void).call(resource);
  else if (typeof r.close === "function") await (r.close as () => unknown).call(resource);
}

/** Default of {@link ProviderDefinition.linkDrainMs}: 2 s. */
export const DEFAULT_LINK_DRAIN_MS = 2_000;

/** Links known to one provider, with their resources. Not thread-safe: callers serialize (see provider.ts). */
export class LinkTable<R> {
  readonly #providerId: string;
  readonly #def: ProviderDefinition<R>;
  readonly #logger: Logger;
  readonly #onTrace: (event: string, data: Record<string, unknown>) => void;
  readonly #openSecrets: ((sealed: number[] | null) => Record<string, SecretValue>) | undefined;
  readonly #entries = new Map<string, Entry<R>>();
  /** Deleted links still answering calls that were sent before their callers saw the delete. */
  readonly #draining = new Map<string, { entry: Entry<R>; timer: NodeJS.Timeout }>();

  constructor(
    providerId: string,
    def: ProviderDefinition<R>,
    logger: Logger,
    onTrace: (event: string, data: Record<string, unknown>) => void,
    openSecrets?: (sealed: number[] | null) => Record<string, SecretValue>,
  ) {
    this.#openSecrets = openSecrets;
    this.#providerId = providerId;
    this.#def = def;
    this.#logger = logger;
    this.#onTrace = onTrace;
  }

  /** True when a link with this identity is known. */
  has(def: Pick<InterfaceLinkDefinition, "source_id" | "target" | "wit_namespace" | "wit_package" | "name">): boolean {
    return this.#entries.has(linkIdentity(def));
  }

  /** Every known link. */
  links(): ProviderLink[] {
    return [...this.#entries.values()].map((e) => e.link);
  }

  /**
   * The entry for (peer id, link name[, `ns:pkg`]); target links first. With `draining`, a link deleted less than
   * `linkDrainMs` ago is found when no live one matches (what calls in flight during a re-link need).
   */
  find(peerId: string, linkName: string, pkg?: string, draining = false): Entry<R> | undefined {
    const live = this.#match(this.#entries.values(), peerId, linkName, pkg);
    if (live || !draining) return live;
    return this.#match([...this.#draining.values()].map((d) => d.entry), peerId, linkName, pkg);
  }

  #match(entries: Iterable<Entry<R>>, peerId: string, linkName: string, pkg?: string): Entry<R> | undefined {
    let best: Entry<R> | undefined;
    for (const e of entries) {
      const l = e.link;
      if (l.peerId !== peerId || l.name !== linkName) continue;
      if (pkg !== undefined && `${l.namespace}:${l.package}` !== pkg) continue;
      if (l.role === "target") return e;
      best ??= e;
    }
    return best;
  }

  /**
   * Applies a put: a duplicate (same identity, interfaces and config) is ignored; a changed one is delivered as a
   * delete of the old then a put of the new; a new one calls the put hook of its role and records its resource.
   */
  async put(def: InterfaceLinkDefinition, ctx: ProviderContext<R>): Promise<LinkOutcome> {
    let link: ProviderLink | undefined;
    try {
      link = toProviderLink(def, this.#providerId, this.#openSecrets);
    } catch (err) {
      this.#logger.error("ignoring a link put whose secrets cannot be opened", { source_id: def.source_id, target: def.target, error: (err as Error).message });
      return "failed";
    }
    if (!link) {
      this.#logger.warn("ignoring a link put that names neither this provider as source nor as target", { source_id: def.source_id, target: def.target });
      return "not-mine";
    }
    const id = linkIdentity(def);
    const old = this.#entries.get(id);
    if (old && sameLinkDefinition(old.link.definition, def)) {
      this.#logger.debug("ignoring duplicate link put", describe(link));
      return "duplicate";
    }
    if (old) {
      this.#logger.info("link changed: delivering a delete of the old link, then a put of the new one", describe(link));
      await this.#remove(id, old, ctx);
    }
    const hook = link.role === "source" ? this.#def.linkPutAsSource : this.#def.linkPutAsTarget;
    let resource: R | undefined;
    try {
      resource = (await hook?.call(this.#def, link, ctx)) ?? undefined;
    } catch (err) {
      this.#logger.error("link put hook failed; the link is not recorded (a later put retries it)", { ...describe(link), error: String(err) });
      return "failed";
    }
    this.#entries.set(id, { link, resource });
    this.#onTrace("link_put", { role: link.role, ...identityOf(def), interfaces: link.interfaces, config: link.config });
    this.#logger.info("link added", describe(link));
    return old ? "replaced" : "added";
  }

  /**
   * Applies a delete: calls the delete hook at once; the link keeps answering calls (see {@link find}) and keeps its
   * resource for `linkDrainMs`, then the resource is released — also when the same link is put again meanwhile (the
   * new link answers calls at once; calls in flight on the old resource finish). A delete of an unknown link is
   * ignored.
   */
  async delete(def: InterfaceLinkDefinition, ctx: ProviderContext<R>): Promise<LinkOutcome> {
    const id = linkIdentity(def);
    const old = this.#entries.get(id);
    if (!old) {
      this.#logger.debug("ignoring delete of an unknown link", { ...identityOf(def) });
      return "unknown";
    }
    const drainMs = this.#def.linkDrainMs ?? DEFAULT_LINK_DRAIN_MS;
    await this.#endDrain(id); // an older generation of this link still draining goes now
    await this.#remove(id, old, ctx, drainMs <= 0);
    if (drainMs > 0) {
      const timer = setTimeout(() => void this.#endDrain(id), drainMs);
      timer.unref();
      this.#draining.set(id, { entry: old, timer });
    }
    return "deleted";
  }

  /** Ends the drain of a deleted link (when there is one) and releases its resource. */
  async #endDrain(id: string): Promise<void> {
    const d = this.#draining.get(id);
    if (!d) return;
    this.#draining.delete(id);
    clearTimeout(d.timer);
    await this.#release(d.entry);
  }

  async #release(e: Entry<R>): Promise<void> {
    try {
      await releaseResource(e.resource);
    } catch (err) {
      this.#logger.error("releasing a link resource failed", { ...describe(e.link), error: String(err) });
    }
  }

  async #remove(id: string, e: Entry<R>, ctx: ProviderContext<R>, release = true): Promise<void> {
    this.#entries.delete(id);
    try {
      await this.#def.linkDeleted?.call(this.#def, e.link, e.resource, ctx);
    } catch (err) {
      this.#logger.error("link delete hook failed", { ...describe(e.link), error: String(err) });
    }
    if (release) await this.#release(e);
    this.#onTrace("link_del", { role: e.link.role, ...identityOf(e.link.definition) });
    this.#logger.info("link removed", describe(e.link));
  }

  /** Releases every resource (at shutdown), without calling hooks. */
  async releaseAll(): Promise<void> {
    const all = [...this.#entries.values(), ...[...this.#draining.values()].map((d) => d.entry)];
    for (const d of this.#draining.values()) clearTimeout(d.timer);
    this.#draining.clear();
    this.#entries.clear();
    await Promise.allSettled(all.map((e) => releaseResource(e.resource)));
  }
}

function identityOf(d: InterfaceLinkDefinition) {
  return { source_id: d.source_id, target: d.target, name: d.name, wit_namespace: d.wit_namespace, wit_package: d.wit_package };
}

function describe(l: ProviderLink) {
  return { role: l.role, source_id: l.sourceId, target: l.target, link_name: l.name, package: `${l.namespace}:${l.package}`, interfaces: l.interfaces };
}
