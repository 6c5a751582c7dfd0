/**
 * The component runtime of one host (issue 3): starts, scales, updates and stops components; keeps their routing
 * tables and config live; answers the `component.scale` / `component.update` control requests; maintains
 * `COMPONENT_{id}` in `LATTICEDATA_{lattice}`; publishes `component_scaled` / `component_scale_failed`.
 * @module
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnectData } from "../core/connection.ts";
import { Kvm, KvWatchInclude, type KV } from "@nats-io/kv";
import { fail, ok, type CtlResponse } from "../core/envelope.ts";
import { validateId } from "../core/ids.ts";
import { ErrorCode, InvalidArgumentError, NotFoundError, TrellisError } from "../core/errors.ts";
import { EventType } from "../core/events.ts";
import { describeLink, unusableLinks } from "../core/link.ts";
import type { ComponentDescription, ComponentSpecification } from "../core/host.ts";
import type { Logger } from "../core/logger.ts";
import { COMPONENT_SPEC_PREFIX, componentSpecKey, latticeDataBucket } from "../core/subjects.ts";
import { DEFAULT_INVOCATION_TIMEOUT_MS } from "../../packages/wire/src/invocation/client.ts";
import { compileComponent, type CompiledComponent } from "./compile.ts";
import { parseScaleRequest, parseUpdateRequest, type ScaleRequest } from "./control.ts";
import { loadComponentBytes, resolveRef } from "./loader.ts";
import { buildLinkTable } from "./routing.ts";
import { admitPreopens, type Preopen } from "./preopens.ts";
import { WorkerPool, type ComponentAvailability } from "./worker-pool.ts";
import type { ShardStats } from "./spread.ts";
import type { ComponentManager, WorkloadContext } from "../host/workloads.ts";
import { Admission } from "../policy/admission.ts";
import { checkComponentClaims } from "./claims.ts";
import type { GuestSecrets } from "../secrets/client.ts";
import { isSecretName } from "../secrets/types.ts";
import { componentEventClaims, type ComponentMetadata, describeClaims, type Token } from "../claims/index.ts";
import { compileOciOptions } from "../oci/options.ts";
import { OciRegistry } from "../oci/registry.ts";
import { type ComponentPolicy, positive, type ResolvedPolicy, resolvePolicy } from "./policy.ts";

export { type ComponentPolicy, defaultComponentWorkers } from "./policy.ts";

/**
 * Options of {@link ComponentRuntime.create}: what the host gives every workload manager (src/host/workloads.ts;
 * `rpcTimeoutMs` is the default per-call timeout of import calls and execution limit of export calls, `cacheDir` the
 * root of the compiled-output cache), plus the runtime's own policy.
 */
export interface ComponentRuntimeOptions
  extends Pick<WorkloadContext, "nc" | "lattice" | "hostId" | "logger" | "rpcTimeoutMs" | "cacheDir" | "links" | "config" | "events" | "invocationLimits" | "claims" | "secrets" | "tracing" | "metrics"> {
  policy?: ComponentPolicy;
  /**
   * `COMPONENT_{id}` writer shared with the host's link bookkeeping (src/host/workloads.ts `ComponentSpecs`). When
   * absent, the runtime updates `LATTICEDATA_{lattice}` itself (revision-checked) and logs a warning when the spec of a
   * running component is deleted.
   */
  specs?: { setUrl(id: string, url: string): Promise<void> };
  /**
   * Settings of the NATS connection each worker thread opens: plain data with credentials and TLS
   * (src/core/connection.ts `NatsConnectData`), normally the host's (`WorkloadContext.nats`).
   * @default `{ servers: [nc.getServer()], tls: false }` — enough for an unauthenticated server.
   */
  workerNats?: NatsConnectData;
  /**
   * What may be loaded and started (src/policy; docs/security.md): file paths and http(s) URLs need the host's
   * `--allow-file-load` or an `--allowed-path`; the policy service, when set, decides starts and invocations.
   * @default `new Admission()`: no file or URL may be loaded, no policy service
   */
  admission?: Admission;
  /**
   * Registry client for components given by OCI reference (src/oci; docs/adr/0018-oci.md).
   * @default a client with the defaults (no credentials, HTTPS only, `:latest` refused) caching under `cacheDir`
   */
  oci?: OciRegistry;
}

