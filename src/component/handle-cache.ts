/**
 * Host-side cache of resource handles that are cheap to re-create from their constructor arguments (docs/adr/
 * 0024-call-path.md, docs/protocol.md §8 "Cached handles"): a key-value bucket is named by `open(identifier)`, so the
 * handle a target returned for (`link name`, `identifier`) can be handed to the guest again on the next `open` without
 * a lattice round trip, and dropping it sends no `[resource-drop]` notification.
 *
 * Correctness rests on one rule: **every change of the component's links empties the cache** ({@link HandleCache.invalidate},
 * called by `GuestComponent.setLinks`), and an `open` that was in flight across a change is not stored (generation
 * check). So after a `link replace` the next `open` goes to the new target, even when the target id stayed the same
 * (a new link may carry another config: another Redis, another JetStream domain, where the bucket must be opened).
 * @module
 */

/**
 * Functions whose OK result is cached, as `unversioned-interface#function`. Each returns a handle the target derives
 * from the arguments alone (the bucket name), valid for the whole life of the link at every instance of the target.
 */
export const CACHED_OPENERS: ReadonlySet<string> = new Set(["wasi:keyvalue/store#open"]);

/** Most entries kept per component; the oldest is evicted beyond it. */
export const MAX_CACHED_HANDLES = 1024;

/** {@link CACHED_OPENERS} by function name (checked on every import call: no string building). */
const OPENERS_BY_FN = new Map<string, Set<string>>();
for (const entry of CACHED_OPENERS) {
  const [iface, fn] = entry.split("#") as [string, string];
  let set = OPENERS_BY_FN.get(fn);
  if (!set) OPENERS_BY_FN.set(fn, (set = new Set()));
  set.add(iface);
}

/** True when the result of `iface`.`fn` (unversioned interface) may be cached. */
export function isCachedOpener(iface: string, fn: string): boolean {
  return OPENERS_BY_FN.get(fn)?.has(iface) ?? false;
}

/** One cached result: the target that answered and the encoded OK reply (status byte stripped). */
export interface CachedHandle {
  targetId: string;
  result: Uint8Array;
}

/**
 * The cache of one component (shared by its instances in one worker). Keys are built by {@link HandleCache.key} from
 * the link name, the interface, the function and the encoded params.
 */
export class HandleCache {
  readonly #entries = new Map<string, CachedHandle>();
  readonly #max: number;
  #generation = 0;

  /** @param max most entries kept. @default MAX_CACHED_HANDLES */
  constructor(max = MAX_CACHED_HANDLES) {
    this.#max = max;
  }

  /** The cache key of a call: link name, unversioned interface, function and the encoded params (latin1). */
  static key(linkName: string, iface: string, fn: string, params: Uint8Array): string {
    return `${linkName}\u0000${iface}\u0000${fn}\u0000${Buffer.from(params.buffer, params.byteOffset, params.byteLength).toString("latin1")}`;
  }

  /** Increases on every {@link invalidate}; read it before a call and pass it to {@link set}. */
  get generation(): number {
    return this.#generation;
  }

  /** Number of entries (for tests and stats). */
  get size(): number {
    return this.#entries.size;
  }

  /** The cached result for `key`, if any. */
  get(key: string): CachedHandle | undefined {
    return this.#entries.get(key);
  }

  /**
   * Stores a result obtained by a call that started at `generation`.
   * @returns false (nothing stored) when the links changed since then: the answer may come from an old target.
   */
  set(key: string, generation: number, entry: CachedHandle): boolean {
    if (generation !== this.#generation) return false;
    if (this.#entries.size >= this.#max && !this.#entries.has(key)) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, entry);
    return true;
  }

  /** Forgets one entry (a call on its handle failed: the next `open` asks the target again). */
  evict(key: string): void {
    this.#entries.delete(key);
  }

  /** Forgets everything: the component's links changed. */
  invalidate(): void {
    this.#generation++;
    this.#entries.clear();
  }
}
