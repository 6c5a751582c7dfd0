/**
 * Claims of capability providers (reference §6.2). A 1.x provider archive carries `claims.jwt` next to its
 * binaries; Trellis providers are plain executables (or Node scripts), so their claims JWT lives in a file beside the
 * executable: `<executable>.claims.jwt` (docs/security.md, docs/adr/0016-claims.md). The JWT's provider metadata holds
 * `target_hashes`: the uppercase hex SHA-256 of the executable, keyed by target (`x86_64-linux`, `aarch64-macos`, …).
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { arch, platform } from "node:os";
import { type Claims, ClaimsError, decodeJwt, type ProviderMetadata, type Token, verifyJwt } from "./jwt.ts";
import { sha256Hex } from "./wasm.ts";

/** Suffix of the claims file beside a provider executable. */
export const PROVIDER_CLAIMS_SUFFIX = ".claims.jwt";

/** The claims file of a provider executable: `<file>.claims.jwt`. */
export function providerClaimsPath(file: string): string {
  return `${file}${PROVIDER_CLAIMS_SUFFIX}`;
}

/** This machine's target as provider archives name it: `{arch}-{os}`, e.g. `x86_64-linux`. */
export function currentTarget(): string {
  const a = arch();
  const archName = a === "x64" ? "x86_64" : a === "arm64" ? "aarch64" : a;
  const p = platform();
  return `${archName}-${p === "darwin" ? "macos" : p === "win32" ? "windows" : p}`;
}

/** Orders provider metadata as wascap serializes it. */
export function orderedProviderMetadata(m: ProviderMetadata): ProviderMetadata {
  const o = { name: m.name, vendor: m.vendor } as ProviderMetadata;
  if (m.rev !== undefined) o.rev = m.rev;
  if (m.ver !== undefined) o.ver = m.ver;
  o.target_hashes = m.target_hashes;
  if (m.config_schema !== undefined) o.config_schema = m.config_schema;
  return o;
}

/**
 * Reads `<file>.claims.jwt` and checks it against the executable `file`: the executable's hash must be the one
 * signed for this machine's target. Signature and dates are checked too unless `verify` is false.
 * @returns undefined when there is no claims file (an unsigned provider).
 * @throws ClaimsError naming what failed (no hash for this target, hash mismatch, bad signature, expired).
 */
export function readProviderClaims(file: string, opts: { verify?: boolean; nowSec?: number } = {}): Token<ProviderMetadata> | undefined {
  const path = providerClaimsPath(file);
  if (!existsSync(path)) return undefined;
  const jwt = readFileSync(path, "utf8").trim();
  const claims: Claims<ProviderMetadata> = opts.verify === false ? decodeJwt<ProviderMetadata>(jwt) : verifyJwt<ProviderMetadata>(jwt, opts.nowSec);
  const meta = claims.wascap;
  if (!meta || typeof meta.target_hashes !== "object" || meta.target_hashes === null) {
    throw new ClaimsError(`provider claims in ${path} have no target_hashes`, { subject: claims.sub });
  }
  const target = currentTarget();
  const signed = meta.target_hashes[target];
  if (!signed) {
    throw new ClaimsError(`provider claims in ${path} hold no hash for target ${target} (signed for: ${Object.keys(meta.target_hashes).join(", ") || "none"})`, { subject: claims.sub });
  }
  const actual = sha256Hex(readFileSync(file));
  if (actual !== signed) {
    throw new ClaimsError(
      `provider executable ${file} does not match its claims: hash ${actual} differs from the signed hash ${signed} (the file was changed after signing)`,
      { subject: claims.sub, issuer: claims.iss },
    );
  }
  return { jwt, claims };
}
