/**
 * `wasi:keyvalue` `store`, `atomics` and `batch` @0.2.0-draft as provider exports over any {@link KvBackend}: the
 * part the Redis and NATS JetStream key-value providers share. A backend is the per-link resource (one per link, made
 * by the link put hook, closed by the SDK on link delete); bucket handles carry the bucket name so that every instance
 * of a provider understands them (docs/protocol.md §8).
 *
 * Backend failures become the WIT error value `other(message)` (an OK reply carrying `result::err`), never a trap.
 *
 * Draining: when a link is deleted or replaced, calls a component made just before its host re-routed can still
 * arrive here after the delete (the delete reaches the provider over core NATS faster than the host applies the new
 * routing from its KV watch). So a deleted link's backend keeps answering for {@link DRAIN_MS} ({@link LinkDrain})
 * before it is closed, and a call that arrives before its link's put has been handled waits for it up to
 * {@link LINK_WAIT_MS}. With both, re-pointing a link mid-traffic fails no request.
 * @module
 */
import { t, type FuncType, type InterfaceType, type ResourceMapper, type WitType } from "../../../wire/src/invocation/index.ts";
import { TrellisError } from "../../../wire/src/core/errors.ts";
import type { ProviderExport } from "../types.ts";
import { KEYVALUE_ATOMICS, KEYVALUE_STORE, KV_ERROR } from "./types.ts";

/** `wasi:keyvalue/batch@0.2.0-draft`. */
export const KEYVALUE_BATCH: InterfaceType = {
  name: "wasi:keyvalue/batch@0.2.0-draft",
  resources: [],
  functions: {
    "get-many": fn([["bucket", t.borrow("bucket")], ["keys", t.list(t.string)]], t.result(t.list(t.option(t.tuple(t.string, t.list(t.u8)))), KV_ERROR)),
    "set-many": fn([["bucket", t.borrow("bucket")], ["key-values", t.list(t.tuple(t.string, t.list(t.u8)))]], t.result(undefined, KV_ERROR)),
    "delete-many": fn([["bucket", t.borrow("bucket")], ["keys", t.list(t.string)]], t.result(undefined, KV_ERROR)),
  },
};

function fn(params: [string, WitType][], result: WitType): FuncType {
  return t.func(params, result);
}

/** Largest value of a WIT `u64`. */
export const U64_MAX = (1n << 64n) - 1n;

/** One page of keys; `cursor` is where the next page starts, absent on the last page. */
export interface KeyPage {
  keys: string[];
  cursor?: bigint;
}

/**
 * A key-value store behind one link. Buckets are named by `open(identifier)`; how a name maps onto the store is the
 * backend's business (a key prefix in Redis, a JetStream KV bucket in NATS). Methods throw on failure; the message
 * reaches the component as `error::other`.
 */
export interface KvBackend {
  /** Checks (or creates) the bucket; throws {@link NoSuchStore} when it cannot exist. */
  open(bucket: string): Promise<void>;
  get(bucket: string, key: string): Promise<Uint8Array | undefined>;
  set(bucket: string, key: string, value: Uint8Array): Promise<void>;
  delete(bucket: string, key: string): Promise<void>;
  exists(bucket: string, key: string): Promise<boolean>;
  listKeys(bucket: string, cursor: bigint | undefined): Promise<KeyPage>;
  /** Adds `delta` to the decimal number stored at `key` (absent counts as 0) and returns the new value. */
  increment(bucket: string, key: string, delta: bigint): Promise<bigint>;
  getMany(bucket: string, keys: readonly string[]): Promise<(Uint8Array | undefined)[]>;
  setMany(bucket: string, entries: readonly [string, Uint8Array][]): Promise<void>;
  deleteMany(bucket: string, keys: readonly string[]): Promise<void>;
  /** Releases connections (called once, on link delete or shutdown). */
  close(): Promise<void>;
}

/** Thrown by {@link KvBackend.open} for a bucket the store does not have: the component sees `no-such-store`. */
export class NoSuchStore extends Error {
  constructor(bucket: string) {
    super(`no such store: ${bucket}`);
    this.name = "NoSuchStore";
  }
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Bucket handles are the UTF-8 bucket name. */
export const BUCKET_HANDLES: ResourceMapper = {
  toHandle: (_r, value) => utf8.encode(String(value)),
  fromHandle: (_r, handle) => fromUtf8.decode(handle),
};

/** How long a deleted link's backend keeps answering before it is closed, in milliseconds. */
export const DRAIN_MS = 3_000;
/** How long a call waits for the put of its link when none is known yet, in milliseconds (as the SDK does). */
export const LINK_WAIT_MS = 1_000;

/**
 * Backends of deleted links, still answering their (source id, link name) for a grace period. Wrap each backend a
 * link put returns with {@link LinkDrain.wrap}: the SDK's release of the resource (`close()`) then retires the backend
 * instead, and closes it {@link DRAIN_MS} later.
 */
export class LinkDrain<B extends KvBackend> {
  readonly #retired = new Map<string, { backend: B; timer: NodeJS.Timeout }>();
  readonly #graceMs: number;

  /** @param graceMs how long a retired backend answers, in milliseconds. @default DRAIN_MS */
  constructor(graceMs = DRAIN_MS) {
    this.#graceMs = graceMs;
  }

