/**
 * One component inside a worker thread (issue 3 §3–§5): its compiled core modules, a pool of at most `maxInstances`
 * instances (each serves one call at a time), the imports each instance gets (local interfaces and link-routed
 * lattice calls, bridged with JSPI), and the dispatch of incoming invocations to its exports.
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, NotFoundError, TimeoutError, TrellisError } from "../core/errors.ts";
import { DEFAULT_LINK_NAME } from "../core/link.ts";
import { stripVersion } from "../core/subjects.ts";
import { invokeRaw, notify } from "../../packages/wire/src/invocation/client.ts";
import { decodeParams, decodeResult, encodeParams, encodeResult, type ResourceMapper } from "../../packages/wire/src/invocation/codec.ts";
import { HTTP_HANDLE_TYPE, INCOMING_HANDLER, OUTGOING_HANDLER, type HttpRequest, type HttpResponse } from "../../packages/wire/src/invocation/http.ts";
import { argsFromJson, resultToJson } from "../../packages/wire/src/invocation/json.ts";
import { INTROSPECT_FN, INTROSPECT_IFACE, INTROSPECT_TYPE, INTROSPECT_WORLD_FN, RESOURCE_DROP_PREFIX, WORLD_IFACE, WORLD_LINK_NAMESPACE, WORLD_LINK_PACKAGE, type InvocationRequest, type WorldDescription } from "../../packages/wire/src/invocation/server.ts";
import type { FuncType, InterfaceType } from "../../packages/wire/src/invocation/types.ts";
import type { CompiledMeta } from "./compile.ts";
import { className, jsName } from "./names.ts";
import { isLocalInterface, resolveTarget, splitInterface, type LinkTable } from "./routing.ts";
import { HandleCache, isCachedOpener } from "./handle-cache.ts";
import { HANDLE_TOKEN, makeResourceClass, RemoteResource } from "./remote-resource.ts";
import type { WatchdogWriter } from "./watchdog.ts";
import { capMemory, WASM_PAGE } from "./wasm-patch.ts";
import { collectResponse, IncomingRequest, ResponseOutparam } from "./wasi/http.ts";
import { VALUE_RESOURCES } from "./wasi/blobstore.ts";
import { localImports, type GuestContext, type GuestLogLevel } from "./wasi/index.ts";
import type { InvocationPolicySpec } from "../policy/admission.ts";
import { type GuestSecrets, openGuestSecrets } from "../secrets/client.ts";
import type { SecretValue } from "../secrets/types.ts";
import type { Preopen } from "./wasi/filesystem.ts";
import type { Hop, HopSpan, Tracing } from "../tracing/types.ts";
import type { MetricsRecorder } from "../metrics/recorder.ts";

/** Everything a worker needs to run one component (plain data: it crosses the thread boundary). */
export interface GuestSpec {
  componentId: string;
  /** Index of the component in its worker's watchdog table. */
  index: number;
  /** Compile cache entry directory. */
  dir: string;
  meta: CompiledMeta;
  maxInstances: number;
  /** Linear memory cap per instance, in bytes. */
  maxMemoryBytes: number;
  /** Execution limit per call, in milliseconds. */
  timeoutMs: number;
  links: LinkTable;
  config: Record<string, string>;
  env: [string, string][];
  /** When the host's policy service checks invocations: what the worker asks it before each call (src/policy). */
  invocationPolicy?: InvocationPolicySpec | undefined;
  /** The component's secrets, sealed (src/secrets `SecretBundle.sealForGuest`); opened only inside the guest. */
  secrets?: GuestSecrets | undefined;
  /** Host directories the guest sees through `wasi:filesystem` (./preopens.ts). */
  preopens?: Preopen[];
}

