/**
 * Component specifications (`COMPONENT_{id}` in `LATTICEDATA_{lattice}`, reference §3.2) and the live map of links
 * they hold.
 *
 * Writes are read-modify-write against the revision read, retried on conflict (reference §3.5 describes the lost
 * update wasmCloud 1.x suffers; we do not). Mutations of one key queued on this host are applied together in one
 * write, so hundreds of concurrent link puts for one source cost a handful of KV round trips.
 *
 * Every host watches the bucket: the link map is loaded at start and then follows every change, and listeners learn
 * which links were added and removed (src/core/ports.ts `LinkSource`).
 * @module
 */
import type { KV, KvEntry } from "@nats-io/kv";
import { COMPONENT_SPEC_PREFIX, componentSpecKey } from "../core/subjects.ts";
import type { ComponentSpecification } from "../core/host.ts";
import { type Link, linksEqual } from "../core/link.ts";
import type { LinkChange, LinkSource } from "../core/ports.ts";
import type { Logger } from "../core/logger.ts";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { type BucketWatch, isRevisionConflict, kvFailure, liveValue, putAtRevision, watchBucket } from "./kv.ts";

/** What a mutation returns: the new spec to write (undefined: leave the key as it is) and a result for the caller. */
export interface SpecMutation<R> {
  spec?: ComponentSpecification;
  result: R;
}

/** A pure function of the current spec (undefined when the key does not exist). It may throw to reject. */
export type SpecMutator<R> = (current: ComponentSpecification | undefined) => SpecMutation<R>;

interface Pending {
  mutate: SpecMutator<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** Most attempts of one batched read-modify-write before giving up. */
export const MAX_SPEC_WRITE_ATTEMPTS = 50;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Parses a stored spec; a malformed value is logged and read as empty so that a bad write cannot wedge a source. */
function decodeSpec(bytes: Uint8Array, key: string, logger: Logger): ComponentSpecification {
  try {
    const v = JSON.parse(decoder.decode(bytes)) as Partial<ComponentSpecification>;
    return { url: typeof v.url === "string" ? v.url : "", links: Array.isArray(v.links) ? v.links : [] };
  } catch (err) {
    logger.warn("malformed component specification in KV; treating it as empty", { key, error: String(err) });
    return { url: "", links: [] };
  }
}

/** Component specifications in KV, with batched revision-checked writes and a watched link map. */
export class SpecStore implements LinkSource {
  readonly #kv: KV;
  readonly #logger: Logger;
  readonly #queues = new Map<string, Pending[]>();
  readonly #links = new Map<string, readonly Link[]>();
  readonly #urls = new Map<string, string>();
  readonly #listeners = new Set<(change: LinkChange) => void>();
  readonly #specListeners = new Set<(id: string, spec: ComponentSpecification | undefined) => void>();
  #watch: BucketWatch | undefined;

  private constructor(kv: KV, logger: Logger) {
    this.#kv = kv;
    this.#logger = logger;
  }

  /**
   * Loads every `COMPONENT_*` entry, then follows the bucket.
   * @param kv the `LATTICEDATA_{lattice}` bucket.
   */
  static async open(kv: KV, logger: Logger): Promise<SpecStore> {
    const store = new SpecStore(kv, logger);
    await store.#startWatch();
    return store;
  }

  async #startWatch(): Promise<void> {
    this.#watch = await watchBucket(
      this.#kv,
      (entry) => this.#apply(entry),
      (err) => {
        if (err !== undefined) this.#logger.warn("LATTICEDATA watch failed", { error: String(err) });
      },
      { logger: this.#logger },
    );
  }