interface Managed {
  id: string;
  imageRef: string;
  count: number;
  annotations: Record<string, string>;
  config: string[];
  limits: Record<string, string>;
  compiled: CompiledComponent;
  /** Availability reported by the worker pool (ADR 0014). */
  status?: ComponentAvailability;
  /** Why it is `failed`. */
  error?: string;
  /** Verified embedded claims; undefined when unsigned. */
  claims?: Token<ComponentMetadata> | undefined;
  /** The component's secrets (its `SECRET_…` config names), sealed for its worker. */
  secrets?: GuestSecrets | undefined;
  /** Host directories given to the component (checked against the policy at start). */
  preopens: Preopen[];
}

/**
 * Runs components on one host. Construct with {@link ComponentRuntime.create}; the host calls
 * {@link handleScale} / {@link handleUpdate} for control requests, {@link inventory} for `host.get` and heartbeats,
 * and {@link close} on shutdown.
 */
export class ComponentRuntime {
  readonly #o: ComponentRuntimeOptions;
  readonly #policy: ResolvedPolicy;
  readonly #admission: Admission;
  readonly #oci: OciRegistry;
  readonly #pool: WorkerPool;
  readonly #components = new Map<string, Managed>();
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #loggers = new Map<string, Logger>();
  readonly #unsubscribe: (() => void)[] = [];
  #kv: Promise<KV | undefined> | undefined;
  #watchStop: (() => void) | undefined;
  #closed = false;

