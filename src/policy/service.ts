/**
 * Client of a policy service, compatible with wasmCloud 1.x (reference §6.4; `crates/host/src/policy.rs`): before it
 * starts a component or a provider, and (unless turned off) before a component serves an invocation, the host sends a
 * request to `--policy-topic` and acts only on `permitted: true`. No answer within `--policy-timeout-ms` (default
 * 1000, as 1.x), no responder, or a malformed answer denies.
 *
 * Decisions are cached as 1.x does — forever, per kind and `{id}_{ref}` (plus `_{interface}_{function}` for
 * invocations); failures are not cached. A decision `{ requestId, permitted, message? }` published on
 * `--policy-changes-topic` with a known `requestId` replaces the cached one (1.x); a message with only `requestId`
 * (no `permitted`) drops it, so the next action asks again (a Trellis extension).
 * @module
 */
import { randomUUID } from "node:crypto";
import { errors as natsErrors, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { InvalidArgumentError, PolicyDeniedError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { isPublishSubject, isSubscribeSubject } from "../core/subjects.ts";
import {
  cacheKey,
  invocationKey,
  type ComponentInformation,
  parseDecision,
  POLICY_REQUEST_VERSION,
  type PolicyClaims,
  type PolicyHostInfo,
  type PolicyRequest,
  type PolicyRequestBody,
  type PolicyResponse,
  sortedAnnotations,
} from "./wire.ts";

/** Default wait for a policy decision: 1 s, as wasmCloud 1.x (`DEFAULT_POLICY_TIMEOUT`). */
export const DEFAULT_POLICY_TIMEOUT_MS = 1_000;

/** What a host operator sets. Without `topic` there is no policy service and everything is permitted (as 1.x). */
export interface PolicyServiceOptions {
  /** Subject policy requests are sent to. (`--policy-topic`, `TRELLIS_POLICY_TOPIC`) */
  topic?: string;
  /** Subject of decision overrides; requires `topic`. (`--policy-changes-topic`, `TRELLIS_POLICY_CHANGES_TOPIC`) */
  changesTopic?: string;
  /** Wait for a decision, in milliseconds; requires `topic`. @default 1000 (`--policy-timeout-ms`, `TRELLIS_POLICY_TIMEOUT_MS`) */
  timeoutMs?: number;
  /**
   * Ask before every invocation a component serves (decisions cached per component, interface and function), as 1.x
   * does. @default true (`--no-policy-invocations`, `TRELLIS_POLICY_INVOCATIONS=false`)
   */
  invocations?: boolean;
}

/** {@link PolicyServiceOptions} checked. Plain data: it is also sent to component worker threads. */
export interface PolicyConfig {
  readonly topic: string | undefined;
  readonly changesTopic: string | undefined;
  readonly timeoutMs: number;
  readonly invocations: boolean;
}

/**
 * Checks the options.
 * @throws InvalidArgumentError naming the option: a topic that is not a valid subject, `changesTopic` or `timeoutMs`
 *   without `topic`, a non-positive timeout.
 */
export function compilePolicyOptions(o: PolicyServiceOptions = {}): PolicyConfig {
  const topic = o.topic === undefined || o.topic === "" ? undefined : o.topic;
  if (topic !== undefined && !isPublishSubject(topic)) {
    throw new InvalidArgumentError("policyTopic", `policy topic ${JSON.stringify(topic)} is not a valid NATS subject (dot-separated tokens, no wildcards or spaces)`);
  }
  const changesTopic = o.changesTopic === undefined || o.changesTopic === "" ? undefined : o.changesTopic;
  if (changesTopic !== undefined) {
    if (topic === undefined) throw new InvalidArgumentError("policyChangesTopic", "policy changes topic requires a policy topic (--policy-topic)");
    if (!isSubscribeSubject(changesTopic)) throw new InvalidArgumentError("policyChangesTopic", `policy changes topic ${JSON.stringify(changesTopic)} is not a valid NATS subject`);
  }
  if (o.timeoutMs !== undefined) {
    if (topic === undefined) throw new InvalidArgumentError("policyTimeoutMs", "policy timeout requires a policy topic (--policy-topic)");
    if (!Number.isInteger(o.timeoutMs) || o.timeoutMs <= 0) throw new InvalidArgumentError("policyTimeoutMs", `policyTimeoutMs must be a positive integer, got ${String(o.timeoutMs)}`);
  }
  if (o.invocations !== undefined && typeof o.invocations !== "boolean") throw new InvalidArgumentError("policyInvocations", "policyInvocations must be a boolean");
  return Object.freeze({ topic, changesTopic, timeoutMs: o.timeoutMs ?? DEFAULT_POLICY_TIMEOUT_MS, invocations: o.invocations ?? true });
}

/** The component an invocation targets, as the per-invocation check describes it. */
export interface InvocationTarget {
  componentId: string;
  imageRef: string;
  annotations: Record<string, string>;
  claims?: PolicyClaims | null;
}

const encoder = new TextEncoder();

function isTimeout(err: unknown): boolean {
  return err instanceof natsErrors.TimeoutError || (err instanceof Error && /timeout/i.test(err.message));
}

function isNoResponders(err: unknown): boolean {
  return err instanceof natsErrors.NoRespondersError || (err instanceof natsErrors.RequestError && err.isNoResponders());
}

/** Asks the policy service and caches its decisions. One per host (and one per component worker thread). */
export class PolicyClient {
  readonly config: PolicyConfig;
  readonly host: PolicyHostInfo;
  readonly #nc: NatsConnection;
  readonly #logger: Logger | undefined;
  readonly #cache = new Map<string, PolicyResponse>();
  readonly #keyOf = new Map<string, string>();
  readonly #inflight = new Map<string, Promise<PolicyResponse>>();
  #changes: Subscription | undefined;
  /** Requests sent to the policy topic so far (not counting cached decisions). */
  requests = 0;

  /**
   * @param host the `host` field of every request; labels are the host's at start (as 1.x).
   */
  constructor(nc: NatsConnection, config: PolicyConfig, host: PolicyHostInfo, logger?: Logger) {
    this.#nc = nc;
    this.config = config;
    this.host = { publicKey: host.publicKey, lattice: host.lattice, labels: { ...host.labels } };
    this.#logger = logger;
  }

  /** True when a policy topic is set; otherwise every action is permitted without a request. */
  get enabled(): boolean {
    return this.config.topic !== undefined;
  }

  /** True when invocations are checked (a policy topic is set and per-invocation checks are on). */
  get checksInvocations(): boolean {
    return this.enabled && this.config.invocations;
  }

  /** Subscribes to the changes topic (when set) and waits until the server has the subscription. */
  async start(): Promise<void> {
    if (!this.config.changesTopic || this.#changes) return;
    this.#changes = this.#nc.subscribe(this.config.changesTopic, {
      callback: (err, msg) => {
        if (err) return;
        this.#onChange(msg.data);
      },
    });
    await this.#nc.flush();
  }

  #onChange(data: Uint8Array): void {
    let v: unknown;
    try {
      v = JSON.parse(new TextDecoder().decode(data));
    } catch {
      this.#logger?.warn("malformed policy decision override (not JSON)");
      return;
    }
    const o = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
    if (typeof o.requestId !== "string") {
      this.#logger?.warn("policy decision override without a requestId");
      return;
    }
    const key = this.#keyOf.get(o.requestId);
    if (key === undefined) {
      this.#logger?.debug("policy decision override for an unknown request id", { request_id: o.requestId });
      return;
    }
    if (o.permitted === undefined) {
      this.#cache.delete(key);
      this.#keyOf.delete(o.requestId);
      this.#logger?.info("policy decision invalidated", { request_id: o.requestId });
      return;
    }
    const d = parseDecision(data);
    if (typeof d === "string") {
      this.#logger?.warn("malformed policy decision override", { request_id: o.requestId, error: d });
      return;
    }
    this.#cache.set(key, d);
    this.#logger?.info("policy decision overridden", { request_id: o.requestId, permitted: d.permitted });
  }

  /**
   * The decision for `body`: the cached one (returned synchronously), else the policy service's (cached). Without a
   * policy topic, `permitted: true`.
   * @throws PolicyDeniedError (rejected promise) when the service does not answer in time, has no responder or
   *   answers something that is not a decision.
   */
  decide(body: PolicyRequestBody): PolicyResponse | Promise<PolicyResponse> {
    const topic = this.config.topic;
    if (topic === undefined) return { requestId: "", permitted: true };
    const key = cacheKey(body);
    const hit = this.#cache.get(key);
    if (hit) return hit;
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#ask(topic, key, body).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #ask(topic: string, key: string, body: PolicyRequestBody): Promise<PolicyResponse> {
    const requestId = randomUUID();
    const req = { requestId, kind: body.kind, version: POLICY_REQUEST_VERSION, request: body.request, host: this.host } as PolicyRequest;
    this.requests++;
    let data: Uint8Array;
    try {
      const reply = await this.#nc.request(topic, encoder.encode(JSON.stringify(req)), { timeout: this.config.timeoutMs });
      data = reply.data;
    } catch (err) {
      const why = isNoResponders(err)
        ? `no policy service answers on ${topic}`
        : isTimeout(err)
          ? `the policy service did not answer on ${topic} within ${this.config.timeoutMs} ms`
          : `the policy request on ${topic} failed (${(err as Error).message})`;
      this.#logger?.warn("policy request failed; denying", { kind: body.kind, error: why });
      throw new PolicyDeniedError(`${describe(body)} denied: ${why}`, { kind: body.kind, requestId }, { cause: err });
    }
    const d = parseDecision(data);
    if (typeof d === "string") {
      throw new PolicyDeniedError(`${describe(body)} denied: the policy service's answer is not a decision (${d})`, { kind: body.kind, requestId });
    }
    // 1.x caches the decision under the id of the request it sent; overrides name that id.
    const decision: PolicyResponse = { ...d, requestId };
    this.#cache.set(key, decision);
    this.#keyOf.set(requestId, key);
    return decision;
  }

  /**
   * Asks whether component `info.componentId` may start from `info.imageRef`.
   * @throws PolicyDeniedError when denied, unanswered or malformed.
   */
  async startComponent(info: { componentId: string; imageRef: string; maxInstances: number; annotations?: Record<string, string>; claims?: PolicyClaims | null }): Promise<void> {
    const body: PolicyRequestBody = {
      kind: "startComponent",
      request: { componentId: info.componentId, imageRef: info.imageRef, maxInstances: info.maxInstances, annotations: sortedAnnotations(info.annotations), claims: info.claims ?? null },
    };
    enforce(body, await this.decide(body));
  }

  /**
   * Asks whether provider `info.providerId` may start from `info.imageRef`.
   * @throws PolicyDeniedError when denied, unanswered or malformed.
   */
  async startProvider(info: { providerId: string; imageRef: string; annotations?: Record<string, string>; claims?: PolicyClaims | null }): Promise<void> {
    const body: PolicyRequestBody = {
      kind: "startProvider",
      request: { providerId: info.providerId, imageRef: info.imageRef, annotations: sortedAnnotations(info.annotations), claims: info.claims ?? null },
    };
    enforce(body, await this.decide(body));
  }

  /**
   * Checks one invocation of `iface`.`fn` on `target`. Returns undefined at once when per-invocation checks are off or
   * a cached decision permits it (the hot path: one map lookup); a promise otherwise.
   * @throws PolicyDeniedError (synchronously for a cached denial, else as a rejected promise).
   */
  checkInvocation(target: InvocationTarget, iface: string, fn: string): undefined | Promise<void> {
    if (!this.checksInvocations) return undefined;
    const hit = this.#cache.get(invocationKey(target.componentId, target.imageRef, iface, fn));
    if (hit?.permitted) return undefined;
    const request: ComponentInformation = { componentId: target.componentId, imageRef: target.imageRef, maxInstances: 0, annotations: target.annotations, claims: target.claims ?? null };
    const body: PolicyRequestBody = { kind: "performInvocation", request: { interface: iface, function: fn, target: request } };
    const d = this.decide(body);
    if (!(d instanceof Promise)) {
      enforce(body, d);
      return undefined;
    }
    return d.then((r) => enforce(body, r));
  }

  /**
   * Wraps an invocation handler so that each call is checked first ({@link checkInvocation}); a denial becomes the
   * call's error (`POLICY_DENIED`). Returns `handler` itself when invocations are not checked.
   */
  guard<R extends { iface: string; fn: string }, T>(target: InvocationTarget, handler: (req: R) => Promise<T> | T): (req: R) => Promise<T> | T {
    if (!this.checksInvocations) return handler;
    const t: InvocationTarget = { ...target, annotations: sortedAnnotations(target.annotations) };
    return (req) => {
      const pending = this.checkInvocation(t, req.iface, req.fn);
      return pending === undefined ? handler(req) : pending.then(() => handler(req));
    };
  }

  /** Stops listening for overrides. Idempotent. */
  close(): void {
    this.#changes?.unsubscribe();
    this.#changes = undefined;
  }
}

function describe(body: PolicyRequestBody): string {
  switch (body.kind) {
    case "startComponent":
      return `starting component ${body.request.componentId} (${body.request.imageRef})`;
    case "startProvider":
      return `starting provider ${body.request.providerId} (${body.request.imageRef})`;
    case "performInvocation":
      return `invoking ${body.request.interface}.${body.request.function} on component ${body.request.target.componentId}`;
  }
}

function enforce(body: PolicyRequestBody, d: PolicyResponse): void {
  if (d.permitted) return;
  throw new PolicyDeniedError(`policy denied ${describe(body)}${d.message ? `: ${d.message}` : ""}`, { kind: body.kind, requestId: d.requestId });
}
