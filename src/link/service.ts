/**
 * Link operations of the control interface (`link.put`, `link.del`, `link.get`, `link.replace`), on the lattice's
 * KV data, with their events (reference §2.3, §2.4, §5).
 * @module
 */
import { type Link, type LinkKey, describeLink, parseLink, parseLinkKey } from "../core/link.ts";
import { EventType } from "../core/events.ts";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import type { EventPublisher } from "../core/ports.ts";
import type { Logger } from "../core/logger.ts";
import type { SpecStore } from "../lattice/spec-store.ts";
import type { ConfigStore } from "../lattice/config-store.ts";
import { type PutOutcome, applyDelete, applyPut, applyReplace } from "./rules.ts";
import type { ProviderLinkNotifier } from "./notify.ts";
import { checkLink, type LinkMismatch, type WorldLookup } from "./check.ts";

/** A `link.replace` request: the key of the link(s) to delete and the link to put, in one KV update. */
export interface LinkReplaceRequest {
  delete: LinkKey & { target?: string };
  link: Link;
}

/** Link operations over KV, with events. */
export class LinkService {
  readonly #specs: SpecStore;
  readonly #config: ConfigStore;
  readonly #events: EventPublisher;
  readonly #logger: Logger;
  readonly #notifier: ProviderLinkNotifier | undefined;
  readonly #lookup: WorldLookup | undefined;

  /**
   * @param notifier tells providers of puts and deletes; none in tests that need no providers.
   * @param lookup finds what a link's parties import and export (src/link/check.ts); none: links are not checked.
   */
  constructor(specs: SpecStore, config: ConfigStore, events: EventPublisher, logger: Logger, notifier?: ProviderLinkNotifier, lookup?: WorldLookup) {
    this.#specs = specs;
    this.#config = config;
    this.#events = events;
    this.#logger = logger;
    this.#notifier = notifier;
    this.#lookup = lookup;
  }

  /**
   * {@link put} that also checks the link against its parties (issue 11 G): interfaces the source does not import or
   * the target does not export come back as warnings and a `linkdef_warning` event; with `strict: true` in the
   * request (a Trellis extension of `link.put`) they fail the put instead (nothing is written).
   * @throws as {@link put}; InvalidArgumentError naming the mismatch in strict mode.
   */
  async putChecked(raw: unknown): Promise<{ outcome: PutOutcome; warnings: LinkMismatch[] }> {
    const strict = typeof raw === "object" && raw !== null && (raw as { strict?: unknown }).strict === true;
    const link = parseLink(raw);
    if (!strict) {
      // not strict: the put is answered as before; the check runs after it and reports by log and event only
      const outcome = await this.put(raw);
      if (this.#lookup) {
        const lookup = this.#lookup;
        setTimeout(() => {
          checkLink(link, lookup).then(
            (warnings) => this.#warn(link, warnings),
            (err: unknown) => this.#logger.debug("link check failed", { error: String(err) }),
          );
        }, 0).unref();
      }
      return { outcome, warnings: [] };
    }
    const warnings = this.#lookup ? await checkLink(link, this.#lookup) : [];
    if (warnings.length > 0) {
      const err = new TrellisError(ErrorCode.InvalidArgument, `link ${describeLink(link)} refused (strict): ${warnings.map((w) => w.message).join("; ")}`, {
        details: { field: "interfaces", mismatches: warnings },
      });
      this.#events.publish(EventType.LinkdefSetFailed, { ...link, error: err.message });
      throw err;
    }
    return { outcome: await this.put(raw), warnings };
  }

