/**
 * Loading component bytes from a file path, a `file://` URL or an `http(s)://` URL, with a size limit
 * (issue 3 §1).
 * @module
 */
import { open, stat } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { classifyWasm } from "./component-types.ts";
import { looksLikeOciRef } from "../oci/reference.ts";
import { pullComponent } from "../oci/artifacts.ts";
import type { OciRegistry } from "../oci/registry.ts";

/** Largest component accepted by default: 128 MiB. */
export const DEFAULT_MAX_COMPONENT_BYTES = 128 * 1024 * 1024;

/** Options of {@link loadComponentBytes}. */
export interface LoadOptions {
  /** Largest file accepted, in bytes. @default 134217728 (128 MiB) */
  maxBytes?: number;
  /** Time limit for an http(s) download, in milliseconds. @default 30000 */
  fetchTimeoutMs?: number;
  /** Directory that relative paths are resolved against. @default process.cwd() */
  baseDir?: string;
  /** Registry client for OCI references (src/oci); without one an OCI reference is refused. */
  oci?: OciRegistry;
}

/** A component reference's kind. */
export type RefKind = "file" | "http" | "oci";

/** Load failure (code `COMPONENT_LOAD_FAILED`) naming the reference. */
export class ComponentLoadError extends TrellisError {
  readonly ref: string;
  constructor(ref: string, message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? ErrorCode.ComponentLoad, message, { details: { ref }, cause: options?.cause });
    this.name = "ComponentLoadError";
    this.ref = ref;
  }
}

/**
 * Resolves a reference: an OCI reference (`registry/repo:tag`, `@sha256:…`, `oci://…`; src/oci), `file:///abs/x.wasm`,
 * `/abs/x.wasm`, `./rel/x.wasm` (against `baseDir`), or `http(s)://…`. A relative path whose first segment looks like
 * a registry host (`dir.d/x`) is taken as an OCI reference: write `./dir.d/x` for the file.
 * @throws ComponentLoadError for other schemes.
 */
export function resolveRef(ref: string, baseDir = process.cwd()): { kind: RefKind; location: string } {
  if (/^https?:\/\//i.test(ref)) return { kind: "http", location: ref };
  if (ref.startsWith("file://")) return { kind: "file", location: fileURLToPath(ref) };
  if (looksLikeOciRef(ref)) return { kind: "oci", location: ref };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
    throw new ComponentLoadError(ref, `unsupported component reference ${ref}: use an OCI reference, a file path, a file:// URL or an http(s):// URL`);
  }
  return { kind: "file", location: isAbsolute(ref) ? ref : resolve(baseDir, ref) };
}

/**
 * Reads a component's bytes and checks that they are a component (not a core module).
 * @throws ComponentLoadError (`COMPONENT_LOAD_FAILED`) when the file is missing, not a component or unreadable;
 *   `PAYLOAD_TOO_LARGE` when it exceeds `maxBytes`.
 */
export async function loadComponentBytes(ref: string, opts: LoadOptions = {}): Promise<Uint8Array> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_COMPONENT_BYTES;
  const { kind, location } = resolveRef(ref, opts.baseDir);
  const tooBig = (n: number | string) =>
    new ComponentLoadError(ref, `component ${ref} is ${n} bytes, larger than the limit of ${maxBytes} bytes`, {
      code: ErrorCode.PayloadTooLarge,
    });
  let bytes: Uint8Array;
  if (kind === "file") {
    let size: number;
    try {
      const st = await stat(location);
      if (!st.isFile()) throw new Error("not a regular file");
      size = st.size;
    } catch (err) {
      throw new ComponentLoadError(ref, `cannot read component ${ref}: ${(err as Error).message}`, { cause: err });
    }
    if (size > maxBytes) throw tooBig(size);
    const fh = await open(location, "r");
    try {
      bytes = new Uint8Array(size);
      let off = 0;
      while (off < size) {
        const { bytesRead } = await fh.read(bytes, off, size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      if (off !== size) bytes = bytes.subarray(0, off);
    } finally {
      await fh.close();
    }
  } else if (kind === "oci") {
    if (!opts.oci) throw new ComponentLoadError(ref, `${ref} is an OCI reference and this runtime has no OCI registry client`);
    try {
      bytes = (await pullComponent(opts.oci, location)).bytes;
    } catch (err) {
      throw new ComponentLoadError(ref, `cannot pull component ${ref}: ${(err as Error).message}`, { cause: err });
    }
    if (bytes.length > maxBytes) throw tooBig(bytes.length);
  } else {
    bytes = await download(ref, location, maxBytes, opts.fetchTimeoutMs ?? 30_000, tooBig);
  }
  const cls = classifyWasm(bytes);
  if (cls === "module") {
    throw new ComponentLoadError(ref, `${ref} is a core WebAssembly module, not a component; build a component (e.g. wasm-tools component new)`);
  }
  if (cls !== "component") throw new ComponentLoadError(ref, `${ref} is not a WebAssembly component (bad header)`);
  return bytes;
}

async function download(
  ref: string,
  url: string,
  maxBytes: number,
  timeoutMs: number,
  tooBig: (n: number | string) => Error,
): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "follow" });
  } catch (err) {
    throw new ComponentLoadError(ref, `cannot download component ${ref}: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok) throw new ComponentLoadError(ref, `cannot download component ${ref}: HTTP ${res.status} ${res.statusText}`);
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw tooBig(declared);
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooBig(`more than ${maxBytes}`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
