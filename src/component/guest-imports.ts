/**
 * The lattice side of a component's imports inside a worker thread (issue 3 §4, docs/adr/0024-call-path.md): the
 * import objects of every interface routed by links (functions, resources with their methods, world-level imports),
 * each call resolved to its target through the link table and the `set-link-name` choices of the calling instance,
 * sent with JSPI suspending the guest, answered from the handle cache for `open`-like calls, traced and counted; and
 * the outgoing HTTP requests (`wasi:http/outgoing-handler`) sent to a linked target.
 * @module
 */
import { ErrorCode, TimeoutError, TrellisError } from "../core/errors.ts";
import { DEFAULT_LINK_NAME } from "../core/link.ts";
import { stripVersion } from "../core/subjects.ts";
import { invokeRaw, notify } from "../../packages/wire/src/invocation/client.ts";
import { decodeResult, encodeParams, type ResourceMapper } from "../../packages/wire/src/invocation/codec.ts";
import { HTTP_HANDLE_TYPE, OUTGOING_HANDLER, type HttpRequest, type HttpResponse } from "../../packages/wire/src/invocation/http.ts";
import { RESOURCE_DROP_PREFIX, WORLD_IFACE, WORLD_LINK_NAMESPACE, WORLD_LINK_PACKAGE } from "../../packages/wire/src/invocation/server.ts";
import type { FuncType } from "../../packages/wire/src/invocation/types.ts";
import type { GuestDeps, GuestSpec, Instance } from "./guest-types.ts";
import { className, jsName } from "./names.ts";
import { isLocalInterface, resolveTarget, splitInterface } from "./routing.ts";
import { HandleCache, isCachedOpener } from "./handle-cache.ts";
import { HANDLE_TOKEN, makeResourceClass, RemoteResource } from "./remote-resource.ts";
import { VALUE_RESOURCES } from "./wasi/blobstore.ts";
import type { Hop } from "../tracing/types.ts";

/**
 * One instance as its import calls see it. Everything is read when a call is made, not when the imports are built:
 * `spec.links` is the live routing table (replaced on link changes), `inst.call` the call being served (its deadline,
 * watchdog slot and span), `inst.linkNames` the link names chosen during it.
 */
export interface ImportSite {
  /** The component's spec (the same object the component keeps: live links, `timeoutMs`, import types). */
  spec: GuestSpec;
  /** The worker's services: NATS connection, lattice, watchdog, tracing, metrics. */
  deps: GuestDeps;
  /** The instance making the calls. */
  inst: Instance;
  /** The component's handle cache of `open`-like imports (./handle-cache.ts). */
  handles: HandleCache;
}

/**
 * Milliseconds left of the call `site`'s instance is serving (outside a call: the component's whole execution limit).
 * @throws TimeoutError when none is left.
 */
function remaining(site: ImportSite): number {
  const { spec, inst } = site;
  const deadline = inst.call?.deadline ?? Date.now() + spec.timeoutMs;
  const left = deadline - Date.now();
  if (left <= 0) throw new TimeoutError(`component ${spec.componentId} ran out of time (${spec.timeoutMs} ms)`, spec.timeoutMs);
  return left;
}

/** Runs `fn` with the watchdog told that no guest code runs meanwhile (a JSPI suspension). */
async function suspended<T>(site: ImportSite, fn: () => Promise<T>): Promise<T> {
  site.deps.watchdog.running(-1);
  try {
    return await fn();
  } finally {
    if (site.inst.call) site.deps.watchdog.running(site.inst.call.slot);
  }
}

/**
 * Runs one import call `f` with its client span (child of the served call's span; `f` gets the trace context
 * headers to send) and counts it for its link (`linkIface`: `namespace:package/interface`).
 */
async function observed<T>(site: ImportSite, hop: Hop, linkIface: string, f: (headers: Record<string, string> | undefined) => Promise<T>): Promise<T> {
  const span = site.deps.tracing?.client(site.inst.call?.span, hop);
  const metrics = site.deps.metrics;
  const t0 = metrics ? performance.now() : 0;
  try {
    const v = await f(span?.headers);
    span?.end();
    metrics?.called(hop.sourceId ?? "", hop.target, linkIface, hop.linkName ?? DEFAULT_LINK_NAME, performance.now() - t0, false);
    return v;
  } catch (err) {
    span?.end(err);
    metrics?.called(hop.sourceId ?? "", hop.target, linkIface, hop.linkName ?? DEFAULT_LINK_NAME, performance.now() - t0, true);
    throw err;
  }
}

