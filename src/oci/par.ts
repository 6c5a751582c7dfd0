/**
 * wasmCloud provider archives (PAR): a tar file, gzip-compressed or not, holding `claims.jwt` (the provider's signed
 * wascap claims, whose `wascap.target_hashes` give the upper-case hex SHA-256 of each binary), optionally
 * `world.wasm`, and one `{target}.bin` per platform, `target` being `{arch}-{os}` (`x86_64-linux`,
 * `aarch64-macos`, …). Layout as wasmCloud 1.9's `provider-archive` crate reads and writes it.
 * @module
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import { extract, pack } from "tar-stream";
import { ErrorCode, TrellisError } from "../core/errors.ts";

/** A provider archive's content. */
export interface ProviderArchive {
  /** `{target}` → executable bytes. */
  targets: Record<string, Uint8Array>;
  /** The `claims.jwt` token, when present. */
  claimsJwt: string | undefined;
  /** `world.wasm`, when present. */
  world: Uint8Array | undefined;
}

/** A malformed archive, a missing target, or a binary whose hash does not match the claims (code `OCI_ERROR`). */
export class ProviderArchiveError extends TrellisError {
  constructor(message: string) {
    super(ErrorCode.Oci, message);
    this.name = "ProviderArchiveError";
  }
}

/** The PAR target of this machine: `{arch}-{os}` with wasmCloud's names (`x86_64-linux`). */
export function hostTarget(arch: string = process.arch, platform: string = process.platform): string {
  const a = ({ x64: "x86_64", arm64: "aarch64", ia32: "x86", arm: "arm" } as Record<string, string>)[arch] ?? arch;
  const o = ({ darwin: "macos", win32: "windows" } as Record<string, string>)[platform] ?? platform;
  return `${a}-${o}`;
}

/** Upper-case hex SHA-256, as wascap's `target_hashes`. */
export function parHash(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex").toUpperCase();
}

/** The `wascap.target_hashes` of a claims JWT (signature not checked here: that is src/claims' job). */
function targetHashes(jwt: string): Record<string, string> | undefined {
  const payload = jwt.split(".")[1];
  if (payload === undefined) throw new ProviderArchiveError("claims.jwt in the provider archive is not a JWT");
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { wascap?: { target_hashes?: Record<string, string> } };
    return claims.wascap?.target_hashes;
  } catch {
    throw new ProviderArchiveError("claims.jwt in the provider archive has an unreadable payload");
  }
}

/**
 * Reads an archive. When it carries claims with target hashes, every binary read must match its hash.
 * @param only when given, read just this target's binary (the others are skipped, not held in memory).
 * @throws ProviderArchiveError for a malformed archive, one with no binary, or a hash mismatch.
 */
export async function readProviderArchive(bytes: Uint8Array, only?: string): Promise<ProviderArchive> {
  const tarBytes = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
  const out: ProviderArchive = { targets: {}, claimsJwt: undefined, world: undefined };
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on("entry", (header, stream, next) => {
      const name = header.name.replace(/^\.\//, "");
      const stem = name.replace(/\.[^./]*$/, "");
      const want = header.type === "file" && (stem === "claims" || stem === "world" || only === undefined || stem === only);
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => {
        if (want) chunks.push(c as Buffer);
      });
      stream.on("end", () => {
        if (want) {
          const data = Buffer.concat(chunks);
          if (stem === "claims") out.claimsJwt = data.toString("utf8").trim();
          else if (stem === "world") out.world = data;
          else out.targets[stem] = data;
        }
        next();
      });
      stream.resume();
    });
    ex.on("finish", resolve);
    ex.on("error", (e: Error) => reject(new ProviderArchiveError(`the provider archive is not a valid tar file: ${e.message}`)));
  });
  Readable.from([Buffer.from(tarBytes)]).pipe(ex);
  await done;
  if (Object.keys(out.targets).length === 0) {
    throw new ProviderArchiveError(only === undefined ? "the provider archive holds no binary" : `the provider archive has no binary for ${only}`);
  }
  if (out.claimsJwt !== undefined) {
    const hashes = targetHashes(out.claimsJwt) ?? {};
    for (const [target, bin] of Object.entries(out.targets)) {
      const want = hashes[target];
      if (want !== undefined && want !== parHash(bin)) {
        throw new ProviderArchiveError(`the ${target} binary of the provider archive does not match the hash in its claims; refused`);
      }
    }
  }
  return out;
}

/** Writes an archive (gzip-compressed tar), binaries as `{target}.bin`, plus `claims.jwt` when given. */
export async function writeProviderArchive(archive: { targets: Record<string, Uint8Array>; claimsJwt?: string }): Promise<Uint8Array> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    p.on("end", resolve);
    p.on("error", reject);
  });
  if (archive.claimsJwt !== undefined) p.entry({ name: "claims.jwt", mode: 0o644 }, Buffer.from(archive.claimsJwt));
  for (const [target, bin] of Object.entries(archive.targets)) p.entry({ name: `${target}.bin`, mode: 0o755 }, Buffer.from(bin));
  p.finalize();
  await ended;
  return gzipSync(Buffer.concat(chunks));
}