/** Services of the worker a component uses. */
export interface GuestDeps {
  nc: NatsConnection;
  lattice: string;
  watchdog: WatchdogWriter;
  /** Sends a log record to the host's logger (tagged with the component id there). */
  log(componentId: string, level: "trace" | "debug" | "info" | "warn" | "error", msg: string, meta?: Record<string, unknown>): void;
  /** Starts the client span of each import call (src/tracing, ADR 0025). @default none: no trace context sent */
  tracing?: Tracing;
  /** Counts each import call per link (src/metrics, ADR 0026). @default none */
  metrics?: MetricsRecorder;
}

interface CallCtx {
  slot: number;
  deadline: number;
  /** The span of the call being served: parent of the import calls it makes. */
  span?: HopSpan | undefined;
}

interface Instance {
  exports: Record<string, Record<string, (...a: unknown[]) => Promise<unknown>>>;
  /** The call this instance is serving. */
  call: CallCtx | undefined;
  /** Link names chosen with `set-link-name` during the current call, by unversioned interface. */
  linkNames: Map<string, string>;
  /** True after a trap, an exit or an abandoned call: never reused. */
  broken: boolean;
  memory: () => WebAssembly.Memory | undefined;
  /** True once the instance has served a call (a command's `run` only gets instances that never did). */
  used?: boolean;
}

type Glue = {
  instantiate(
    getCoreModule: (name: string) => Promise<WebAssembly.Module>,
    imports: Record<string, unknown>,
    instantiateCore?: (m: WebAssembly.Module, i?: WebAssembly.Imports) => Promise<WebAssembly.Instance>,
  ): Promise<Record<string, Record<string, (...a: unknown[]) => Promise<unknown>>>>;
};

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A component loaded in a worker. */
export class GuestComponent {
  readonly spec: GuestSpec;
  readonly #deps: GuestDeps;
  #glue: Glue | undefined;
  readonly #modules = new Map<string, Promise<WebAssembly.Module>>();
  readonly #idle: Instance[] = [];
  #created = 0;
  readonly #waiters: { resolve: (i: Instance) => void; reject: (e: unknown) => void }[] = [];
  readonly #exportNames = new Map<string, string>();
  #closed = false;
  #served = 0;
  #secrets: Map<string, SecretValue> | undefined;
  /** Handles of `open`-like imports, emptied on every link change (./handle-cache.ts). */
  readonly #handles = new HandleCache();

  constructor(spec: GuestSpec, deps: GuestDeps) {
    this.spec = spec;
    this.#deps = deps;
    for (const name of Object.keys(spec.meta.types.exports)) this.#exportNames.set(stripVersion(name), name);
  }

  /** Loads the glue and core modules and creates the first instance (so the first call is warm). */
  async init(): Promise<void> {
    this.#glue = (await import(pathToFileURL(join(this.spec.dir, this.spec.meta.js)).href)) as Glue;
    const first = await this.#instantiate();
    this.#created++;
    this.#idle.push(first);
  }

  /** Replaces the routing table (live link changes). */
  setLinks(links: LinkTable): void {
    this.spec.links = links;
    this.#handles.invalidate();
  }

  /** Replaces the merged config (live config changes). */
  setConfig(config: Record<string, string>): void {
    this.spec.config = config;
  }

  /** Changes the instance limit; idle instances beyond it are dropped. */
  setMaxInstances(n: number): void {
    this.spec.maxInstances = n;
    while (this.#created > n && this.#idle.length > 0) {
      this.#idle.pop();
      this.#created--;
    }
    this.#drainWaiters();
  }

