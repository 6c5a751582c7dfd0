/**
 * wascap-compatible claims JWTs (reference §6.2, wasmCloud `crates/wascap/src/jwt.rs`): header
 * `{"typ":"jwt","alg":"Ed25519"}`, claims with `jti`, `iat`, `iss`, `sub`, optional `exp`/`nbf`, metadata under
 * `wascap` and `wascap_revision` 3, each part base64url without padding, signed with Ed25519 by the issuer's account
 * nkey. Pure functions over strings and bytes.
 * @module
 */
import { randomInt } from "node:crypto";
import type { KeyPair } from "@nats-io/nkeys";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { verifyBy } from "./nkey.ts";

/** The wascap revision written into new claims; module hashes are checked from this revision on. */
export const WASCAP_REVISION = 3;

/** Component metadata (`wascap` of a component's claims). Field order is wascap's serialization order. */
export interface ComponentMetadata {
  name?: string;
  /** Uppercase hex SHA-256 of the module without its claims section. */
  hash: string;
  tags?: string[];
  rev?: number;
  ver?: string;
  call_alias?: string;
  /** Always false for components. */
  prov: boolean;
}

/** Capability provider metadata (`wascap` of a provider's claims). */
export interface ProviderMetadata {
  name?: string;
  vendor: string;
  rev?: number;
  ver?: string;
  /** Uppercase hex SHA-256 of each target's executable, keyed by target (e.g. `x86_64-linux`). */
  target_hashes: Record<string, string>;
  config_schema?: unknown;
}

/** Decoded claims. `exp`, `nbf`, `iat` are seconds since the Unix epoch. */
export interface Claims<T> {
  exp?: number;
  jti: string;
  iat: number;
  iss: string;
  sub: string;
  nbf?: number;
  wascap?: T;
  wascap_revision?: number;
}

/** A claims JWT and what it says. */
export interface Token<T> {
  jwt: string;
  claims: Claims<T>;
}

/** Invalid, tampered, expired or not-yet-valid claims (code `CLAIMS_INVALID`). */
export class ClaimsError extends TrellisError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.ClaimsInvalid, message, details ? { details } : undefined);
    this.name = "ClaimsError";
  }
}

const HEADER = { typ: "jwt", alg: "Ed25519" };
const encoder = new TextEncoder();

function b64url(data: Uint8Array | string): string {
  return Buffer.from(typeof data === "string" ? encoder.encode(data) : data).toString("base64url");
}

function fromB64url(s: string, what: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new ClaimsError(`claims JWT ${what} is not base64url`);
  return Buffer.from(s, "base64url");
}

/** Orders claims fields as wascap serializes them and drops undefined ones. */
function ordered<T>(c: Claims<T>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (c.exp !== undefined) out.exp = c.exp;
  out.jti = c.jti;
  out.iat = c.iat;
  out.iss = c.iss;
  out.sub = c.sub;
  if (c.nbf !== undefined) out.nbf = c.nbf;
  if (c.wascap !== undefined) out.wascap = c.wascap;
  if (c.wascap_revision !== undefined) out.wascap_revision = c.wascap_revision;
  return out;
}

const JTI_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A random 22-character token id in the shape of a NUID (what wascap uses for `jti`). */
function jti(): string {
  let s = "";
  for (let i = 0; i < 22; i++) s += JTI_ALPHABET[randomInt(JTI_ALPHABET.length)];
  return s;
}

/** Seconds since the Unix epoch. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** What {@link newClaims} takes. `expiresInDays`/`notBeforeDays` count from now; absent means never / immediately. */
export interface NewClaims<T> {
  issuer: string;
  subject: string;
  metadata: T;
  expiresInDays?: number;
  notBeforeDays?: number;
}

/** Fresh claims with a new `jti` (a NUID), `iat` now and `wascap_revision` 3. */
export function newClaims<T>(o: NewClaims<T>): Claims<T> {
  const now = nowSeconds();
  const c: Claims<T> = { jti: jti(), iat: now, iss: o.issuer, sub: o.subject, wascap: o.metadata, wascap_revision: WASCAP_REVISION };
  if (o.expiresInDays !== undefined) c.exp = now + Math.round(o.expiresInDays * 86400);
  if (o.notBeforeDays !== undefined) c.nbf = now + Math.round(o.notBeforeDays * 86400);
  return c;
}

/**
 * Encodes and signs claims with the issuer key pair (`iss` must be its public key).
 * @throws ClaimsError when `claims.iss` is not the key pair's public key.
 */
