#!/usr/bin/env node
/**
 * blobstore-fs: a first-party capability provider serving `wasi:blobstore` `blobstore` and `container`
 * @0.2.0-draft on the local filesystem. Each link's root directory comes from its target config (`root=/var/blobs`;
 * relative paths resolve against the provider's working directory; default `<tmpdir>/trellis-blobstore`). See ./wit.ts
 * for how resources travel (containers by name, values by content) and ./store.ts for the layout on disk.
 *
 * Start it from a host: `trellis start provider blobstore-fs blobstore`; or by hand (a remote provider):
 * `node providers/blobstore-fs/main.ts --provider-id blobstore --lattice default --nats-url nats://127.0.0.1:4222`.
 * @module
 */
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { runProvider, TrellisError, type ProviderDefinition, type ResourceMapper } from "trellis/provider-sdk";
import { FsBlobStore } from "./store.ts";
import { BLOBSTORE, CONTAINER } from "./wit.ts";

/** Root used when neither the link nor the provider config sets `root`. */
export const DEFAULT_ROOT = path.join(tmpdir(), "trellis-blobstore");
/** A listing (`stream-object-names`) not read for this long is forgotten, in milliseconds. */
const LISTING_TTL_MS = 5 * 60_000;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

interface Listing {
  names: string[];
  pos: number;
  touched: number;
}

type Call = { resource: FsBlobStore | undefined; sourceId: string | undefined; linkName: string };
type Result = { tag: "ok"; val?: unknown } | { tag: "err"; val: string };

function store(call: Call): FsBlobStore {
  if (!call.resource) throw new TrellisError("LINK_NOT_FOUND", `no blobstore link for ${call.sourceId ?? "?"} under link name ${call.linkName}`);
  return call.resource;
}

async function wrap(f: () => unknown): Promise<Result> {
  try {
    const val = await f();
    return val === undefined ? { tag: "ok" } : { tag: "ok", val };
  } catch (err) {
    if (err instanceof TrellisError) throw err;
    return { tag: "err", val: err instanceof Error ? err.message : String(err) };
  }
}

/** The provider definition (exported for tests that run it in-process). */
export function blobstoreFsProvider(): ProviderDefinition<FsBlobStore> {
  const listings = new Map<string, Listing>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, l] of listings) if (now - l.touched > LISTING_TTL_MS) listings.delete(id);
  }, 60_000);
  sweep.unref();

  const handles: ResourceMapper = {
    toHandle: (resource, value) => {
      if (resource === "container") return utf8.encode(String(value));
      if (resource === "incoming-value" || resource === "outgoing-value") return value as Uint8Array;
      return Buffer.from(String(value), "hex");
    },
    fromHandle: (resource, handle) => {
      if (resource === "container") return fromUtf8.decode(handle);
      if (resource === "incoming-value" || resource === "outgoing-value") return handle;
      return Buffer.from(handle).toString("hex");
    },
  };

  const listing = (id: string): Listing => {
    const l = listings.get(id);
    if (!l) throw new Error("this object listing is unknown to the provider (expired, or made by another instance)");
    l.touched = Date.now();
    return l;
  };

  return {
    name: "blobstore-fs",
    linkPutAsTarget(link, ctx) {
      const root = path.resolve(link.config.root ?? ctx.config().root ?? DEFAULT_ROOT);
      ctx.logger.info("blobstore root for link", { source_id: link.sourceId, link_name: link.name, root });
      return new FsBlobStore(root);
    },
    shutdown() {
      clearInterval(sweep);
    },
    exports: [
      {
        type: BLOBSTORE,
        resources: handles,
        handlers: {
          "create-container": (name: string, call: Call) => wrap(async () => (await store(call).createContainer(name), name)),
          "get-container": (name: string, call: Call) => wrap(async () => (await store(call).requireContainer(name), name)),
          "delete-container": (name: string, call: Call) => wrap(() => store(call).deleteContainer(name)),
          "container-exists": (name: string, call: Call) => wrap(() => store(call).containerExists(name)),
          "copy-object": (src: { container: string; object: string }, dest: { container: string; object: string }, call: Call) =>
            wrap(() => store(call).copy(src, dest)),
          "move-object": (src: { container: string; object: string }, dest: { container: string; object: string }, call: Call) =>
            wrap(() => store(call).move(src, dest)),
          "[resource-drop]container": () => undefined,
        },
      },
      {
        type: CONTAINER,
        resources: handles,
        handlers: {
          "[method]container.name": (c: string, call: Call) => wrap(async () => (await store(call).requireContainer(c), c)),
          "[method]container.info": (c: string, call: Call) =>
            wrap(async () => ({ name: c, createdAt: await store(call).containerCreatedAt(c) })),
          "[method]container.get-data": (c: string, name: string, start: bigint, end: bigint, call: Call) =>
            wrap(() => store(call).read(c, name, BigInt(start), BigInt(end))),
          "[method]container.write-data": (c: string, name: string, data: Uint8Array, call: Call) => wrap(() => store(call).write(c, name, data)),
          "[method]container.list-objects": (c: string, call: Call) =>
            wrap(async () => {
              const names = await store(call).list(c);
              const id = randomBytes(12).toString("hex");
              listings.set(id, { names, pos: 0, touched: Date.now() });
              return id;
            }),
          "[method]container.delete-object": (c: string, name: string, call: Call) => wrap(() => store(call).deleteObject(c, name)),
          "[method]container.delete-objects": (c: string, names: string[], call: Call) =>
            wrap(async () => {
              for (const n of names) await store(call).deleteObject(c, n);
            }),
          "[method]container.has-object": (c: string, name: string, call: Call) => wrap(() => store(call).hasObject(c, name)),
          "[method]container.object-info": (c: string, name: string, call: Call) => wrap(() => store(call).objectInfo(c, name)),
          "[method]container.clear": (c: string, call: Call) => wrap(() => store(call).clear(c)),
          "[method]stream-object-names.read-stream-object-names": (id: string, len: bigint) =>
            wrap(() => {
              const l = listing(id);
              const n = Number(BigInt(len) > 100_000n ? 100_000n : BigInt(len));
              const out = l.names.slice(l.pos, l.pos + n);
              l.pos += out.length;
              return [out, l.pos >= l.names.length];
            }),
          "[method]stream-object-names.skip-stream-object-names": (id: string, num: bigint) =>
            wrap(() => {
              const l = listing(id);
              const n = Math.min(l.names.length - l.pos, Number(BigInt(num) > 1_000_000n ? 1_000_000n : BigInt(num)));
              l.pos += n;
              return [BigInt(n), l.pos >= l.names.length];
            }),
          "[resource-drop]container": () => undefined,
          "[resource-drop]stream-object-names": (id: string) => {
            listings.delete(id);
          },
        },
      },
    ],
  };
}

if (import.meta.main) await runProvider(blobstoreFsProvider());