  /** Stops serving: pending waiters fail; running calls finish. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.reject(new TrellisError(ErrorCode.IllegalState, `component ${this.spec.componentId} stopped`));
    this.#idle.length = 0;
  }

  #module(name: string): Promise<WebAssembly.Module> {
    let m = this.#modules.get(name);
    if (!m) {
      m = readFile(join(this.spec.dir, name)).then((bytes) =>
        WebAssembly.compile(capMemory(bytes, Math.max(1, Math.floor(this.spec.maxMemoryBytes / WASM_PAGE)))),
      );
      this.#modules.set(name, m);
    }
    return m;
  }

  async #instantiate(): Promise<Instance> {
    const inst: Instance = { exports: {}, call: undefined, linkNames: new Map(), broken: false, memory: () => undefined };
    let memory: WebAssembly.Memory | undefined;
    const imports = { ...localImports(this.#context(inst)), ...this.#routedImports(inst) };
    inst.exports = await this.#glue!.instantiate((n) => this.#module(n), imports, async (m, i) => {
      const instance = await WebAssembly.instantiate(m, i);
      const mem = instance.exports["memory"];
      if (mem instanceof WebAssembly.Memory && !memory) memory = mem;
      return instance;
    });
    inst.memory = () => memory;
    return inst;
  }

  #context(inst: Instance): GuestContext {
    const id = this.spec.componentId;
    const bus = Object.entries(this.spec.meta.types.imports).find(([n]) => stripVersion(n) === "wasmcloud:bus/lattice");
    return {
      env: this.spec.env,
      args: [],
      preopens: this.spec.preopens ?? [],
      output: (stream, line) => this.#deps.log(id, stream === "stdout" ? "info" : "warn", line, { stream }),
      log: (level: GuestLogLevel, context: string, message: string) =>
        this.#deps.log(id, level === "critical" ? "error" : level, context ? `${context}: ${message}` : message, {
          context,
          source: "wasi:logging",
          ...(level === "critical" ? { critical: true } : {}),
        }),
      config: () => this.spec.config,
      secret: (key) => (this.#secrets ??= openGuestSecrets(this.spec.secrets)).get(key),
      setLinkName: (name, interfaces) => {
        const missing = interfaces.find((i) => this.spec.links[name]?.[i] === undefined);
        for (const i of interfaces) inst.linkNames.set(i, name);
        return missing === undefined ? undefined : `no link named "${name}" for interface ${missing}`;
      },
      setLinkNameReturnsResult: bus?.[1].functions["set-link-name"]?.result?.kind === "result",
      sendHttp: (request) => this.#sendHttp(inst, request),
    };
  }

  #remaining(inst: Instance): number {
    const deadline = inst.call?.deadline ?? Date.now() + this.spec.timeoutMs;
    const left = deadline - Date.now();
    if (left <= 0) throw new TimeoutError(`component ${this.spec.componentId} ran out of time (${this.spec.timeoutMs} ms)`, this.spec.timeoutMs);
    return left;
  }

  /** Runs `fn` with the watchdog told that no guest code runs meanwhile (a JSPI suspension). */
  async #suspended<T>(inst: Instance, fn: () => Promise<T>): Promise<T> {
    this.#deps.watchdog.running(-1);
    try {
      return await fn();
    } finally {
      if (inst.call) this.#deps.watchdog.running(inst.call.slot);
    }
  }

  async #sendHttp(inst: Instance, request: HttpRequest): Promise<HttpResponse> {
    const iface = OUTGOING_HANDLER;
    const linkName = inst.linkNames.get(iface) ?? DEFAULT_LINK_NAME;
    const targetId = resolveTarget(this.spec.links, this.spec.componentId, iface, linkName);
    const params = encodeParams(HTTP_HANDLE_TYPE, [request]);
    const bytes = await this.#observed(inst, { sourceId: this.spec.componentId, target: targetId, iface, fn: "handle", linkName }, iface, (headers) =>
      invokeRaw(
        this.#deps.nc,
        { lattice: this.#deps.lattice, targetId, iface, fn: "handle", sourceId: this.spec.componentId, linkName, timeoutMs: this.#remaining(inst), ...(headers ? { headers } : {}) },
        params,
      ),
    );
    return decodeResult(HTTP_HANDLE_TYPE, bytes) as HttpResponse;
  }

  /**
   * Runs one import call `f` with its client span (child of the served call's span; `f` gets the trace context
   * headers to send) and counts it for its link (`linkIface`: `namespace:package/interface`).
   */
  async #observed<T>(inst: Instance, hop: Hop, linkIface: string, f: (headers: Record<string, string> | undefined) => Promise<T>): Promise<T> {
    const span = this.#deps.tracing?.client(inst.call?.span, hop);
    const metrics = this.#deps.metrics;
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

  /** Import objects for every interface routed by links. */
  #routedImports(inst: Instance): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    const classes = new Map<string, new (...a: unknown[]) => RemoteResource>();
    const nc = this.#deps.nc;
    const lattice = this.#deps.lattice;
    const componentId = this.spec.componentId;
    const links = () => this.spec.links;
    const suspended = <T>(f: () => Promise<T>) => this.#suspended(inst, f);
    const observed = <T>(hop: Hop, linkIface: string, f: (headers: Record<string, string> | undefined) => Promise<T>) => this.#observed(inst, hop, linkIface, f);
    const remaining = () => this.#remaining(inst);
    const handles = this.#handles;

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
          bytes = await suspended(() =>
            observed({ sourceId: componentId, target, iface, fn, linkName }, iface, (headers) =>
              invokeRaw(nc, { lattice, targetId: target, iface, fn, sourceId: componentId, linkName, timeoutMs: remaining(), ...(headers ? { headers } : {}) }, params),
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
    for (const [name, ft] of Object.entries(this.spec.meta.types.importedFunctions)) {
      const key = `${WORLD_LINK_NAMESPACE}:${WORLD_LINK_PACKAGE}/${name}`;
      out[name] = {
        default: async (...args: unknown[]) => {
          const linkName = inst.linkNames.get(key) ?? DEFAULT_LINK_NAME;
          const targetId = resolveTarget(links(), componentId, key, linkName);
          const params = encodeParams(ft, args);
          const bytes = await suspended(() =>
            observed({ sourceId: componentId, target: targetId, iface: WORLD_IFACE, fn: name, linkName }, key, (headers) =>
              invokeRaw(nc, { lattice, targetId, iface: WORLD_IFACE, fn: name, sourceId: componentId, linkName, timeoutMs: remaining(), ...(headers ? { headers } : {}) }, params),
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

    for (const [ifaceFull, type] of Object.entries(this.spec.meta.types.imports)) {
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

  /** Takes an idle instance, creates one (up to `maxInstances`), or waits for one. */
  async #acquire(): Promise<Instance> {
    if (this.#closed) throw new TrellisError(ErrorCode.IllegalState, `component ${this.spec.componentId} stopped`);
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#created < this.spec.maxInstances) {
      this.#created++;
      try {
        return await this.#instantiate();
      } catch (err) {
        this.#created--;
        throw err;
      }
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #release(inst: Instance): void {
    inst.call = undefined;
    inst.linkNames.clear();
    if (inst.broken || this.#closed || this.#created > this.spec.maxInstances) {
      this.#created--;
      this.#drainWaiters();
      return;
    }
    const w = this.#waiters.shift();
    if (w) w.resolve(inst);
    else this.#idle.push(inst);
  }

  #drainWaiters(): void {
    while (this.#waiters.length > 0 && this.#created < this.spec.maxInstances && !this.#closed) {
      const w = this.#waiters.shift()!;
      this.#created++;
      this.#instantiate().then(w.resolve, (e: unknown) => {
        this.#created--;
        w.reject(e);
      });
    }
  }

  /** Number of instances now. */
  get instances(): number {
    return this.#created;
  }

  /** Invocations taken since this component was loaded in this worker (introspection included; ADR 0023 tests). */
  get served(): number {
    return this.#served;
  }

  /**
   * Serves one invocation of an export (the {@link InvocationRequest} handler).
   * @param span the call's server span: the import calls it makes are its children. @default none
   */
  async handle(req: InvocationRequest, span?: HopSpan): Promise<Uint8Array> {
    this.#served++;
    if (req.iface === INTROSPECT_IFACE && req.fn === INTROSPECT_FN) return this.#introspect(req.json);
    if (req.iface === INTROSPECT_IFACE && req.fn === INTROSPECT_WORLD_FN) return this.#introspectWorld(req.json);
    if (req.fn.startsWith(RESOURCE_DROP_PREFIX)) return new Uint8Array(0);
    // world-level exports (`export add: func(…)`) are served under the interface token `world`; fullName "" marks them
    const world = req.iface === WORLD_IFACE;
    const fullName = world ? "" : this.#exportNames.get(req.iface);
    const ifaceType = fullName ? this.spec.meta.types.exports[fullName] : undefined;
    const http = req.iface === INCOMING_HANDLER && req.fn === "handle";
    const fnType: FuncType | undefined = http
      ? HTTP_HANDLE_TYPE
      : world
        ? Object.hasOwn(this.spec.meta.types.exportedFunctions, req.fn) ? this.spec.meta.types.exportedFunctions[req.fn] : undefined
        : ifaceType?.functions[req.fn];
    if (fullName === undefined || !fnType) {
      throw new NotFoundError(`component ${this.spec.componentId} does not export ${req.iface}.${req.fn}`, {
        componentId: this.spec.componentId,
        iface: req.iface,
        fn: req.fn,
      });
    }
    if (/^\[(method|constructor|static)\]/.test(req.fn)) {
      throw new TrellisError(ErrorCode.InvalidArgument, `calling resources exported by component ${this.spec.componentId} over the lattice is not supported`);
    }
    const args = req.json ? argsFromJson(fnType, parseJsonParams(req.params)) : decodeParams(fnType, req.params);
    const budget = Math.min(this.spec.timeoutMs, req.timeoutMs ?? Infinity);
    const deadline = Date.now() + budget;
    const slot = this.#deps.watchdog.begin(this.spec.index, deadline, req.replySubject);
    let inst: Instance | undefined;
    let abandoned = false;
    let timer: NodeJS.Timeout | undefined;
    // a command's `wasi:cli/run` gets a fresh instance per call (docs/adr/0019-instance-reuse.md): used ones are dropped
    const command = stripVersion(req.iface) === "wasi:cli/run" && req.fn === "run";
    const work = (async () => {
      let i = await this.#acquire();
      while (command && i.used && !abandoned) {
        i.broken = true;
        this.#release(i);
        i = await this.#acquire();
      }
      if (abandoned) {
        this.#release(i);
        throw new TrellisError(ErrorCode.Timeout, "abandoned");
      }
      i.used = true;
      if (command) i.broken = true; // never reused after its run
      inst = i;
      i.call = { slot, deadline, span };
      return http ? this.#callHttp(i, fullName, args[0] as HttpRequest) : this.#callExport(i, fullName, req.fn, fnType, args);
    })();
    work.catch(() => undefined);
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => {
        abandoned = true;
        reject(
          new TimeoutError(`component ${this.spec.componentId} did not answer ${req.iface}.${req.fn} within ${budget} ms`, budget, {
            componentId: this.spec.componentId,
          }),
        );
      }, Math.max(0, deadline - Date.now()));
    });
    try {
      const value = await Promise.race([work, timeout]);
      if (req.json) return enc.encode(JSON.stringify(resultToJson(fnType, value)) ?? "null");
      return encodeResult(fnType, value);
    } catch (err) {
      // after a trap, an exit, an import failure (its exception unwound the guest) or an abandoned call, the
      // instance is never reused; an application error answered by the guest itself leaves it intact
      if (inst) inst.broken ||= abandoned || !(err instanceof TrellisError && err.code === ErrorCode.Application);
      throw this.#explain(err, inst);
    } finally {
      clearTimeout(timer);
      this.#deps.watchdog.end(slot);
      if (inst) this.#release(inst);
    }
  }

  #explain(err: unknown, inst: Instance | undefined): TrellisError {
    if (err instanceof TrellisError) return err;
    if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
      const e = err as Error;
      const mem = inst?.memory();
      const nearCap = mem && mem.buffer.byteLength + 16 * WASM_PAGE > this.spec.maxMemoryBytes;
      const msg = nearCap
        ? `component ${this.spec.componentId} ran out of memory (limit ${Math.round(this.spec.maxMemoryBytes / 1048576)} MiB) and trapped: ${e.message}`
        : `component ${this.spec.componentId} trapped: ${e.message}`;
      return new TrellisError(ErrorCode.ComponentTrap, msg, { details: { componentId: this.spec.componentId }, cause: err });
    }
    return new TrellisError(ErrorCode.ComponentTrap, `component ${this.spec.componentId} failed: ${(err as Error)?.message ?? String(err)}`, {
      details: { componentId: this.spec.componentId },
      cause: err,
    });
  }

  async #run<T>(inst: Instance, f: () => Promise<T>): Promise<T> {
    const wd = this.#deps.watchdog;
    wd.running(inst.call!.slot);
    let p: Promise<T>;
    try {
      p = f();
    } finally {
      wd.running(-1);
    }
    try {
      return await p;
    } finally {
      wd.running(-1);
    }
  }

  async #callExport(inst: Instance, fullName: string, fn: string, type: FuncType, args: unknown[]): Promise<unknown> {
    // a world-level export is a function of the instance's exports itself
    const f = fullName === "" ? (inst.exports as unknown as Record<string, ((...a: unknown[]) => Promise<unknown>) | undefined>)[jsName(fn)] : inst.exports[fullName]?.[jsName(fn)];
    if (!f) throw new NotFoundError(`component ${this.spec.componentId} does not export ${fullName}.${fn}`);
    try {
      const ret = await this.#run(inst, () => f(...args));
      return type.result?.kind === "result" ? { tag: "ok", val: ret } : ret;
    } catch (err) {
      if (type.result?.kind === "result" && err instanceof Error && Object.prototype.hasOwnProperty.call(err, "payload")) {
        return { tag: "err", val: (err as unknown as { payload: unknown }).payload };
      }
      throw err;
    }
  }

  async #callHttp(inst: Instance, fullName: string, request: HttpRequest): Promise<HttpResponse> {
    const handle = inst.exports[fullName]?.["handle"];
    if (!handle) throw new NotFoundError(`component ${this.spec.componentId} does not export ${fullName}.handle`);
    const out = new ResponseOutparam();
    await this.#run(inst, () => handle(new IncomingRequest(request), out));
    const res = collectResponse(out);
    if ("error" in res) {
      throw new TrellisError(ErrorCode.Application, `component ${this.spec.componentId}: ${res.error}`, {
        details: { componentId: this.spec.componentId, ...(res.errorCode ? { error_code: res.errorCode.tag } : {}) },
      });
    }
    return res;
  }

  /** `trellis:runtime/introspect.world`: the component's imports and exports ({@link WorldDescription}). */
  #introspectWorld(json: boolean): Uint8Array {
    const { imports, exports, importedFunctions, exportedFunctions } = this.spec.meta.types;
    const text = JSON.stringify({ imports, exports, importedFunctions, exportedFunctions } satisfies WorldDescription);
    return json ? enc.encode(JSON.stringify(text)) : encodeResult(INTROSPECT_TYPE, text);
  }

  #introspect(json: boolean): Uint8Array {
    const ifaces: InterfaceType[] = Object.values(this.spec.meta.types.exports).map((i) =>
      stripVersion(i.name) === INCOMING_HANDLER ? { name: i.name, resources: [], functions: { handle: HTTP_HANDLE_TYPE } } : i,
    );
    const worldFns = this.spec.meta.types.exportedFunctions;
    if (Object.keys(worldFns).length > 0) ifaces.push({ name: WORLD_IFACE, resources: [], functions: worldFns });
    const text = JSON.stringify(ifaces);
    return json ? enc.encode(JSON.stringify(text)) : encodeResult(INTROSPECT_TYPE, text);
  }
}

function parseJsonParams(bytes: Uint8Array): unknown {
  const text = dec.decode(bytes);
  if (text.trim() === "") return [];
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TrellisError(ErrorCode.InvalidArgument, `params are not valid JSON: ${(err as Error).message}`);
  }
}
