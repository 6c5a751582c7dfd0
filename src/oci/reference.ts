/**
 * OCI references: `registry/repository[:tag][@sha256:digest]`, optionally prefixed `oci://` (wasmCloud 1.x and wash
 * accept both). The registry is always explicit (no implicit docker.io): its first path segment must look like a host
 * (`ghcr.io`, `127.0.0.1:5000`, `localhost`).
 * Grammar: the OCI distribution spec, "Pulling manifests" (`<name>` and `<reference>`).
 * @module
 */
import { ErrorCode, TrellisError } from "../core/errors.ts";

/** A parsed OCI reference. */
export interface OciReference {
  /** Registry host, with port when given: `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Repository path inside the registry: `wasmcloud/components/http-hello-world-rust`. */
  repository: string;
  /** Tag, when given (`0.1.0`). */
  tag: string | undefined;
  /** Content digest, when given (`sha256:` + 64 lower-case hex digits). */
  digest: string | undefined;
}

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const HOST_RE = /^(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|\[[0-9a-fA-F:]+\]|[A-Za-z0-9-]+(?=:))(?::\d{1,5})?$/;

/** Thrown for a reference that is not a valid OCI reference (code `INVALID_ARGUMENT`, `details.ref`). */
export class OciReferenceError extends TrellisError {
  constructor(ref: string, why: string) {
    super(ErrorCode.InvalidArgument, `invalid OCI reference ${JSON.stringify(ref)}: ${why}`, { details: { field: "ref", ref } });
    this.name = "OciReferenceError";
  }
}

/**
 * True when `ref` is meant as an OCI reference: it starts with `oci://`, or its first segment is a registry host and
 * it is neither a URL of another scheme, a relative or absolute path, nor a file name ending in `.wasm`.
 */
export function looksLikeOciRef(ref: string): boolean {
  if (ref.startsWith("oci://")) return true;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref) || ref.startsWith("/") || ref.startsWith(".") || ref.endsWith(".wasm")) return false;
  const slash = ref.indexOf("/");
  if (slash <= 0) return false;
  return HOST_RE.test(ref.slice(0, slash));
}

/**
 * Parses `[oci://]registry/repository[:tag][@sha256:…]`.
 * @throws OciReferenceError naming what is wrong (no registry host, bad repository, tag or digest).
 */
export function parseOciRef(input: string): OciReference {
  const ref = input.trim();
  let rest = ref.startsWith("oci://") ? ref.slice("oci://".length) : ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw new OciReferenceError(ref, `the digest must be sha256: and 64 lower-case hex digits, got ${JSON.stringify(digest)}`);
  }
  const slash = rest.indexOf("/");
  if (slash <= 0) throw new OciReferenceError(ref, "it names no registry (expected registry/repository[:tag])");
  const registry = rest.slice(0, slash);
  if (!HOST_RE.test(registry)) throw new OciReferenceError(ref, `${JSON.stringify(registry)} is not a registry host`);
  let repository = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = repository.lastIndexOf(":");
  if (colon >= 0) {
    tag = repository.slice(colon + 1);
    repository = repository.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new OciReferenceError(ref, `${JSON.stringify(tag)} is not a valid tag`);
  }
  if (!REPO_RE.test(repository)) throw new OciReferenceError(ref, `${JSON.stringify(repository)} is not a valid repository name (lower case, digits, . _ - and /)`);
  if (tag === undefined && digest === undefined) tag = "latest";
  return { registry, repository, tag, digest };
}

/** `registry/repository[:tag][@digest]`, the canonical text of a reference. */
export function formatOciRef(r: OciReference): string {
  return `${r.registry}/${r.repository}${r.tag === undefined ? "" : `:${r.tag}`}${r.digest === undefined ? "" : `@${r.digest}`}`;
}
