#!/usr/bin/env node
/**
 * kv-memory: a first-party capability provider serving `wasi:keyvalue/store` and `wasi:keyvalue/atomics`
 * @0.2.0-draft from memory, built on the provider SDK. Each link to it (keyed by source id and link name) gets its own
 * set of buckets, created by its put and released by its delete; data is lost when the process ends.
 *
 * Start it from a host: `trellis start provider kv-memory kv`; or by hand (a remote provider):
 * `node providers/kv-memory/main.ts --provider-id kv --lattice default --nats-url nats://127.0.0.1:4222`.
 * @module
 */
import { KEYVALUE_ATOMICS, KEYVALUE_STORE, kvOther, runProvider, type ProviderDefinition, type ResourceMapper } from "trellis/provider-sdk";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
const U64_MAX = (1n << 64n) - 1n;

/** The buckets of one link. */
export class LinkStore {
  readonly buckets = new Map<string, Map<string, Uint8Array>>();

  bucket(name: string): Map<string, Uint8Array> {
    let b = this.buckets.get(name);
    if (!b) this.buckets.set(name, (b = new Map()));
    return b;
  }

  /** Releases the link's data (called by the SDK when the link is deleted). */
  close(): void {
    this.buckets.clear();
  }
}

/** Bucket handles carry the bucket name, so that every instance of the provider understands them. */
const bucketHandles: ResourceMapper = {
  toHandle: (_r, value) => utf8.encode(String(value)),
  fromHandle: (_r, handle) => fromUtf8.decode(handle),
};

type Call = { resource: LinkStore | undefined };
const store = (call: Call): LinkStore => {
  if (!call.resource) throw new Error("no link store");
  return call.resource;
};
const ok = (val?: unknown) => (val === undefined ? { tag: "ok" } : { tag: "ok", val });

/** The provider definition (exported for tests that run it in-process). */
export const kvMemory: ProviderDefinition<LinkStore> = {
  name: "kv-memory",
  linkPutAsTarget: () => new LinkStore(),
  health: () => ({ healthy: true }),
  exports: [
    {
      type: KEYVALUE_STORE,
      resources: bucketHandles,
      handlers: {
        open: (identifier: string, call: Call) => {
          store(call).bucket(identifier);
          return ok(identifier);
        },
        "[method]bucket.get": (bucket: string, key: string, call: Call) => ok(store(call).bucket(bucket).get(key)),
        "[method]bucket.set": (bucket: string, key: string, value: Uint8Array, call: Call) => {
          store(call).bucket(bucket).set(key, Uint8Array.from(value));
          return ok();
        },
        "[method]bucket.delete": (bucket: string, key: string, call: Call) => {
          store(call).bucket(bucket).delete(key);
          return ok();
        },
        "[method]bucket.exists": (bucket: string, key: string, call: Call) => ok(store(call).bucket(bucket).has(key)),
        "[method]bucket.list-keys": (bucket: string, _cursor: bigint | undefined, call: Call) =>
          ok({ keys: [...store(call).bucket(bucket).keys()].sort(), cursor: undefined }),
        "[resource-drop]bucket": () => undefined,
      },
    },
    {
      type: KEYVALUE_ATOMICS,
      resources: bucketHandles,
      handlers: {
        increment: (bucket: string, key: string, delta: bigint, call: Call) => {
          const b = store(call).bucket(bucket);
          const cur = b.get(key);
          const text = cur ? fromUtf8.decode(cur) : "0";
          if (!/^\d+$/.test(text)) return { tag: "err", val: kvOther(`value of ${key} is not a number`) };
          const next = BigInt(text) + BigInt(delta);
          if (next > U64_MAX) return { tag: "err", val: kvOther(`increment of ${key} overflows u64`) };
          b.set(key, utf8.encode(next.toString()));
          return ok(next);
        },
      },
    },
  ],
};

if (import.meta.main) await runProvider(kvMemory);
