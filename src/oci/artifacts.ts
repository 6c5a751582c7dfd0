/**
 * Components and capability providers as OCI artifacts, laid out as wasmCloud 1.x and the CNCF wasm OCI artifact
 * spec lay them out:
 * - a component: one layer `application/wasm` (pushed; also read: wasmCloud's older
 *   `application/vnd.module.wasm.content.layer.v1+wasm` and `application/vnd.oci.image.layer.v1.tar`), config
 *   `application/vnd.wasm.config.v0+json` (`{created, architecture: "wasm", os: "wasip2", layerDigests, component}`);
 * - a provider: one layer `application/vnd.wasmcloud.provider.archive.layer.v1+par` holding a provider archive
 *   (src/oci/par.ts), config `application/vnd.wasmcloud.provider.archive.config`.
 * @module
 */
import { chmod, mkdir, rename, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { OciError, sha256Digest, type OciRegistry, type PulledManifest } from "./registry.ts";
import { formatOciRef } from "./reference.ts";
import { hostTarget, readProviderArchive, writeProviderArchive } from "./par.ts";

/** Component layer media type of the CNCF wasm OCI artifact spec (what `trellis push` writes). */
export const WASM_LAYER = "application/wasm";
/** Component config media type of the CNCF wasm OCI artifact spec. */
export const WASM_CONFIG = "application/vnd.wasm.config.v0+json";
/** wasmCloud's older component layer media type (read). */
export const WASMCLOUD_WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm";
/** Generic OCI layer media type that wasmCloud 1.x also accepts (read). */
export const OCI_TAR_LAYER = "application/vnd.oci.image.layer.v1.tar";
/** Provider archive layer media type (wasmCloud 1.x). */
export const PAR_LAYER = "application/vnd.wasmcloud.provider.archive.layer.v1+par";
/** Provider archive config media type (wasmCloud 1.x). */
export const PAR_CONFIG = "application/vnd.wasmcloud.provider.archive.config";

const COMPONENT_LAYERS = [WASM_LAYER, WASMCLOUD_WASM_LAYER, OCI_TAR_LAYER];
const PROVIDER_LAYERS = [PAR_LAYER, OCI_TAR_LAYER];

function pickLayer(pulled: PulledManifest, accepted: string[], what: string): PulledManifest["manifest"]["layers"][number] {
  const text = formatOciRef(pulled.ref);
  const layers = pulled.manifest.layers.filter((l) => accepted.includes(l.mediaType));
  if (layers.length === 0) {
    const got = pulled.manifest.layers.map((l) => l.mediaType).join(", ") || "none";
    throw new OciError(text, `${text} is not a ${what}: it has no layer of type ${accepted.join(" or ")} (layers: ${got})`);
  }
  if (pulled.manifest.layers.length > 1 && what === "component") {
    throw new OciError(text, `${text}: a WebAssembly artifact has exactly one layer, this one has ${pulled.manifest.layers.length}`);
  }
  return layers[0]!;
}

/** A pulled component: its bytes and the manifest digest it came from. */
export interface PulledComponent {
  bytes: Uint8Array;
  /** Digest of the manifest: pin it with `ref@digest`. */
  digest: string;
}

/**
 * Pulls a component by reference (verified by digest; cached by content).
 * @throws OciReferenceError, OciError (see {@link OciRegistry.pullManifest} and {@link OciRegistry.blob}), and
 *   OciError when the artifact is not a component.
 */
export async function pullComponent(registry: OciRegistry, ref: string): Promise<PulledComponent> {
  const pulled = await registry.pullManifest(ref);
  const layer = pickLayer(pulled, COMPONENT_LAYERS, "component");
  return { bytes: await registry.blob(pulled.ref, layer), digest: pulled.digest };
}

/** A pulled provider: the executable for this machine, written into the cache. */
export interface PulledProvider {
  /** Absolute path of the executable (mode 0755), under `{cacheDir}/oci/providers/{layer digest}/`. */
  file: string;
  /** The archive's `claims.jwt`, when it has one. */
  claimsJwt: string | undefined;
  digest: string;
}

/**
 * Pulls a provider archive and extracts this machine's binary (`target`, default {@link hostTarget}).
 * @throws OciError when the artifact is not a provider archive, holds no binary for `target`, or a binary does not
 *   match its claims hash.
 */
export async function pullProvider(registry: OciRegistry, ref: string, target = hostTarget()): Promise<PulledProvider> {
  const pulled = await registry.pullManifest(ref);
  const layer = pickLayer(pulled, PROVIDER_LAYERS, "provider archive");
  const dir = path.join(registry.config.cacheDir, "oci", "providers", layer.digest.replace(":", "-"));
  const file = path.join(dir, target);
  const bytes = await registry.blob(pulled.ref, layer);
  let archive;
  try {
    archive = await readProviderArchive(bytes, target);
  } catch (err) {
    throw new OciError(formatOciRef(pulled.ref), `${formatOciRef(pulled.ref)}: ${(err as Error).message}`, { cause: err });
  }
  const exists = await stat(file).then((s) => s.isFile(), () => false);
  if (!exists) {
    await mkdir(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, archive.targets[target]!);
    await chmod(tmp, 0o755);
    await rename(tmp, file);
  }
  return { file, claimsJwt: archive.claimsJwt, digest: pulled.digest };
}

/** What a component push records about the component (the CNCF config's `component` field). */
export interface ComponentSummary {
  /** Imported interfaces, `ns:pkg/iface@ver`. */
  imports: string[];
  /** Exported interfaces. */
  exports: string[];
}

/**
 * Pushes a component as a wasm OCI artifact.
 * @returns the manifest digest.
 * @throws OciError when the registry refuses.
 */
export async function pushComponent(registry: OciRegistry, ref: string, bytes: Uint8Array, summary: ComponentSummary, annotations?: Record<string, string>): Promise<string> {
  const layerDigest = sha256Digest(bytes);
  const config = {
    created: new Date().toISOString(),
    architecture: "wasm",
    os: "wasip2",
    layerDigests: [layerDigest],
    component: { exports: summary.exports, imports: summary.imports, target: null },
  };
  return registry.push(
    ref,
    { mediaType: WASM_CONFIG, bytes: new TextEncoder().encode(JSON.stringify(config)) },
    [{ mediaType: WASM_LAYER, bytes }],
    annotations ? { annotations } : {},
  );
}

/**
 * Pushes a provider archive made of `targets` (`{arch}-{os}` → executable bytes) and optional signed claims.
 * @returns the manifest digest.
 * @throws OciError when the registry refuses.
 */
export async function pushProvider(registry: OciRegistry, ref: string, targets: Record<string, Uint8Array>, claimsJwt?: string): Promise<string> {
  const par = await writeProviderArchive({ targets, ...(claimsJwt === undefined ? {} : { claimsJwt }) });
  return registry.push(ref, { mediaType: PAR_CONFIG, bytes: new TextEncoder().encode("{}") }, [{ mediaType: PAR_LAYER, bytes: par }]);
}
