/**
 * A client of the OCI distribution API (distribution-spec v1.1: manifests, blobs, monolithic blob upload) with the
 * registry token flow (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`) and Basic auth, a content-addressed
 * cache, digest verification of everything it reads, mirrors and plain-HTTP hosts.
 * Written here rather than reused: no maintained JavaScript OCI client runs on Node without Docker (ADR 0018).
 * @module
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import type { OciConfig } from "./options.ts";
import { formatOciRef, parseOciRef, type OciReference } from "./reference.ts";

/** OCI image manifest media type. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** Docker v2 schema 2 manifest media type (accepted on pull). */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

/** A descriptor (OCI image-spec §descriptor). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** An image manifest (OCI image-spec §manifest). */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** Failure talking to a registry, or content that does not match its digest (code `OCI_ERROR`). */
export class OciError extends TrellisError {
  constructor(ref: string, message: string, options?: { cause?: unknown; status?: number }) {
    super(ErrorCode.Oci, message, { details: { ref, ...(options?.status === undefined ? {} : { status: options.status }) }, cause: options?.cause });
    this.name = "OciError";
  }
}

/** `sha256:` + hex of `bytes`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** What a pull returns: the manifest (verified) and a function that reads a layer (verified, cached). */
export interface PulledManifest {
  ref: OciReference;
  /** Digest of the manifest as served. */
  digest: string;
  manifest: ImageManifest;
}

/** One blob to push. */
export interface BlobInput {
  mediaType: string;
  bytes: Uint8Array;
  annotations?: Record<string, string>;
}

/** Registry client for one {@link OciConfig}. Safe to share; it keeps bearer tokens per registry and scope. */
export class OciRegistry {
  readonly #cfg: OciConfig;
  readonly #tokens = new Map<string, string>();
  #dockerAuths: Record<string, string> | undefined;

  constructor(cfg: OciConfig) {
    this.#cfg = cfg;
  }

  /** The settings this client was made with. */
  get config(): OciConfig {
    return this.#cfg;
  }