  #apply(entry: KvEntry): void {
    if (!entry.key.startsWith(COMPONENT_SPEC_PREFIX)) return;
    const id = entry.key.slice(COMPONENT_SPEC_PREFIX.length);
    const bytes = liveValue(entry);
    const spec = bytes ? decodeSpec(bytes, entry.key, this.#logger) : undefined;
    this.#setLinks(id, spec);
    for (const l of this.#specListeners) safeCall(() => l(id, spec), this.#logger);
  }

  #setLinks(id: string, spec: ComponentSpecification | undefined): void {
    const before = this.#links.get(id) ?? [];
    const after = spec?.links ?? [];
    if (spec) this.#urls.set(id, spec.url);
    else this.#urls.delete(id);
    if (after.length === 0) this.#links.delete(id);
    else this.#links.set(id, after);
    const added = after.filter((l) => !before.some((b) => linksEqual(b, l)));
    const removed = before.filter((b) => !after.some((l) => linksEqual(b, l)));
    if (added.length === 0 && removed.length === 0) return;
    const change: LinkChange = { sourceId: id, added, removed, links: after };
    for (const l of this.#listeners) safeCall(() => l(change), this.#logger);
  }

  /** {@inheritDoc LinkSource.linksFrom} */
  linksFrom(sourceId: string): readonly Link[] {
    return this.#links.get(sourceId) ?? [];
  }

  /** {@inheritDoc LinkSource.linksTo} */
  linksTo(targetId: string): readonly Link[] {
    const out: Link[] = [];
    for (const links of this.#links.values()) for (const l of links) if (l.target === targetId) out.push(l);
    return out;
  }

  /** Every link in the lattice, as this host knows it now. */
  allLinks(): Link[] {
    return [...this.#links.values()].flat();
  }

  /** The url of `COMPONENT_{id}` as this host knows it now (undefined when there is no spec). */
  specUrl(id: string): string | undefined {
    return this.#urls.get(id);
  }

  /** {@inheritDoc LinkSource.onChange} */
  onChange(listener: (change: LinkChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` for every put or delete of a `COMPONENT_{id}` entry seen by the watch. */
  onSpec(listener: (id: string, spec: ComponentSpecification | undefined) => void): () => void {
    this.#specListeners.add(listener);
    return () => this.#specListeners.delete(listener);
  }

  /**
   * Waits until this host's link map reflects every write made to the bucket before the call
   * (read-your-writes across hosts).
   * @param timeoutMs how long to wait. @default 2000
   * @throws TimeoutError when the watch does not catch up in time.
   */
  async sync(timeoutMs = 2000): Promise<void> {
    await this.#watch?.sync(timeoutMs);
  }

  /** Reads `COMPONENT_{id}` from KV (not from the watched map). */
  async read(id: string): Promise<ComponentSpecification | undefined> {
    const bytes = liveValue(await this.#kv.get(componentSpecKey(id)));
    return bytes ? decodeSpec(bytes, componentSpecKey(id), this.#logger) : undefined;
  }

  /**
   * Applies `mutate` to `COMPONENT_{id}` as one revision-checked read-modify-write, retried on conflict.
   * Mutations queued for the same key on this host are applied in order in one write; one that throws is rejected
   * alone and leaves the spec as the others see it.
   * @returns the mutation's `result` once its write (if any) is durable.
   * @throws whatever `mutate` throws; TrellisError `LATTICE_ERROR` after {@link MAX_SPEC_WRITE_ATTEMPTS} conflicts
   *   or when KV fails.
   */
  mutate<R>(id: string, mutate: SpecMutator<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const key = componentSpecKey(id);
      const pending: Pending = { mutate, resolve: resolve as (v: unknown) => void, reject };
      const queue = this.#queues.get(key);
      if (queue) {
        queue.push(pending);
        return;
      }
      this.#queues.set(key, [pending]);
      void this.#drain(key);
    });
  }

  async #drain(key: string): Promise<void> {
    for (;;) {
      const batch = this.#queues.get(key) ?? [];
      if (batch.length === 0) {
        this.#queues.delete(key);
        return;
      }
      this.#queues.set(key, []);
      await this.#writeBatch(key, batch);
    }
  }

  async #writeBatch(key: string, batch: Pending[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let entry: KvEntry | null;
      try {
        entry = await this.#kv.get(key);
      } catch (err) {
        const e = kvFailure(`cannot read ${key}`, err);
        for (const p of batch) p.reject(e);
        return;
      }
      const bytes = liveValue(entry);
      let spec = bytes ? decodeSpec(bytes, key, this.#logger) : undefined;
      const outcomes: { ok: boolean; value: unknown }[] = [];
      let changed = false;
      for (const p of batch) {
        try {
          const m = p.mutate(spec);
          if (m.spec !== undefined) {
            spec = m.spec;
            changed = true;
          }
          outcomes.push({ ok: true, value: m.result });
        } catch (err) {
          outcomes.push({ ok: false, value: err });
        }
      }
      if (changed && spec) {
        try {
          await putAtRevision(this.#kv, key, encoder.encode(JSON.stringify(spec)), entry?.revision ?? 0);
        } catch (err) {
          if (isRevisionConflict(err) && attempt < MAX_SPEC_WRITE_ATTEMPTS) {
            await sleep(Math.random() * Math.min(50, attempt * 2));
            continue;
          }
          const e = isRevisionConflict(err)
            ? new TrellisError(ErrorCode.Lattice, `cannot write ${key} (attempt ${attempt}): ${String(err)}`)
            : kvFailure(`cannot write ${key}`, err);
          for (const p of batch) p.reject(e);
          return;
        }
      }
      batch.forEach((p, i) => {
        const o = outcomes[i];
        if (o?.ok) p.resolve(o.value);
        else p.reject(o?.value);
      });
      return;
    }
  }

  /** Sets the `url` of `COMPONENT_{id}`, keeping its links; creates the spec when missing. */
  async setUrl(id: string, url: string): Promise<void> {
    await this.mutate(id, (cur) => (cur?.url === url ? { result: undefined } : { spec: { url, links: cur?.links ?? [] }, result: undefined }));
  }

  /** Stops the watch. */
  close(): void {
    this.#watch?.stop();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function safeCall(fn: () => void, logger: Logger): void {
  try {
    fn();
  } catch (err) {
    logger.error("listener failed", { error: String(err) });
  }
}