  /** A backend whose `close()` retires it for the grace period (keyed by the link's source id and name). */
  wrap(sourceId: string, linkName: string, backend: B): B {
    const key = `${sourceId}\u0000${linkName}`;
    return new Proxy(backend, {
      get: (target, prop) => {
        if (prop !== "close") {
          // Methods run on the backend itself (its private fields are not reachable through the proxy).
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        }
        return async () => {
          const prev = this.#retired.get(key);
          if (prev) {
            clearTimeout(prev.timer);
            await prev.backend.close();
          }
          const timer = setTimeout(() => {
            this.#retired.delete(key);
            void target.close();
          }, this.#graceMs);
          timer.unref();
          this.#retired.set(key, { backend: target, timer });
        };
      },
    });
  }

  /** The retired backend of a link, during its grace period. */
  get(sourceId: string | undefined, linkName: string): B | undefined {
    return sourceId === undefined ? undefined : this.#retired.get(`${sourceId}\u0000${linkName}`)?.backend;
  }

  /** Closes every retired backend now (at shutdown). */
  async closeAll(): Promise<void> {
    const all = [...this.#retired.values()];
    this.#retired.clear();
    for (const r of all) clearTimeout(r.timer);
    await Promise.allSettled(all.map((r) => r.backend.close()));
  }
}

type Call = {
  resource: KvBackend | undefined;
  linkName: string;
  sourceId: string | undefined;
  provider: { linkFor(peer: string, name: string, pkg?: string): { resource: unknown } | undefined };
};

async function backendFor(call: Call, drain: LinkDrain<KvBackend> | undefined): Promise<KvBackend> {
  if (call.resource) return call.resource;
  const retired = drain?.get(call.sourceId, call.linkName);
  if (retired) return retired;
  if (call.sourceId !== undefined) {
    // The link's put may still be on its way (a component can call right after the put): wait for it briefly.
    const deadline = Date.now() + LINK_WAIT_MS;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      const found = call.provider.linkFor(call.sourceId, call.linkName, "wasi:keyvalue")?.resource as KvBackend | undefined;
      if (found) return found;
      const late = drain?.get(call.sourceId, call.linkName);
      if (late) return late;
    }
  }
  throw new TrellisError("LINK_NOT_FOUND", `no key-value link from ${call.sourceId ?? "(no source-id)"} named ${call.linkName} to this provider`, {
    details: { sourceId: call.sourceId, linkName: call.linkName },
  });
}

type KvResult = { tag: "ok"; val?: unknown } | { tag: "err"; val: { tag: string; val?: string } };

async function guard(f: () => Promise<unknown>): Promise<KvResult> {
  try {
    const val = await f();
    return val === undefined ? { tag: "ok" } : { tag: "ok", val };
  } catch (err) {
    if (err instanceof TrellisError && err.code === "LINK_NOT_FOUND") throw err;
    if (err instanceof NoSuchStore) return { tag: "err", val: { tag: "no-such-store" } };
    return { tag: "err", val: { tag: "other", val: err instanceof Error ? err.message : String(err) } };
  }
}

/** Parses a stored counter: decimal digits (what Redis INCRBY and kv-memory store). @throws Error otherwise. */
export function parseCounter(key: string, value: Uint8Array | undefined): bigint {
  if (value === undefined) return 0n;
  const text = fromUtf8.decode(value).trim();
  if (!/^\d+$/.test(text)) throw new Error(`value of ${key} is not a non-negative integer`);
  return BigInt(text);
}

/**
 * The provider exports of `store`, `atomics` and `batch` over the per-link backend.
 * @param drain where deleted links' backends stay reachable for a grace period (see {@link LinkDrain}); without it a
 *   call for a deleted link fails with `LINK_NOT_FOUND` at once.
 */
export function keyvalueExports(drain?: LinkDrain<KvBackend>): ProviderExport<KvBackend>[] {
  const backend = (call: Call) => backendFor(call, drain);
  const wrap = (call: Call, f: (b: KvBackend) => Promise<unknown>): Promise<KvResult> => guard(async () => f(await backend(call)));
  return [
    {
      type: KEYVALUE_STORE,
      resources: BUCKET_HANDLES,
      requireLink: false,
      handlers: {
        open: (identifier: string, call: Call) =>
          wrap(call, async (kv) => {
            await kv.open(identifier);
            return identifier;
          }),
        "[method]bucket.get": (b: string, key: string, call: Call) => wrap(call, (kv) => kv.get(b, key)),
        "[method]bucket.set": (b: string, key: string, value: Uint8Array, call: Call) => wrap(call, (kv) => kv.set(b, key, value)),
        "[method]bucket.delete": (b: string, key: string, call: Call) => wrap(call, (kv) => kv.delete(b, key)),
        "[method]bucket.exists": (b: string, key: string, call: Call) => wrap(call, (kv) => kv.exists(b, key)),
        "[method]bucket.list-keys": (b: string, cursor: bigint | undefined, call: Call) =>
          wrap(call, async (kv) => {
            const page = await kv.listKeys(b, cursor);
            return { keys: page.keys, cursor: page.cursor };
          }),
        "[resource-drop]bucket": () => undefined,
      },
    },
    {
      type: KEYVALUE_ATOMICS,
      resources: BUCKET_HANDLES,
      requireLink: false,
      handlers: {
        increment: (b: string, key: string, delta: bigint, call: Call) => wrap(call, (kv) => kv.increment(b, key, BigInt(delta))),
      },
    },
    {
      type: KEYVALUE_BATCH,
      resources: BUCKET_HANDLES,
      requireLink: false,
      handlers: {
        "get-many": (b: string, keys: string[], call: Call) =>
          wrap(call, async (kv) => {
            const values = await kv.getMany(b, keys);
            return keys.map((k, i) => (values[i] === undefined ? undefined : [k, values[i]]));
          }),
        "set-many": (b: string, entries: [string, Uint8Array][], call: Call) => wrap(call, (kv) => kv.setMany(b, entries)),
        "delete-many": (b: string, keys: string[], call: Call) => wrap(call, (kv) => kv.deleteMany(b, keys)),
      },
    },
  ];
}