/**
 * Sends an outgoing HTTP request of the guest (`wasi:http/outgoing-handler.handle`) to the target linked for
 * `wasi:http/outgoing-handler` under the link name the instance chose (default `default`), within the time left of
 * its call.
 * @returns the target's response.
 * @throws LinkNotFoundError when no link routes it; TimeoutError when the call has no time left; the target's error.
 */
export async function sendHttp(site: ImportSite, request: HttpRequest): Promise<HttpResponse> {
  const { spec, deps, inst } = site;
  const iface = OUTGOING_HANDLER;
  const linkName = inst.linkNames.get(iface) ?? DEFAULT_LINK_NAME;
  const targetId = resolveTarget(spec.links, spec.componentId, iface, linkName);
  const params = encodeParams(HTTP_HANDLE_TYPE, [request]);
  const bytes = await observed(site, { sourceId: spec.componentId, target: targetId, iface, fn: "handle", linkName }, iface, (headers) =>
    invokeRaw(
      deps.nc,
      { lattice: deps.lattice, targetId, iface, fn: "handle", sourceId: spec.componentId, linkName, timeoutMs: remaining(site), ...(headers ? { headers } : {}) },
      params,
    ),
  );
  return decodeResult(HTTP_HANDLE_TYPE, bytes) as HttpResponse;
}

/**
 * Import objects for every interface routed by links, for one instance: by unversioned interface name, its functions
 * (jco names) and resource classes (whose methods call the resource's owner); world-level imports by function name,
 * each `{ default }`. A call returning `result` throws `{ payload }` for its `err` case (jco's convention); a failed
 * call rejects with the TrellisError of the round trip (LinkNotFoundError, TimeoutError, the target's error).
 */