  /**
   * Resolves and reads the manifest of `refText`. A digest reference whose manifest is cached needs no network.
   * @throws OciReferenceError for a malformed reference; OciError for `:latest` without `allowLatest`, a registry
   *   error (status in `details`), a manifest index (multi-platform images are not WebAssembly artifacts), or a
   *   manifest that does not match the reference's digest.
   */
  async pullManifest(refText: string): Promise<PulledManifest> {
    const ref = parseOciRef(refText);
    const text = formatOciRef(ref);
    if (ref.tag === "latest" && ref.digest === undefined && !this.#cfg.allowLatest) {
      throw new OciError(text, `${text}: images tagged latest are refused unless the host allows them (--allow-latest, TRELLIS_OCI_ALLOW_LATEST)`);
    }
    let bytes: Uint8Array | undefined;
    if (ref.digest !== undefined) bytes = await this.#readCached(ref.digest);
    if (bytes === undefined) {
      const res = await this.#request(ref, `/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag ?? "latest"}`, {
        headers: { accept: `${OCI_MANIFEST}, ${DOCKER_MANIFEST}` },
      }, "pull");
      bytes = await this.#body(text, res, 4 * 1024 * 1024);
      const type = res.headers.get("content-type") ?? "";
      if (/manifest\.list|image\.index/.test(type)) throw new OciError(text, `${text} is a multi-platform image index, not a WebAssembly component or provider archive`);
    }
    const digest = sha256Digest(bytes);
    if (ref.digest !== undefined && digest !== ref.digest) {
      throw new OciError(text, `${text}: the registry served a manifest whose digest is ${digest}, not the requested ${ref.digest}`);
    }
    let manifest: ImageManifest;
    try {
      manifest = JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest;
    } catch (err) {
      throw new OciError(text, `${text}: the manifest is not JSON`, { cause: err });
    }
    if (!Array.isArray(manifest.layers) || typeof manifest.config?.digest !== "string") {
      throw new OciError(text, `${text}: the manifest has no config or layers (is it an image index?)`);
    }
    await this.#writeCached(digest, bytes);
    return { ref, digest, manifest };
  }

  /**
   * Reads a blob of `ref`'s repository, from the cache when present, and verifies its digest.
   * @throws OciError when the registry fails, the blob exceeds `maxBytes`, or its content does not match `digest`
   *   (a tampered blob is refused and not cached).
   */
  async blob(ref: OciReference, desc: Descriptor): Promise<Uint8Array> {
    const text = formatOciRef(ref);
    if (desc.size > this.#cfg.maxBytes) throw new OciError(text, `${text}: layer ${desc.digest} is ${desc.size} bytes, over the limit of ${this.#cfg.maxBytes}`);
    const cached = await this.#readCached(desc.digest);
    if (cached !== undefined) return cached;
    const res = await this.#request(ref, `/v2/${ref.repository}/blobs/${desc.digest}`, {}, "pull");
    const bytes = await this.#body(text, res, this.#cfg.maxBytes);
    const got = sha256Digest(bytes);
    if (got !== desc.digest) throw new OciError(text, `${text}: blob ${desc.digest} does not match its digest (the registry served ${got}); refused`);
    await this.#writeCached(got, bytes);
    return bytes;
  }

  /**
   * Pushes a config blob, layers and an image manifest under `refText`'s tag (or its digest).
   * @returns the manifest digest.
   * @throws OciError when the registry refuses an upload.
   */
  async push(refText: string, config: BlobInput, layers: BlobInput[], extra: { annotations?: Record<string, string>; artifactType?: string } = {}): Promise<string> {
    const ref = parseOciRef(refText);
    const text = formatOciRef(ref);
    if (ref.tag === "latest" && ref.digest === undefined && !this.#cfg.allowLatest) {
      throw new OciError(text, `${text}: pushing to latest is refused unless allowed (--allow-latest)`);
    }
    const descs: Descriptor[] = [];
    for (const b of [config, ...layers]) {
      const digest = sha256Digest(b.bytes);
      await this.#pushBlob(ref, digest, b.bytes);
      descs.push({ mediaType: b.mediaType, digest, size: b.bytes.length, ...(b.annotations ? { annotations: b.annotations } : {}) });
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      ...(extra.artifactType ? { artifactType: extra.artifactType } : {}),
      config: descs[0]!,
      layers: descs.slice(1),
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
    };
    const bytes = new TextEncoder().encode(JSON.stringify(manifest));
    const res = await this.#request(ref, `/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag ?? "latest"}`, {
      method: "PUT",
      headers: { "content-type": OCI_MANIFEST },
      body: bytes,
    }, "push");
    await res.body?.cancel();
    return sha256Digest(bytes);
  }

  async #pushBlob(ref: OciReference, digest: string, bytes: Uint8Array): Promise<void> {
    const head = await this.#request(ref, `/v2/${ref.repository}/blobs/${digest}`, { method: "HEAD" }, "push", [404]);
    if (head.status === 200) return;
    const start = await this.#request(ref, `/v2/${ref.repository}/blobs/uploads/`, { method: "POST" }, "push");
    await start.body?.cancel();
    const location = start.headers.get("location");
    if (!location) throw new OciError(formatOciRef(ref), `${formatOciRef(ref)}: the registry gave no upload location`);
    const url = new URL(location, this.#base(ref));
    url.searchParams.set("digest", digest);
    const put = await this.#request(ref, url.pathname + url.search, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    }, "push");
    await put.body?.cancel();
  }

  #base(ref: OciReference): string {
    const host = this.#cfg.mirrors[ref.registry] ?? ref.registry;
    const insecure = this.#cfg.insecureHosts.includes(host) || this.#cfg.insecureHosts.includes(ref.registry);
    return `${insecure ? "http" : "https"}://${host}`;
  }

  async #request(ref: OciReference, urlPath: string, init: RequestInit, action: "pull" | "push", okStatuses: number[] = []): Promise<Response> {
    const text = formatOciRef(ref);
    const base = this.#base(ref);
    const scope = `repository:${ref.repository}:${action === "push" ? "pull,push" : "pull"}`;
    const tokenKey = `${base} ${scope}`;
    const send = async (auth: string | undefined): Promise<Response> => {
      const headers = new Headers(init.headers);
      if (auth) headers.set("authorization", auth);
      try {
        return await fetch(base + urlPath, { ...init, headers, redirect: "follow", signal: AbortSignal.timeout(this.#cfg.timeoutMs) });
      } catch (err) {
        throw new OciError(text, `${text}: cannot reach registry ${base}: ${(err as Error).message}`, { cause: err });
      }
    };
    let res = await send(this.#tokens.get(tokenKey));
    if (res.status === 401) {
      const challenge = res.headers.get("www-authenticate") ?? "";
      await res.body?.cancel();
      const auth = await this.#authorize(ref, base, challenge, scope);
      if (auth !== undefined) {
        this.#tokens.set(tokenKey, auth);
        res = await send(auth);
      }
    }
    if (res.ok || okStatuses.includes(res.status)) return res;
    const detail = (await res.text().catch(() => "")).slice(0, 300);
    const hint = res.status === 401 || res.status === 403 ? " (give credentials with --oci-user/--oci-password or a docker config.json)" : "";
    throw new OciError(text, `${text}: registry answered ${res.status} ${res.statusText} for ${init.method ?? "GET"} ${urlPath}${hint}${detail ? `: ${detail}` : ""}`, { status: res.status });
  }

  async #authorize(ref: OciReference, base: string, challenge: string, scope: string): Promise<string | undefined> {
    const basic = await this.#basicFor(ref.registry);
    if (/^basic/i.test(challenge)) return basic;
    if (!/^bearer/i.test(challenge)) return undefined;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    if (!params.realm) return undefined;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? scope);
    let res: Response;
    try {
      res = await fetch(url, { headers: basic ? { authorization: basic } : {}, signal: AbortSignal.timeout(this.#cfg.timeoutMs) });
    } catch (err) {
      throw new OciError(formatOciRef(ref), `${formatOciRef(ref)}: cannot reach the token service of ${base}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new OciError(formatOciRef(ref), `${formatOciRef(ref)}: the token service of ${base} answered ${res.status}`, { status: res.status });
    }
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    return token ? `Bearer ${token}` : undefined;
  }

  async #basicFor(registry: string): Promise<string | undefined> {
    if (this.#cfg.user !== undefined) return `Basic ${Buffer.from(`${this.#cfg.user}:${this.#cfg.password ?? ""}`).toString("base64")}`;
    if (this.#dockerAuths === undefined) {
      this.#dockerAuths = {};
      try {
        const json = JSON.parse(await readFile(this.#cfg.dockerConfigPath, "utf8")) as { auths?: Record<string, { auth?: string }> };
        for (const [k, v] of Object.entries(json.auths ?? {})) if (v.auth) this.#dockerAuths[k.replace(/^https?:\/\//, "").replace(/\/.*$/, "")] = v.auth;
      } catch {
        // no docker config: anonymous
      }
    }
    const auth = this.#dockerAuths[registry];
    return auth ? `Basic ${auth}` : undefined;
  }

  async #body(ref: string, res: Response, max: number): Promise<Uint8Array> {
    const declared = Number(res.headers.get("content-length") ?? NaN);
    if (declared > max) {
      await res.body?.cancel();
      throw new OciError(ref, `${ref}: the registry offers ${declared} bytes, over the limit of ${max}`);
    }
    const reader = res.body?.getReader();
    if (!reader) return new Uint8Array(0);
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > max) {
        await reader.cancel();
        throw new OciError(ref, `${ref}: more than ${max} bytes; refused`);
      }
      parts.push(value);
    }
    return Buffer.concat(parts);
  }

  #cachePath(digest: string): string {
    return path.join(this.#cfg.cacheDir, "oci", "blobs", ...digest.split(":"));
  }

  async #readCached(digest: string): Promise<Uint8Array | undefined> {
    try {
      const bytes = await readFile(this.#cachePath(digest));
      // the cache is trusted no more than the registry: re-verify
      return sha256Digest(bytes) === digest ? bytes : undefined;
    } catch {
      return undefined;
    }
  }

  async #writeCached(digest: string, bytes: Uint8Array): Promise<void> {
    const file = this.#cachePath(digest);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  }
}
