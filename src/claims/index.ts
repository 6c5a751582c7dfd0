/**
 * Claims: wascap-compatible signing and verification of components and capability providers (reference §6.2,
 * docs/adr/0016-claims.md). Pure functions over bytes and files; `trellis claims` is a thin shell over them.
 * @module
 */
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "../core/errors.ts";
import { type Claims, type ComponentMetadata, encodeJwt, newClaims, type ProviderMetadata } from "./jwt.ts";
import { isPublicKey, issuerKeyPair, newSubjectKey } from "./nkey.ts";
import { currentTarget, orderedProviderMetadata } from "./provider.ts";
import { embedClaims, sha256Hex } from "./wasm.ts";

export * from "./jwt.ts";
export * from "./wasm.ts";
export * from "./provider.ts";
export * from "./policy.ts";
export { isPublicKey, issuerKeyPair, newIssuer, newSubjectKey } from "./nkey.ts";

/** What {@link signComponent} and {@link signProvider} take. */
export interface SignOptions {
  /** The issuer's account seed (`SA…`). Never logged or echoed. */
  issuerSeed: string;
  /** Subject public key to keep across re-signs (`M…` for components, `V…` for providers). @default a new random key */
  subject?: string;
  /** Display name. */
  name?: string;
  /** Version string (`ver`). */
  ver?: string;
  /** Revision (`rev`), an integer. */
  rev?: number;
  /** Tags (components only). */
  tags?: string[];
  /** Call alias (components only). */
  callAlias?: string;
  /** Vendor (providers only). @default "unknown" */
  vendor?: string;
  /** Days until the claims expire. @default never */
  expiresInDays?: number;
  /** Days until the claims become valid. @default immediately */
  notBeforeDays?: number;
}

function subjectOf(kind: "module" | "service", given: string | undefined): string {
  const letter = kind === "module" ? "M" : "V";
  if (given === undefined) return newSubjectKey(kind);
  if (!isPublicKey(given, letter)) {
    throw new InvalidArgumentError("subject", `subject must be a ${kind} public key (${letter}…, 56 characters)`);
  }
  return given;
}

function checkDays(field: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new InvalidArgumentError(field, `${field} must be a non-negative number of days`);
}

function checkRev(v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31)) {
    throw new InvalidArgumentError("rev", "rev must be a 32-bit integer");
  }
}

/**
 * Signs a component (or core module): returns the binary with a `wasmcloud_jwt` section and the JWT.
 * @throws InvalidArgumentError for a bad seed, subject, rev or days; ClaimsError for a malformed binary.
 */
export function signComponent(bytes: Uint8Array, o: SignOptions): { bytes: Uint8Array; jwt: string; claims: Claims<ComponentMetadata> } {
  const kp = issuerKeyPair(o.issuerSeed);
  checkDays("expires", o.expiresInDays);
  checkDays("not_before", o.notBeforeDays);
  checkRev(o.rev);
  const meta: ComponentMetadata = { hash: "", prov: false };
  if (o.name !== undefined) meta.name = o.name;
  if (o.tags !== undefined && o.tags.length > 0) meta.tags = o.tags;
  if (o.rev !== undefined) meta.rev = o.rev;
  if (o.ver !== undefined) meta.ver = o.ver;
  if (o.callAlias !== undefined) meta.call_alias = o.callAlias;
  const claims = newClaims({ issuer: kp.getPublicKey(), subject: subjectOf("module", o.subject), metadata: meta, expiresInDays: o.expiresInDays, notBeforeDays: o.notBeforeDays });
  const out = embedClaims(bytes, claims, kp);
  kp.clear();
  return out;
}

/**
 * Signs a provider executable: returns the JWT to write to `<file>.claims.jwt`, with the file's hash for this
 * machine's target (and any `extraTargetHashes`).
 * @throws InvalidArgumentError for a bad seed, subject, rev or days; the file system's error when `file` is unreadable.
 */
export function signProvider(file: string, o: SignOptions & { extraTargetHashes?: Record<string, string> }): { jwt: string; claims: Claims<ProviderMetadata> } {
  const kp = issuerKeyPair(o.issuerSeed);
  checkDays("expires", o.expiresInDays);
  checkDays("not_before", o.notBeforeDays);
  checkRev(o.rev);
  const meta: ProviderMetadata = orderedProviderMetadata({
    name: o.name,
    vendor: o.vendor ?? "unknown",
    rev: o.rev,
    ver: o.ver,
    target_hashes: { ...o.extraTargetHashes, [currentTarget()]: sha256Hex(readFileSync(file)) },
  });
  const claims = newClaims({ issuer: kp.getPublicKey(), subject: subjectOf("service", o.subject), metadata: meta, expiresInDays: o.expiresInDays, notBeforeDays: o.notBeforeDays });
  const jwt = encodeJwt(claims, kp);
  kp.clear();
  return { jwt, claims };
}