  private constructor(o: ComponentRuntimeOptions, policy: ResolvedPolicy) {
    this.#o = o;
    this.#policy = policy;
    this.#admission = o.admission ?? new Admission();
    this.#oci = o.oci ?? new OciRegistry(compileOciOptions({ cacheDir: o.cacheDir }));
    this.#pool = new WorkerPool({
      nc: o.nc,
      lattice: o.lattice,
      hostId: o.hostId,
      nats: o.workerNats ?? { servers: [o.nc.getServer()], tls: false },
      logger: o.logger.child({ component: "runtime" }),
      maxWorkers: policy.maxWorkers,
      componentWorkers: policy.componentWorkers,
      workerHeapMb: policy.workerHeapMb,
      workerInitialHeapMb: policy.workerInitialHeapMb,
      compileCacheDir: join(o.cacheDir, "node-compile-cache"),
      ...(o.invocationLimits ? { invocationLimits: o.invocationLimits } : {}),
      ...(o.tracing ? { tracing: o.tracing } : {}),
      ...(o.metrics ? { onMetrics: (batch: Parameters<NonNullable<typeof o.metrics>["add"]>[0]) => o.metrics!.add(batch) } : {}),
      onGuestLog: (id, level, msg, meta) => this.#guestLogger(id)[level](msg, meta),
      onStatus: (id, status, error) => this.#onStatus(id, status, error),
    });
    this.#unsubscribe.push(
      o.links.onChange((change) => {
        if (!this.#components.has(change.sourceId)) return;
        this.#pool.setLinks(change.sourceId, buildLinkTable(change.links)).catch((err: unknown) =>
          this.#log.warn("could not update a component's links", { component_id: change.sourceId, error: (err as Error).message }),
        );
      }),
      o.config.onChange((name) => {
        for (const m of this.#components.values()) {
          if (!m.config.includes(name)) continue;
          this.#pool.setConfig(m.id, o.config.current(m.config)).catch((err: unknown) =>
            this.#log.warn("could not update a component's config", { component_id: m.id, error: (err as Error).message }),
          );
        }
      }),
    );
  }

  /**
   * Creates the runtime (no component runs yet).
   * @throws InvalidArgumentError naming a bad option (e.g. `policy.maxMemoryMb`).
   */
  static async create(opts: ComponentRuntimeOptions): Promise<ComponentRuntime> {
    const rpcTimeoutMs = positive("rpcTimeoutMs", opts.rpcTimeoutMs, DEFAULT_INVOCATION_TIMEOUT_MS);
    if (!opts.cacheDir) throw new InvalidArgumentError("cacheDir", "cacheDir is required");
    const policy = resolvePolicy(opts.policy, rpcTimeoutMs);
    await mkdir(opts.cacheDir, { recursive: true });
    const rt = new ComponentRuntime({ ...opts, rpcTimeoutMs }, policy);
    if (!opts.specs) rt.#startSpecWatch();
    if (policy.prewarm) rt.#pool.prewarm();
    return rt;
  }

  get #log(): Logger {
    return this.#o.logger;
  }

  #guestLogger(id: string): Logger {
    let l = this.#loggers.get(id);
    if (!l) {
      l = this.#o.logger.child({ component_id: id });
      this.#loggers.set(id, l);
    }
    return l;
  }

  /**
   * A component's availability changed (its worker thread restarts, a restart failed, it serves again): kept for the
   * inventory; `component_scale_failed` when it becomes `failed`, `component_scaled` when it serves again after that.
   */
  #onStatus(id: string, status: ComponentAvailability, error: string | undefined): void {
    const m = this.#components.get(id);
    if (!m) return;
    const prev = m.status ?? "running";
    m.status = status;
    if (status === "failed") m.error = error;
    else if (status === "running") delete m.error;
    if (status === "failed" && prev !== "failed") {
      this.#log.error("component is not serving: its worker thread could not be restarted (retrying)", { component_id: id, error });
      this.#o.events.publish(EventType.ComponentScaleFailed, {
        annotations: m.annotations,
        host_id: this.#o.hostId,
        image_ref: m.imageRef,
        component_id: id,
        max_instances: m.count,
        error: `component ${id} is not serving: ${error ?? "its worker thread could not be restarted"}`,
      });
    } else if (status === "running" && prev !== "running") {
      this.#log.info("component serves again", { component_id: id, was: prev });
      if (prev === "failed") this.#scaledEvent(m, m.count);
    }
  }

  /** Runs `op` after the previous operation on the same component finished. */
  #enqueue<T>(id: string, op: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(id) ?? Promise.resolve();
    const next = prev.then(op, op);
    const tail = next.catch(() => undefined);
    this.#queues.set(id, tail);
    void tail.then(() => {
      if (this.#queues.get(id) === tail) this.#queues.delete(id);
    });
    return next;
  }

  /** `component.scale` handler: validates, acknowledges, then scales in the background (reference §1.4). */
  async handleScale(payload: Uint8Array): Promise<CtlResponse> {
    let req: ScaleRequest;
    try {
      req = parseScaleRequest(payload);
    } catch (err) {
      return fail(err);
    }
    const cur = this.#components.get(req.componentId);
    const loads = req.count > 0 && req.componentRef !== "" && (!cur || (req.allowUpdate && req.componentRef !== cur.imageRef));
    if (loads) {
      // The file-load rule answers in the reply (and an event), before anything is read (docs/security.md).
      try {
        this.#admit(req.componentRef);
      } catch (err) {
        this.#scaleFailed(req, cur, err);
        return fail(err);
      }
    }
    let message = "";
    if (cur && req.componentRef && req.componentRef !== cur.imageRef && !req.allowUpdate) {
      message = `component ${req.componentId} is already running with a different reference (${cur.imageRef}); use component.update to change it`;
    }
    // When this start is next in line and a policy service decides it, the reply waits for the decision (bounded by
    // the policy timeout) so that a denial is answered, not only evented; otherwise the scale is acknowledged at once.
    const policy = this.#admission.policy;
    const waitForPolicy = loads && policy?.enabled === true && !this.#queues.has(req.componentId);
    let admitted: ((err?: unknown) => void) | undefined;
    const decided = waitForPolicy ? new Promise<unknown>((r) => (admitted = r)) : undefined;
    this.#enqueue(req.componentId, () => this.#scale(req, admitted)).catch((err: unknown) =>
      this.#log.warn("component scale failed", { component_id: req.componentId, error: (err as Error).message }),
    );
    if (decided && policy) {
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([decided, new Promise((r) => (timer = setTimeout(r, policy.config.timeoutMs + 1000)))]);
      clearTimeout(timer);
      if (outcome instanceof Error) return fail(outcome);
    }
    return ok(message);
  }

  /** `component.update` handler (reference §1.4). */
  async handleUpdate(payload: Uint8Array): Promise<CtlResponse> {
    try {
      const req = parseUpdateRequest(payload);
      const cur = this.#components.get(req.componentId);
      if (!cur) throw new NotFoundError(`component ${req.componentId} not found`, { componentId: req.componentId });
      if (cur.imageRef === req.newComponentRef) return ok(`component ${req.componentId} already updated to ${req.newComponentRef}`);
      try {
        this.#admit(req.newComponentRef);
      } catch (err) {
        this.#o.events.publish(EventType.ComponentScaleFailed, {
          annotations: cur.annotations,
          host_id: this.#o.hostId,
          image_ref: req.newComponentRef,
          component_id: req.componentId,
          max_instances: cur.count,
          error: TrellisError.from(err).message,
        });
        throw err;
      }
      const from = cur.imageRef;
      this.#enqueue(req.componentId, () => this.#update(req.componentId, req.newComponentRef, req.annotations)).catch((err: unknown) =>
        this.#log.warn("component update failed", { component_id: req.componentId, error: (err as Error).message }),
      );
      return ok(`component ${req.componentId} updating from ${from} to ${req.newComponentRef}`);
    } catch (err) {
      return fail(err);
    }
  }

  /**
   * Scales a component and waits for the outcome (what `component.scale` does in the background): starts it when
   * not running, stops it at count 0, changes its instance limit or config list otherwise.
   * @throws the failure (after publishing `component_scale_failed`): `COMPONENT_LOAD_FAILED`, `PAYLOAD_TOO_LARGE`,
   *   `NOT_FOUND` (a named config does not exist), `INVALID_ARGUMENT`.
   */
  scale(req: ScaleRequest): Promise<void> {
    return this.#enqueue(req.componentId, () => this.#scale(req));
  }

  /**
   * Starts `ref` as component `id` (count 1 unless given) and waits until it serves calls.
   * @throws as {@link scale}.
   */
  start(
    ref: string,
    id: string,
    opts: { count?: number; config?: string[]; annotations?: Record<string, string>; limits?: Record<string, string>; preopens?: Preopen[] } = {},
  ): Promise<void> {
    return this.scale({
      ...(opts.preopens ? { preopens: opts.preopens } : {}),
      componentId: id,
      componentRef: ref,
      count: opts.count ?? 1,
      annotations: opts.annotations ?? {},
      config: opts.config ?? [],
      limits: opts.limits ?? {},
      allowUpdate: false,
      hostId: undefined,
    });
  }

  /** Stops component `id` (no-op when it does not run). */
  stop(id: string): Promise<void> {
    const cur = this.#components.get(id);
    return this.scale({ componentId: id, componentRef: cur?.imageRef ?? "", count: 0, annotations: cur?.annotations ?? {}, config: [], limits: {}, allowUpdate: false, hostId: undefined });
  }

  /**
   * Replaces a running component's code with `ref`, keeping its id, count, config and links; waits for the outcome.
   * @throws NotFoundError when it does not run; otherwise as {@link scale}.
   */
  update(id: string, ref: string, annotations?: Record<string, string>): Promise<void> {
    return this.#enqueue(id, () => this.#update(id, ref, annotations));
  }

  #scaledEvent(m: { id: string; imageRef: string; annotations: Record<string, string>; claims?: Token<ComponentMetadata> | undefined }, maxInstances: number): void {
    this.#o.events.publish(EventType.ComponentScaled, {
      annotations: m.annotations,
      host_id: this.#o.hostId,
      image_ref: m.imageRef,
      max_instances: maxInstances,
      component_id: m.id,
      ...(m.claims ? { public_key: m.claims.claims.sub, claims: componentEventClaims(m.claims) } : {}),
    });
  }

  /**
   * Directories a component may be given as preopens: the same allow-list as loading files (the host's
   * `--allowed-path` directories, or anything with `--allow-file-load`; docs/security.md) plus `policy.preopenRoots`.
   */
  #preopenRoots(): string[] {
    const load = this.#admission.load;
    return load.allowFileLoad ? ["/"] : [...this.#policy.preopenRoots, ...load.allowedPaths];
  }

  /** Says (log warning, `component_links_unused` event) when a component starts with links it cannot use (issue 11 G). */
  #reportUnusableLinks(m: Managed): void {
    const bad = unusableLinks(this.#o.links.linksFrom(m.id), m.compiled.meta.types.imports, m.compiled.meta.types.importedFunctions);
    if (bad.length === 0) return;
    const messages = bad.map((b) => `link ${describeLink(b.link)}: component ${m.id} does not import ${b.interfaces.join(", ")}`);
    this.#log.warn("component has links it cannot use", { component_id: m.id, links: messages });
    this.#o.events.publish(EventType.ComponentLinksUnused, { component_id: m.id, host_id: this.#o.hostId, links: messages });
  }

  /** @param admitted called once the start is admitted (no argument) or refused (the error), or when no decision is needed. */
  async #scale(req: ScaleRequest, admitted?: (err?: unknown) => void): Promise<void> {
    if (this.#closed) throw new TrellisError(ErrorCode.IllegalState, "the component runtime is closed");
    const id = validateId("component_id", req.componentId);
    const cur = this.#components.get(id);
    try {
      if (!cur) {
        if (req.count === 0) {
          this.#scaledEvent({ id, imageRef: req.componentRef, annotations: req.annotations }, 0);
          return;
        }
        if (!req.componentRef) throw new InvalidArgumentError("component_ref", `component_ref is required to start component ${id}`);
        admitPreopens(id, req.preopens ?? [], this.#preopenRoots());
        const location = this.#admit(req.componentRef);
        try {
          await this.#admission.startComponent({ componentId: id, imageRef: req.componentRef, maxInstances: req.count, annotations: req.annotations });
        } catch (err) {
          admitted?.(TrellisError.from(err));
          throw err;
        }
        admitted?.();
        const config = await this.#o.config.resolve(req.config.filter((n) => !isSecretName(n)));
        const { compiled, claims } = await this.#compile(location, req.componentRef, id);
        const secrets = await this.#secrets(req.config, claims, req.annotations);
        const m: Managed = {
          preopens: req.preopens ?? [],
          id,
          imageRef: req.componentRef,
          count: req.count,
          annotations: req.annotations,
          config: req.config,
          limits: req.limits,
          compiled,
          claims,
          secrets,
        };
        await this.#load(m, config);
        this.#components.set(id, m);
        this.#log.info("component started", { component_id: id, image_ref: m.imageRef, max_instances: m.count, cached: compiled.cached });
        this.#reportUnusableLinks(m);
        await this.#putSpec(id, m.imageRef);
        this.#scaledEvent(m, m.count);
        return;
      }
      if (req.count === 0) {
        await this.#pool.unload(id);
        this.#components.delete(id);
        this.#loggers.delete(id);
        this.#log.info("component stopped", { component_id: id });
        this.#scaledEvent(cur, 0);
        return;
      }
      if (req.config.join("\0") !== cur.config.join("\0")) {
        const config = await this.#o.config.resolve(req.config.filter((n) => !isSecretName(n)));
        cur.config = req.config;
        await this.#pool.setConfig(id, config);
      }
      if (req.count !== cur.count) {
        cur.count = req.count;
        await this.#pool.scale(id, req.count);
      }
      if (Object.keys(req.annotations).length > 0) cur.annotations = req.annotations;
      this.#scaledEvent(cur, cur.count);
      if (req.allowUpdate && req.componentRef && req.componentRef !== cur.imageRef) await this.#update(id, req.componentRef, undefined);
    } catch (err) {
      throw this.#scaleFailed(req, cur, err);
    } finally {
      admitted?.();
    }
  }

  /** Publishes `component_scale_failed` for `req` and returns the error as a TrellisError. */
  #scaleFailed(req: ScaleRequest, cur: Managed | undefined, err: unknown): TrellisError {
    const e = TrellisError.from(err);
    this.#o.events.publish(EventType.ComponentScaleFailed, {
      annotations: req.annotations,
      host_id: this.#o.hostId,
      image_ref: req.componentRef || cur?.imageRef || "",
      component_id: req.componentId,
      max_instances: req.count,
      error: e.message,
    });
    return e;
  }

  /**
   * The host's file-load rule for `ref` (src/policy), before anything is read.
   * @returns the path or URL to load from.
   * @throws LoadNotAllowedError; ComponentLoadError for an unsupported reference.
   */
  #admit(ref: string): string {
    const { kind, location } = resolveRef(ref);
    // OCI artifacts are verified by digest (src/oci): no file-load rule; the policy service still decides the start.
    if (kind === "oci") return location;
    return this.#admission.checkComponentRef(ref, kind === "file" ? { kind: "file", path: location } : { kind: "url", url: location });
  }

  async #update(id: string, ref: string, annotations: Record<string, string> | undefined): Promise<void> {
    const cur = this.#components.get(id);
    if (!cur) throw new NotFoundError(`component ${id} not found`, { componentId: id });
    if (cur.imageRef === ref) return;
    const old = { ...cur };
    try {
      const location = this.#admit(ref);
      await this.#admission.startComponent({ componentId: id, imageRef: ref, maxInstances: cur.count, annotations: annotations ?? cur.annotations });
      const { compiled, claims } = await this.#compile(location, ref, id);
      const nextAnnotations = annotations ?? cur.annotations;
      const secrets = await this.#secrets(cur.config, claims, nextAnnotations);
      const next: Managed = { ...cur, imageRef: ref, compiled, claims, secrets, annotations: nextAnnotations };
      // the worker swaps the subscription only once the new code is instantiated: no gap in serving
      await this.#load(next, this.#o.config.current(cur.config.filter((n) => !isSecretName(n))));
      this.#components.set(id, next);
      await this.#putSpec(id, ref);
      this.#log.info("component updated", { component_id: id, from: old.imageRef, to: ref });
      this.#scaledEvent(next, next.count);
      this.#scaledEvent(old, 0);
    } catch (err) {
      const e = TrellisError.from(err);
      this.#o.events.publish(EventType.ComponentScaleFailed, {
        annotations: cur.annotations,
        host_id: this.#o.hostId,
        image_ref: ref,
        component_id: id,
        max_instances: cur.count,
        error: e.message,
      });
      throw e;
    }
  }

  /**
   * Loads and compiles `location`, which {@link #admit} returned for `ref` (never a reference it did not check), and
   * verifies its embedded claims against the host's claims policy (src/claims).
   */
  async #compile(location: string, ref: string, id: string): Promise<{ compiled: CompiledComponent; claims: Token<ComponentMetadata> | undefined }> {
    const bytes = await loadComponentBytes(location, { maxBytes: this.#policy.maxComponentBytes, oci: this.#oci });
    const claims = checkComponentClaims(bytes, `component ${id} (${ref})`, this.#o.claims);
    return { compiled: await compileComponent(bytes, this.#o.cacheDir), claims };
  }

  /**
   * Fetches the secrets named by `SECRET_…` entries of the component's config list with its claims, sealed for its
   * worker (docs/adr/0017-secrets.md).
   * @throws SecretsError naming the secret (no topic, unsigned component, missing reference, refused).
   */
  async #secrets(configNames: string[], claims: Token<ComponentMetadata> | undefined, annotations: Record<string, string>): Promise<GuestSecrets | undefined> {
    if (!configNames.some(isSecretName)) return undefined;
    const client = this.#o.secrets;
    if (!client) throw new TrellisError(ErrorCode.Secrets, "this component names secrets, but this host has no secrets support");
    const bundle = await client.fetch(configNames, claims?.jwt, annotations["wasmcloud.dev/appspec"]);
    return bundle.sealForGuest(client.identity.xkey);
  }

  async #load(m: Managed, config: Record<string, string>): Promise<void> {
    const mem = Number(m.limits["max_linear_memory"] ?? NaN);
    const time = Number(m.limits["max_execution_time"] ?? NaN);
    // Links put on any host just before the start are included…
    await this.#o.links.sync(1000).catch(() => undefined);
    await this.#pool.load({
      componentId: m.id,
      dir: m.compiled.dir,
      meta: m.compiled.meta,
      maxInstances: m.count,
      maxMemoryBytes: mem > 0 ? mem : this.#policy.maxMemoryBytes,
      timeoutMs: time > 0 ? time : this.#policy.callTimeoutMs,
      links: buildLinkTable(this.#o.links.linksFrom(m.id)),
      config,
      env: this.#policy.env,
      invocationPolicy: this.#admission.invocationSpec({ componentId: m.id, imageRef: m.imageRef, annotations: m.annotations }),
      secrets: m.secrets,
      ...(m.preopens.length ? { preopens: m.preopens } : {}),
    });
    // …and a change that arrived while the worker was loading (when it had no table to update) is applied now.
    await this.#pool.setLinks(m.id, buildLinkTable(this.#o.links.linksFrom(m.id)));
  }

  #kvBucket(): Promise<KV | undefined> {
    this.#kv ??= new Kvm(this.#o.nc).open(latticeDataBucket(this.#o.lattice)).catch((err: unknown) => {
      this.#log.warn("cannot open the lattice data bucket; COMPONENT_{id} specs are not maintained", { error: (err as Error).message });
      return undefined;
    });
    return this.#kv;
  }

  /** Sets `url` of `COMPONENT_{id}` (creating the spec when missing), keeping its links; revision-checked with retries. */
  async #putSpec(id: string, url: string): Promise<void> {
    if (this.#o.specs) {
      await this.#o.specs.setUrl(id, url).catch((err: unknown) =>
        this.#log.warn("could not write the component specification", { component_id: id, error: (err as Error).message }),
      );
      return;
    }
    const kv = await this.#kvBucket();
    if (!kv) return;
    const key = componentSpecKey(id);
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        const e = await kv.get(key);
        if (!e || e.operation !== "PUT") {
          await kv.create(key, JSON.stringify({ url, links: [] } satisfies ComponentSpecification));
          return;
        }
        const spec = e.json<ComponentSpecification>();
        if (spec.url === url) return;
        await kv.update(key, JSON.stringify({ ...spec, url }), e.revision);
        return;
      } catch (err) {
        if (attempt === 9) {
          this.#log.warn("could not write the component specification", { component_id: id, error: (err as Error).message });
        }
      }
    }
  }

  #startSpecWatch(): void {
    void (async () => {
      const kv = await this.#kvBucket();
      if (!kv || this.#closed) return;
      const iter = await kv.watch({ key: `${COMPONENT_SPEC_PREFIX}*`, include: KvWatchInclude.UpdatesOnly });
      this.#watchStop = () => iter.stop();
      for await (const e of iter) {
        if (e.operation === "PUT") continue;
        const id = e.key.slice(COMPONENT_SPEC_PREFIX.length);
        if (this.#components.has(id)) {
          this.#log.warn("the specification of a running component was deleted; it keeps running with its current links", { component_id: id });
        }
      }
    })().catch((err: unknown) => this.#log.debug("component spec watch ended", { error: (err as Error).message }));
  }

  /**
   * Running components, for `host.get` and heartbeats (reference §1.4 `ComponentDescription`), each with its `status`
   * (`running`, `restarting`, `disconnected`, `failed` — a Trellis extension, ADR 0014).
   */
  inventory(): ComponentDescription[] {
    return [...this.#components.values()].map((m) => {
      const d: ComponentDescription = { id: m.id, image_ref: m.imageRef, revision: 0, max_instances: m.count, limits: Object.keys(m.limits).length ? m.limits : null };
      if (m.claims) Object.assign(d, describeClaims(m.claims));
      if (Object.keys(m.annotations).length > 0) d.annotations = m.annotations;
      d.status = m.status ?? "running";
      if (m.error) d.error = m.error;
      return d;
    });
  }

  /** Index of the (first) worker thread that runs `id` (for tests and diagnostics). */
  workerOf(id: string): number | undefined {
    return this.#pool.workerOf(id);
  }

  /** Indexes of every worker thread `id`'s instances are spread over (ADR 0023; for tests and diagnostics). */
  workersOf(id: string): number[] {
    return this.#pool.workersOf(id);
  }

  /**
   * Each shard of `id` as its worker thread reports it: thread id, share of the instance limit, instances now,
   * invocations served (ADR 0023; for tests and diagnostics). Shards whose worker is restarting are left out.
   */
  shards(id: string): Promise<ShardStats[]> {
    return this.#pool.shards(id);
  }

  /** Stops every component and worker. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const u of this.#unsubscribe) u();
    this.#watchStop?.();
    await this.#pool.close();
    this.#components.clear();
  }
}

/**
 * The factory the host's `workloads.components` takes (src/host/workloads.ts): builds a {@link ComponentRuntime}
 * from the host's {@link WorkloadContext}.
 * @example Host.create({ …, workloads: { components: componentRuntime({ policy: { maxMemoryMb: 128 } }) } })
 */
export function componentRuntime(
  options: { policy?: ComponentPolicy; workerNats?: NatsConnectData } = {},
): (ctx: WorkloadContext) => Promise<ComponentManager> {
  return (ctx) =>
    ComponentRuntime.create({
      nc: ctx.nc,
      lattice: ctx.lattice,
      hostId: ctx.hostId,
      logger: ctx.logger,
      rpcTimeoutMs: ctx.rpcTimeoutMs,
      cacheDir: join(ctx.cacheDir, "components"),
      links: ctx.links,
      config: ctx.config,
      claims: ctx.claims,
      secrets: ctx.secrets,
      events: ctx.events,
      specs: ctx.specs,
      ...(ctx.invocationLimits ? { invocationLimits: ctx.invocationLimits } : {}),
      ...(ctx.tracing ? { tracing: ctx.tracing } : {}),
      ...(ctx.metrics ? { metrics: ctx.metrics } : {}),
      admission: ctx.admission,
      ...(ctx.oci ? { oci: ctx.oci } : {}),
      ...(options.policy ? { policy: options.policy } : {}),
      ...(options.workerNats ? { workerNats: options.workerNats } : ctx.nats ? { workerNats: ctx.nats } : {}),
    });
}
