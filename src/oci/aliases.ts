/**
 * Provider references that stand for first-party providers (docs/from-wasmcloud.md, "Provider aliases"):
 * wasmCloud 1.x's `wasmcloud+builtin://NAME` and its well-known provider images, whose wire contract the first-party
 * providers implement. A host turns the table off with `--no-builtin-aliases`; `wasmcloud+builtin://` references
 * then fail.
 * @module
 */

/** wasmCloud 1.x provider image repository (on ghcr.io) → first-party provider name. */
export const PROVIDER_IMAGE_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  "ghcr.io/wasmcloud/http-server": "http-server",
  "ghcr.io/wasmcloud/http-client": "http-client",
  "ghcr.io/wasmcloud/keyvalue-redis": "kv-redis",
  "ghcr.io/wasmcloud/keyvalue-nats": "kv-nats",
  "ghcr.io/wasmcloud/blobstore-fs": "blobstore-fs",
  "ghcr.io/wasmcloud/messaging-nats": "messaging-nats",
});

/** `wasmcloud+builtin://NAME` → first-party provider name. */
export const BUILTIN_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  "http-server": "http-server",
  "messaging-nats": "messaging-nats",
});

/**
 * The first-party provider a reference stands for, or undefined when it stands for none.
 * `ghcr.io/wasmcloud/http-server:0.27.0` → `http-server`; `wasmcloud+builtin://http-server` → `http-server`.
 */
export function firstPartyAlias(ref: string): string | undefined {
  const r = ref.trim().replace(/^oci:\/\//, "");
  if (r.startsWith("wasmcloud+builtin://")) return BUILTIN_ALIASES[r.slice("wasmcloud+builtin://".length)];
  const repo = r.replace(/@sha256:[0-9a-f]+$/, "").replace(/:[^/:]+$/, "");
  return PROVIDER_IMAGE_ALIASES[repo];
}
