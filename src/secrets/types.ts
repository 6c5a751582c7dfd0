/**
 * Wire and stored shapes of secrets (reference §6.5, wasmCloud `crates/secrets-types`): secret references kept as
 * named config `SECRET_{name}`, the backend's request and response, and secret values as providers receive them.
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";

/** Config names starting with this are secret references, not config (1.x `SECRET_PREFIX`). */
export const SECRET_PREFIX = "SECRET_";
/** `type` of a secret reference. */
export const SECRET_TYPE = "secret.wasmcloud.dev/v1alpha1";
/** `type` of a secret reference's policy. */
export const SECRET_POLICY_PROPERTIES_TYPE = "properties.secret.wasmcloud.dev/v1alpha1";
/** Request header naming the requester's one-time xkey. */
export const HOST_XKEY_HEADER = "WasmCloud-Host-Xkey";
/** Reply header naming the key the reply was sealed with. */
export const RESPONSE_XKEY_HEADER = "Server-Response-Xkey";
/** The first-party backend's name (what 1.x manifests call the NATS KV backend). */
export const DEFAULT_SECRETS_BACKEND = "nats-kv";

/** True for config names that are secret references. */
export function isSecretName(name: string): boolean {
  return name.startsWith(SECRET_PREFIX);
}

/** A secret reference (1.x `SecretConfig`), stored as named config `SECRET_{…}` with string values. */
export interface SecretReference {
  /** The name the workload looks the secret up by. */
  name: string;
  backend: string;
  /** The backend's key. */
  key: string;
  field?: string;
  version?: string;
  /** JSON string `{"type": "properties.secret.wasmcloud.dev/v1alpha1", "properties": {…}}`. */
  policy: string;
}

/** The string map stored for a reference (config.put body). */
export function referenceToConfig(r: SecretReference): Record<string, string> {
  const out: Record<string, string> = { name: r.name, backend: r.backend, key: r.key, policy: r.policy, type: SECRET_TYPE };
  if (r.field !== undefined) out.field = r.field;
  if (r.version !== undefined) out.version = r.version;
  return out;
}

/** A policy string with these properties (1.x `Policy`). */
export function policyString(properties: Record<string, unknown> = {}): string {
  return JSON.stringify({ type: SECRET_POLICY_PROPERTIES_TYPE, properties });
}

/**
 * Reads a secret reference from the config stored under `configName`.
 * @throws InvalidArgumentError naming the config when it is not a secret reference.
 */
export function configToReference(configName: string, m: Record<string, string>): SecretReference {
  if (m.type !== SECRET_TYPE || !m.name || !m.backend || !m.key) {
    throw new InvalidArgumentError(configName, `${configName} is not a secret reference (needs type ${SECRET_TYPE}, name, backend and key)`);
  }
  const r: SecretReference = { name: m.name, backend: m.backend, key: m.key, policy: m.policy ?? policyString() };
  if (m.field) r.field = m.field;
  if (m.version) r.version = m.version;
  return r;
}

/** A secret value as delivered (1.x `SecretValue` serde form). */
export type SecretValue = { kind: "String"; value: string } | { kind: "Bytes"; value: number[] };

/** `SecretRequest` (reference §6.5). */
export interface SecretRequest {
  key: string;
  field?: string | null;
  version?: string | null;
  context: {
    entity_jwt: string;
    host_jwt: string;
    application: { name?: string | null; policy: string };
  };
}

/** `SecretResponse` (reference §6.5). */
export interface SecretResponse {
  secret?: { version: string; string_secret?: string | null; binary_secret?: number[] | null };
  error?: unknown;
}
