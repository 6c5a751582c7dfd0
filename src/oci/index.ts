/**
 * OCI: components and capability providers by reference (`registry/repo:tag`, `@sha256:` digests, `oci://`), pulled
 * with the OCI distribution API, verified by digest, cached by content; pushed the way wasmCloud 1.x publishes them.
 * @module
 */
export { parseOciRef, formatOciRef, looksLikeOciRef, OciReferenceError, type OciReference } from "./reference.ts";
export { compileOciOptions, parseMirrors, DEFAULT_OCI_MAX_BYTES, DEFAULT_OCI_TIMEOUT_MS, type OciOptions, type OciConfig } from "./options.ts";
export { OciRegistry, OciError, sha256Digest, OCI_MANIFEST, type ImageManifest, type Descriptor, type PulledManifest } from "./registry.ts";
export {
  pullComponent,
  pullProvider,
  pushComponent,
  pushProvider,
  WASM_LAYER,
  WASM_CONFIG,
  WASMCLOUD_WASM_LAYER,
  PAR_LAYER,
  PAR_CONFIG,
  type PulledComponent,
  type PulledProvider,
  type ComponentSummary,
} from "./artifacts.ts";
export { readProviderArchive, writeProviderArchive, hostTarget, parHash, ProviderArchiveError, type ProviderArchive } from "./par.ts";
export { firstPartyAlias, PROVIDER_IMAGE_ALIASES, BUILTIN_ALIASES } from "./aliases.ts";
