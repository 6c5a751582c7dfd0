/**
 * The component runtime of one host (issue 3): starts, scales, updates and stops components (their control flows,
 * one operation at a time per component); keeps their routing tables and config live; answers the `component.scale`
 * / `component.update` control requests; keeps the inventory. Helpers it uses: ./runtime-load.ts (file-load rule,
 * compile, secrets, the spec the worker pool loads), ./runtime-specs.ts (`COMPONENT_{id}` in
 * `LATTICEDATA_{lattice}`), ./runtime-events.ts (`component_scaled` / `component_scale_failed` /
 * `component_links_unused`).
 * @module
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnectData } from "../core/connection.ts";
import { fail, ok, type CtlResponse } from "../core/envelope.ts";
import { validateId } from "../core/ids.ts";
import { ErrorCode, InvalidArgumentError, NotFoundError, TrellisError } from "../core/errors.ts";
import type { ComponentDescription } from "../core/host.ts";
import type { Logger } from "../core/logger.ts";
import { DEFAULT_INVOCATION_TIMEOUT_MS } from "../../packages/wire/src/invocation/client.ts";
import { parseScaleRequest, parseUpdateRequest, type ScaleRequest } from "./control.ts";
import { buildLinkTable } from "./routing.ts";
import { admitPreopens, type Preopen } from "./preopens.ts";
import { WorkerPool, type ComponentAvailability } from "./worker-pool.ts";
import type { ShardStats } from "./spread.ts";
import type { ComponentManager, WorkloadContext } from "../host/workloads.ts";
import { Admission } from "../policy/admission.ts";
import { isSecretName } from "../secrets/types.ts";
import { describeClaims } from "../claims/index.ts";
import { compileOciOptions } from "../oci/options.ts";
import { OciRegistry } from "../oci/registry.ts";
import { type ComponentPolicy, positive, type ResolvedPolicy, resolvePolicy } from "./policy.ts";
import type { ComponentRuntimeOptions } from "./runtime-options.ts";
import { ComponentLoader, type ManagedComponent } from "./runtime-load.ts";
import { ComponentSpecWriter } from "./runtime-specs.ts";
import { publishScaled, publishScaleFailed, reportUnusableLinks, type ScaledComponent } from "./runtime-events.ts";

export { type ComponentPolicy, defaultComponentWorkers } from "./policy.ts";
export type { ComponentRuntimeOptions } from "./runtime-options.ts";

/**
 * Runs components on one host. Construct with {@link ComponentRuntime.create}; the host calls
 * {@link handleScale} / {@link handleUpdate} for control requests, {@link inventory} for `host.get` and heartbeats,
 * and {@link close} on shutdown.
 */
export class ComponentRuntime {
  readonly #o: ComponentRuntimeOptions;
  readonly #admission: Admission;
  readonly #pool: WorkerPool;
  readonly #loader: ComponentLoader;
  readonly #specs: ComponentSpecWriter;
  readonly #components = new Map<string, ManagedComponent>();
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #loggers = new Map<string, Logger>();
  readonly #unsubscribe: (() => void)[] = [];
  #closed = false;

  private constructor(o: ComponentRuntimeOptions, policy: ResolvedPolicy) {
    this.#o = o;
    this.#admission = o.admission ?? new Admission();
    const oci = o.oci ?? new OciRegistry(compileOciOptions({ cacheDir: o.cacheDir }));
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
    this.#loader = new ComponentLoader({
      policy,
      admission: this.#admission,
      oci,
      pool: this.#pool,
      cacheDir: o.cacheDir,
      links: o.links,
      claims: o.claims,
      secrets: o.secrets,
    });
    this.#specs = new ComponentSpecWriter({ nc: o.nc, lattice: o.lattice, logger: o.logger, specs: o.specs });
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
    if (!opts.specs) rt.#specs.watch((id) => rt.#components.has(id), () => rt.#closed);
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
      publishScaleFailed(this.#o, {
        annotations: m.annotations,
        imageRef: m.imageRef,
        componentId: id,
        maxInstances: m.count,
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
        this.#loader.admit(req.componentRef);
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
        this.#loader.admit(req.newComponentRef);
      } catch (err) {
        publishScaleFailed(this.#o, {
          annotations: cur.annotations,
          imageRef: req.newComponentRef,
          componentId: req.componentId,
          maxInstances: cur.count,
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

  /** Publishes `component_scaled` for `m` with `maxInstances` (0: stopped). */
  #scaledEvent(m: ScaledComponent, maxInstances: number): void {
    publishScaled(this.#o, m, maxInstances);
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
        admitPreopens(id, req.preopens ?? [], this.#loader.preopenRoots());
        const location = this.#loader.admit(req.componentRef);
        try {
          await this.#admission.startComponent({ componentId: id, imageRef: req.componentRef, maxInstances: req.count, annotations: req.annotations });
        } catch (err) {
          admitted?.(TrellisError.from(err));
          throw err;
        }
        admitted?.();
        const config = await this.#o.config.resolve(req.config.filter((n) => !isSecretName(n)));
        const { compiled, claims } = await this.#loader.compile(location, req.componentRef, id);
        const secrets = await this.#loader.secrets(req.config, claims, req.annotations);
        const m: ManagedComponent = {
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
        await this.#loader.load(m, config);
        this.#components.set(id, m);
        this.#log.info("component started", { component_id: id, image_ref: m.imageRef, max_instances: m.count, cached: compiled.cached });
        reportUnusableLinks(this.#o, id, m.compiled.meta.types);
        await this.#specs.put(id, m.imageRef);
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
  #scaleFailed(req: ScaleRequest, cur: ManagedComponent | undefined, err: unknown): TrellisError {
    const e = TrellisError.from(err);
    publishScaleFailed(this.#o, {
      annotations: req.annotations,
      imageRef: req.componentRef || cur?.imageRef || "",
      componentId: req.componentId,
      maxInstances: req.count,
      error: e.message,
    });
    return e;
  }

  async #update(id: string, ref: string, annotations: Record<string, string> | undefined): Promise<void> {
    const cur = this.#components.get(id);
    if (!cur) throw new NotFoundError(`component ${id} not found`, { componentId: id });
    if (cur.imageRef === ref) return;
    const old = { ...cur };
    try {
      const location = this.#loader.admit(ref);
      await this.#admission.startComponent({ componentId: id, imageRef: ref, maxInstances: cur.count, annotations: annotations ?? cur.annotations });
      const { compiled, claims } = await this.#loader.compile(location, ref, id);
      const nextAnnotations = annotations ?? cur.annotations;
      const secrets = await this.#loader.secrets(cur.config, claims, nextAnnotations);
      const next: ManagedComponent = { ...cur, imageRef: ref, compiled, claims, secrets, annotations: nextAnnotations };
      // the worker swaps the subscription only once the new code is instantiated: no gap in serving
      await this.#loader.load(next, this.#o.config.current(cur.config.filter((n) => !isSecretName(n))));
      this.#components.set(id, next);
      await this.#specs.put(id, ref);
      this.#log.info("component updated", { component_id: id, from: old.imageRef, to: ref });
      this.#scaledEvent(next, next.count);
      this.#scaledEvent(old, 0);
    } catch (err) {
      const e = TrellisError.from(err);
      publishScaleFailed(this.#o, {
        annotations: cur.annotations,
        imageRef: ref,
        componentId: id,
        maxInstances: cur.count,
        error: e.message,
      });
      throw e;
    }
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
    this.#specs.stop();
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
