/**
 * One component inside a worker thread (issue 3 §3–§5): its compiled core modules, a pool of at most `maxInstances`
 * instances (each serves one call at a time; a command's `wasi:cli/run` gets a fresh one), the imports each instance
 * gets (local interfaces from ./wasi, link-routed lattice calls from ./guest-imports.ts, bridged with JSPI), and the
 * dispatch of incoming invocations to its exports with their execution limit (the export call path itself is in
 * ./guest-exports.ts). The shapes it shares with those modules ({@link GuestSpec}, {@link GuestDeps}) live in
 * ./guest-types.ts and are re-exported here.
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ErrorCode, TimeoutError, TrellisError } from "../core/errors.ts";
import { stripVersion } from "../core/subjects.ts";
import type { HttpRequest } from "../../packages/wire/src/invocation/http.ts";
import { INTROSPECT_FN, INTROSPECT_IFACE, INTROSPECT_WORLD_FN, RESOURCE_DROP_PREFIX, type InvocationRequest } from "../../packages/wire/src/invocation/server.ts";
import type { LinkTable } from "./routing.ts";
import { HandleCache } from "./handle-cache.ts";
import { capMemory, WASM_PAGE } from "./wasm-patch.ts";
import { localImports, type GuestContext, type GuestLogLevel } from "./wasi/index.ts";
import { openGuestSecrets } from "../secrets/client.ts";
import type { SecretValue } from "../secrets/types.ts";
import type { HopSpan } from "../tracing/types.ts";
import type { GuestDeps, GuestSpec, Instance } from "./guest-types.ts";
import { routedImports, sendHttp, type ImportSite } from "./guest-imports.ts";
import { callExport, callHttp, decodeArgs, encodeAnswer, explainFailure, introspectExports, introspectWorld, resolveExport } from "./guest-exports.ts";

export type { GuestDeps, GuestSpec } from "./guest-types.ts";

type Glue = {
  instantiate(
    getCoreModule: (name: string) => Promise<WebAssembly.Module>,
    imports: Record<string, unknown>,
    instantiateCore?: (m: WebAssembly.Module, i?: WebAssembly.Imports) => Promise<WebAssembly.Instance>,
  ): Promise<Record<string, Record<string, (...a: unknown[]) => Promise<unknown>>>>;
};

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
    const site: ImportSite = { spec: this.spec, deps: this.#deps, inst, handles: this.#handles };
    const imports = { ...localImports(this.#context(site)), ...routedImports(site) };
    inst.exports = await this.#glue!.instantiate((n) => this.#module(n), imports, async (m, i) => {
      const instance = await WebAssembly.instantiate(m, i);
      const mem = instance.exports["memory"];
      if (mem instanceof WebAssembly.Memory && !memory) memory = mem;
      return instance;
    });
    inst.memory = () => memory;
    return inst;
  }

  /** The local interfaces' view of the component for instance `site.inst` (./wasi). */
  #context(site: ImportSite): GuestContext {
    const inst = site.inst;
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
      sendHttp: (request: HttpRequest) => sendHttp(site, request),
    };
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
    if (req.iface === INTROSPECT_IFACE && req.fn === INTROSPECT_FN) return introspectExports(this.spec.meta.types, req.json);
    if (req.iface === INTROSPECT_IFACE && req.fn === INTROSPECT_WORLD_FN) return introspectWorld(this.spec.meta.types, req.json);
    if (req.fn.startsWith(RESOURCE_DROP_PREFIX)) return new Uint8Array(0);
    const { fullName, fnType, http } = resolveExport(this.spec, this.#exportNames, req);
    const args = decodeArgs(fnType, req);
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
      const wd = this.#deps.watchdog;
      const id = this.spec.componentId;
      return http ? callHttp(i, wd, id, fullName, args[0] as HttpRequest) : callExport(i, wd, id, fullName, req.fn, fnType, args);
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
      return encodeAnswer(fnType, value, req.json);
    } catch (err) {
      // after a trap, an exit, an import failure (its exception unwound the guest) or an abandoned call, the
      // instance is never reused; an application error answered by the guest itself leaves it intact
      if (inst) inst.broken ||= abandoned || !(err instanceof TrellisError && err.code === ErrorCode.Application);
      throw explainFailure(err, inst, this.spec);
    } finally {
      clearTimeout(timer);
      this.#deps.watchdog.end(slot);
      if (inst) this.#release(inst);
    }
  }
}