  #warn(link: Link, warnings: LinkMismatch[]): void {
    if (warnings.length === 0) return;
    this.#logger.warn("link does not fit its parties", { source_id: link.source_id, target: link.target, warnings: warnings.map((w) => w.message) });
    this.#events.publish(EventType.LinkdefWarning, { ...link, warnings: warnings.map((w) => w.message) });
  }

  /**
   * Validates and puts a link (reference §2.3 with the immutability rule). Emits `linkdef_set`, or
   * `linkdef_set_failed` with the error.
   * @param raw untrusted JSON of a {@link Link}.
   * @returns `created`, or `unchanged` for an identical re-put.
   * @throws InvalidArgumentError for a malformed link; NotFoundError for a missing named config;
   *   LinkImmutableError; LinkConflictError; TrellisError `LATTICE_ERROR`.
   */
  async put(raw: unknown): Promise<PutOutcome> {
    const link = parseLink(raw);
    try {
      await this.#requireConfigs(link);
      const outcome = await this.#specs.mutate(link.source_id, (cur) => applyPut(cur, link));
      if (outcome === "created") await this.#notifier?.put(link);
      this.#events.publish(EventType.LinkdefSet, { ...link });
      return outcome;
    } catch (err) {
      this.#events.publish(EventType.LinkdefSetFailed, { ...link, error: (err as Error).message });
      throw err;
    }
  }

  /**
   * Deletes every link with the key `(source_id, wit_namespace, wit_package, name)`, narrowed by `target` when given
   * (reference §2.4). Idempotent. Emits one `linkdef_deleted` per removed link, or one without target when none
   * matched an existing spec.
   * @returns the links removed.
   * @throws InvalidArgumentError for a malformed key; TrellisError `LATTICE_ERROR`.
   */
  async delete(raw: unknown): Promise<Link[]> {
    const key = parseLinkKey(raw);
    const removed = await this.#specs.mutate(key.source_id, (cur) => applyDelete(cur, key));
    for (const l of removed) this.#notifier?.delete(l);
    this.#publishDeleted(key, removed);
    return removed;
  }

  /**
   * Deletes the links with `delete`'s key and puts `link` as one KV update, so that routing flips atomically while
   * providers still see a delete then a put (Trellis extension `link.replace`).
   * @throws as {@link put} and {@link delete}; InvalidArgumentError when the two sources differ.
   */
  async replace(raw: unknown): Promise<{ removed: Link[]; outcome: PutOutcome }> {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new TrellisError(ErrorCode.InvalidArgument, "link.replace needs a JSON object { delete, link }", {
        details: { field: "request" },
      });
    }
    const r = raw as Record<string, unknown>;
    if (r.delete === undefined) throw new TrellisError(ErrorCode.InvalidArgument, "link.replace: delete is required", { details: { field: "delete" } });
    if (r.link === undefined) throw new TrellisError(ErrorCode.InvalidArgument, "link.replace: link is required", { details: { field: "link" } });
    const key = parseLinkKey(r.delete);
    const link = parseLink(r.link);
    try {
      await this.#requireConfigs(link);
      const res = await this.#specs.mutate(link.source_id, (cur) => applyReplace(cur, key, link));
      for (const l of res.removed) this.#notifier?.delete(l);
      if (res.outcome === "created") await this.#notifier?.put(link);
      this.#publishDeleted(key, res.removed);
      this.#events.publish(EventType.LinkdefSet, { ...link });
      return res;
    } catch (err) {
      this.#events.publish(EventType.LinkdefSetFailed, { ...link, error: (err as Error).message });
      throw err;
    }
  }

  /**
   * Every link in the lattice (reference §1.4 `link.get`), after this host's watch has caught up with every write
   * made before the call.
   */
  async list(): Promise<Link[]> {
    await this.#specs.sync();
    return this.#specs.allLinks();
  }

  #publishDeleted(key: LinkKey, removed: Link[]): void {
    const base = { source_id: key.source_id, name: key.name, wit_namespace: key.wit_namespace, wit_package: key.wit_package };
    if (removed.length === 0) {
      this.#events.publish(EventType.LinkdefDeleted, base);
      return;
    }
    for (const l of removed) this.#events.publish(EventType.LinkdefDeleted, { ...base, target: l.target, interfaces: l.interfaces });
  }

  async #requireConfigs(link: Link): Promise<void> {
    const names = [...new Set([...link.source_config, ...link.target_config])];
    const missing: string[] = [];
    await Promise.all(
      names.map(async (n) => {
        if ((await this.#config.get(n)) === undefined) missing.push(n);
      }),
    );
    if (missing.length > 0) {
      missing.sort();
      this.#logger.debug("link put names missing config", { missing });
      throw new TrellisError(
        ErrorCode.NotFound,
        `Failed to validate configuration and secrets. Configuration ${missing.join(", ")} not found in config store.`,
        { details: { configs: missing } },
      );
    }
  }
}