export function encodeJwt<T>(claims: Claims<T>, issuer: KeyPair): string {
  if (claims.iss !== issuer.getPublicKey()) throw new ClaimsError("claims iss is not the signing key's public key");
  const head = `${b64url(JSON.stringify(HEADER))}.${b64url(JSON.stringify(ordered(claims)))}`;
  return `${head}.${b64url(issuer.sign(encoder.encode(head)))}`;
}

/**
 * Decodes a JWT's claims without verifying anything.
 * @throws ClaimsError when it is not three base64url parts or the claims are not a JSON object with `iss` and `sub`.
 */
export function decodeJwt<T>(jwt: string): Claims<T> {
  const parts = jwt.trim().split(".");
  if (parts.length !== 3) throw new ClaimsError(`invalid claims JWT: expected 3 segments, found ${parts.length}`);
  let v: unknown;
  try {
    v = JSON.parse(fromB64url(parts[1]!, "claims").toString("utf8"));
  } catch (err) {
    if (err instanceof ClaimsError) throw err;
    throw new ClaimsError(`invalid claims JWT: the claims segment is not JSON (${(err as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ClaimsError("invalid claims JWT: claims must be a JSON object");
  const c = v as Claims<T>;
  if (typeof c.iss !== "string" || !c.iss) throw new ClaimsError("invalid claims JWT: missing issuer (iss)");
  if (typeof c.sub !== "string" || !c.sub) throw new ClaimsError("invalid claims JWT: missing subject (sub)");
  return c;
}

/** The result of {@link validateJwt}, as wascap's `TokenValidation`. */
export interface TokenValidation {
  signature_valid: boolean;
  expired: boolean;
  cannot_use_yet: boolean;
  /** RFC 3339 time, or `never`. */
  expires_human: string;
  /** RFC 3339 time, or `immediately`. */
  not_before_human: string;
}

/** `exp`/`nbf` as a human string (RFC 3339 UTC), or `fallback` when absent. */
export function stampToHuman(stamp: number | undefined, fallback: string): string {
  return stamp === undefined ? fallback : new Date(stamp * 1000).toISOString();
}

/**
 * Checks a JWT's header, signature (by `iss`) and dates. Never throws for a bad signature or dates: see the result.
 * @param nowSec the time to check against, in seconds. @default now
 * @throws ClaimsError when the JWT cannot be parsed or its header is not `{"typ":"jwt","alg":"Ed25519"}`.
 */
export function validateJwt(jwt: string, nowSec = nowSeconds()): TokenValidation {
  const parts = jwt.trim().split(".");
  const claims = decodeJwt<unknown>(jwt);
  let header: { typ?: unknown; alg?: unknown };
  try {
    header = JSON.parse(fromB64url(parts[0]!, "header").toString("utf8")) as typeof header;
  } catch {
    throw new ClaimsError("invalid claims JWT: the header is not JSON");
  }
  if (header.alg !== HEADER.alg) throw new ClaimsError(`invalid claims JWT: algorithm ${String(header.alg)} is not Ed25519`);
  if (header.typ !== HEADER.typ) throw new ClaimsError("invalid claims JWT: invalid header type");
  const sig = fromB64url(parts[2]!, "signature");
  return {
    signature_valid: verifyBy(claims.iss, encoder.encode(`${parts[0]}.${parts[1]}`), sig),
    expired: claims.exp !== undefined && claims.exp < nowSec,
    cannot_use_yet: claims.nbf !== undefined && nowSec < claims.nbf,
    expires_human: stampToHuman(claims.exp, "never"),
    not_before_human: stampToHuman(claims.nbf, "immediately"),
  };
}

/**
 * Validates and decodes: the signature must hold and the token must be within its dates.
 * @throws ClaimsError naming what failed (`signature is not valid`, `expired at …`, `cannot be used before …`).
 */
export function verifyJwt<T>(jwt: string, nowSec = nowSeconds()): Claims<T> {
  const v = validateJwt(jwt, nowSec);
  const claims = decodeJwt<T>(jwt);
  const who = { subject: claims.sub, issuer: claims.iss };
  if (!v.signature_valid) throw new ClaimsError(`claims signature is not valid (issuer ${claims.iss}, subject ${claims.sub})`, who);
  if (v.expired) throw new ClaimsError(`claims expired at ${v.expires_human} (subject ${claims.sub})`, who);
  if (v.cannot_use_yet) throw new ClaimsError(`claims cannot be used before ${v.not_before_human} (subject ${claims.sub})`, who);
  return claims;
}
