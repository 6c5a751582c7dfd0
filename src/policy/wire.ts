/**
 * The policy service wire of wasmCloud 1.x (reference §6.4; `crates/host/src/policy.rs` of `release-1.9.x`): request
 * and response shapes, and the cache key of each decision.
 * @module
 */

/** Version of the request body; wasmCloud 1.x sends `"v1"`. */
export const POLICY_REQUEST_VERSION = "v1";

/** What the host asks about. */
export type PolicyRequestKind = "startComponent" | "startProvider" | "performInvocation";

/** Claims embedded in a signed component or provider (`claims`; `null` when unsigned). */
export interface PolicyClaims {
  publicKey: string;
  issuer: string;
  /** Seconds since the epoch, as a decimal string (wasmCloud serializes it so). */
  issuedAt: string;
  /** Seconds since the epoch, or null. */
  expiresAt: number | null;
  expired: boolean;
}

/** `request` of a `startComponent` decision; also the `target` of a `performInvocation` one (`maxInstances` 0). */
export interface ComponentInformation {
  componentId: string;
  imageRef: string;
  maxInstances: number;
  annotations: Record<string, string>;
  claims: PolicyClaims | null;
}

/** `request` of a `startProvider` decision. */
export interface ProviderInformation {
  providerId: string;
  imageRef: string;
  annotations: Record<string, string>;
  claims: PolicyClaims | null;
}

/** `request` of a `performInvocation` decision. */
export interface PerformInvocationRequest {
  /** The interface called, e.g. `wasi:http/incoming-handler`. */
  interface: string;
  /** The function called, e.g. `handle`. */
  function: string;
  target: ComponentInformation;
}

/** The host asking (`host`). */
export interface PolicyHostInfo {
  publicKey: string;
  lattice: string;
  labels: Record<string, string>;
}

/** The request sent to the policy topic. */
export type PolicyRequest = {
  requestId: string;
  version: string;
  host: PolicyHostInfo;
} & (
  | { kind: "startComponent"; request: ComponentInformation }
  | { kind: "startProvider"; request: ProviderInformation }
  | { kind: "performInvocation"; request: PerformInvocationRequest }
);

/** A decision: the reply to a request, or a message on the changes topic overriding an earlier one. */
export interface PolicyResponse {
  requestId: string;
  permitted: boolean;
  message?: string;
}

/** The body of a request, by kind. */
export type PolicyRequestBody =
  | { kind: "startComponent"; request: ComponentInformation }
  | { kind: "startProvider"; request: ProviderInformation }
  | { kind: "performInvocation"; request: PerformInvocationRequest };

/**
 * The cache key of a decision, as wasmCloud 1.x forms it: kind plus `{componentId}_{imageRef}`,
 * `{providerId}_{imageRef}` or `{componentId}_{imageRef}_{interface}_{function}`.
 */
export function cacheKey(body: PolicyRequestBody): string {
  switch (body.kind) {
    case "startComponent":
      return `startComponent\0${body.request.componentId}_${body.request.imageRef}`;
    case "startProvider":
      return `startProvider\0${body.request.providerId}_${body.request.imageRef}`;
    case "performInvocation":
      return invocationKey(body.request.target.componentId, body.request.target.imageRef, body.request.interface, body.request.function);
  }
}

/** {@link cacheKey} of a `performInvocation` decision, without building the request (the per-call fast path). */
export function invocationKey(componentId: string, imageRef: string, iface: string, fn: string): string {
  return `performInvocation\0${componentId}_${imageRef}_${iface}_${fn}`;
}

/** Annotations with sorted keys (wasmCloud sends a `BTreeMap`). */
export function sortedAnnotations(a: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(a ?? {}).sort()) out[k] = a![k]!;
  return out;
}

/**
 * Reads a decision from bytes: a JSON object with a string `requestId` and a boolean `permitted` (and an optional
 * string `message`). Returns a string saying what is wrong otherwise.
 */
export function parseDecision(data: Uint8Array): PolicyResponse | string {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(data));
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "not a JSON object";
  const o = v as Record<string, unknown>;
  if (typeof o.requestId !== "string") return "requestId is missing or not a string";
  if (typeof o.permitted !== "boolean") return "permitted is missing or not a boolean";
  if (o.message !== undefined && o.message !== null && typeof o.message !== "string") return "message is not a string";
  return typeof o.message === "string" ? { requestId: o.requestId, permitted: o.permitted, message: o.message } : { requestId: o.requestId, permitted: o.permitted };
}