export function routedImports(site: ImportSite): Record<string, Record<string, unknown>> {
  const { spec, deps, inst, handles } = site;
  const out: Record<string, Record<string, unknown>> = {};
  const classes = new Map<string, new (...a: unknown[]) => RemoteResource>();
  const nc = deps.nc;
  const lattice = deps.lattice;
  const componentId = spec.componentId;
  const links = () => spec.links;

  const mapperFor = (pkg: string): ResourceMapper => ({
    toHandle(resource, value, own) {
      const local = VALUE_RESOURCES[`${pkg}#${resource}`]?.toBytes(value);
      if (local) return local;
      if (!(value instanceof RemoteResource)) {
        throw new TrellisError(ErrorCode.InvalidArgument, `resource ${resource} cannot cross the lattice: it is not owned by a lattice target`);
      }
      if (own) value.moved = true;
      return value.handle;
    },
    fromHandle(resource, handle) {
      const local = VALUE_RESOURCES[`${pkg}#${resource}`];
      if (local) return local.fromBytes(handle);
      const C = classes.get(`${pkg}#${resource}`);
      if (!C) throw new TrellisError(ErrorCode.Internal, `no class for resource ${resource}`);
      const r = new C(HANDLE_TOKEN) as RemoteResource;
      r.handle = handle;
      return r;
    },
  });

  // a call on a cached handle failed (bucket deleted behind our back, store gone): the next open asks the target again
  const evictShared = (owner: RemoteResource | undefined, args: readonly unknown[]) => {
    for (const a of owner ? [owner] : args) if (a instanceof RemoteResource && a.cacheKey !== undefined) handles.evict(a.cacheKey);
  };

  const call = async (ifaceFull: string, fn: string, type: FuncType, args: unknown[], owner?: RemoteResource): Promise<unknown> => {
    const iface = stripVersion(ifaceFull);
    const pkg = iface.slice(0, iface.indexOf("/"));
    const linkName = owner?.linkName ?? inst.linkNames.get(iface) ?? DEFAULT_LINK_NAME;
    const mapper = mapperFor(pkg);
    // `open(name)`: answered from the handle cache when this link already opened `name` (no round trip)
    const params = encodeParams(type, args, mapper);
    const key = owner === undefined && isCachedOpener(iface, fn) ? HandleCache.key(linkName, iface, fn, params) : undefined;
    const hit = key === undefined ? undefined : handles.get(key);
    const generation = handles.generation;
    let targetId: string;
    let bytes: Uint8Array;
    if (hit) {
      targetId = hit.targetId;
      bytes = hit.result;
    } else {
      const target = owner?.target ?? resolveTarget(links(), componentId, iface, linkName);
      targetId = target;
      try {
        bytes = await suspended(site, () =>
          observed(site, { sourceId: componentId, target, iface, fn, linkName }, iface, (headers) =>
            invokeRaw(nc, { lattice, targetId: target, iface, fn, sourceId: componentId, linkName, timeoutMs: remaining(site), ...(headers ? { headers } : {}) }, params),
          ),
        );
      } catch (err) {
        evictShared(owner, args);
        throw err;
      }
    }
    let opened: RemoteResource | undefined;
    const value = decodeResult(type, bytes, {
      toHandle: mapper.toHandle,
      fromHandle: (resource, handle, own) => {
        const r = mapper.fromHandle(resource, handle, own);
        if (!(r instanceof RemoteResource)) return r;
        r.target = targetId;
        r.linkName = linkName;
        r.iface = iface;
        r.resource = resource;
        opened = r;
        return r;
      },
    });
    if (type.result?.kind === "result") {
      const v = value as { tag: string; val?: unknown };
      if (v.tag === "err") {
        evictShared(owner, args);
        throw { payload: v.val };
      }
      if (key !== undefined && opened && (hit || handles.set(key, generation, { targetId, result: bytes }))) opened.cacheKey = key;
      return v.val;
    }
    return value;
  };

  // world-level imports (`import add: func(…)`): routed by a link (trellis, world, [add]) to the target's world-level `add`
  for (const [name, ft] of Object.entries(spec.meta.types.importedFunctions)) {
    const key = `${WORLD_LINK_NAMESPACE}:${WORLD_LINK_PACKAGE}/${name}`;
    out[name] = {
      default: async (...args: unknown[]) => {
        const linkName = inst.linkNames.get(key) ?? DEFAULT_LINK_NAME;
        const targetId = resolveTarget(links(), componentId, key, linkName);
        const params = encodeParams(ft, args);
        const bytes = await suspended(site, () =>
          observed(site, { sourceId: componentId, target: targetId, iface: WORLD_IFACE, fn: name, linkName }, key, (headers) =>
            invokeRaw(nc, { lattice, targetId, iface: WORLD_IFACE, fn: name, sourceId: componentId, linkName, timeoutMs: remaining(site), ...(headers ? { headers } : {}) }, params),
          ),
        );
        const value = decodeResult(ft, bytes);
        if (ft.result?.kind === "result") {
          const v = value as { tag: string; val?: unknown };
          if (v.tag === "err") throw { payload: v.val };
          return v.val;
        }
        return value;
      },
    };
  }

  for (const [ifaceFull, type] of Object.entries(spec.meta.types.imports)) {
    if (isLocalInterface(ifaceFull)) continue;
    const iface = stripVersion(ifaceFull);
    const parts = splitInterface(iface);
    if (!parts) continue;
    const pkg = `${parts.namespace}:${parts.package}`;
    const obj: Record<string, unknown> = (out[iface] ??= {});
    for (const resource of type.resources) {
      const key = `${pkg}#${resource}`;
      if (VALUE_RESOURCES[key]) continue;
      let C = classes.get(key);
      if (!C) {
        C = makeResourceClass(resource, (r) => {
          if (r.moved || !r.target || r.cacheKey !== undefined) return;
          notify(
            nc,
            { lattice, targetId: r.target, iface: r.iface, fn: `${RESOURCE_DROP_PREFIX}${resource}`, sourceId: componentId, linkName: r.linkName },
            encodeParams({ params: [{ name: "self", type: { kind: "own", resource } }] }, [r], mapperFor(pkg)),
          );
        });
        classes.set(key, C);
      }
      obj[className(resource)] = C;
    }
    for (const [fn, ft] of Object.entries(type.functions)) {
      const m = /^\[(constructor|method|static)\]([^.]+)(?:\.(.+))?$/.exec(fn);
      if (!m) {
        obj[jsName(fn)] = (...args: unknown[]) => call(ifaceFull, fn, ft, args);
        continue;
      }
      const C = classes.get(`${pkg}#${m[2]!}`) as unknown as Record<string, unknown> & { prototype: Record<string, unknown> };
      if (!C) continue;
      if (m[1] === "method") {
        C.prototype[jsName(m[3]!)] = function (this: RemoteResource, ...args: unknown[]) {
          return call(ifaceFull, fn, ft, [this, ...args], this);
        };
      } else if (m[1] === "static") {
        C[jsName(m[3]!)] = (...args: unknown[]) => call(ifaceFull, fn, ft, args);
      } else {
        (C as unknown as { construct?: (args: unknown[]) => Promise<unknown> }).construct = (args) => call(ifaceFull, fn, ft, args);
      }
    }
  }
  return out;
}
