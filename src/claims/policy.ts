/**
 * What a host requires of claims at load (docs/adr/0016-claims.md), and the shapes claims take on the lattice:
 * `CLAIMS_{subject}` entries and `claims.get` maps (reference §1.4, §3.2), and the `claims` object of
 * `component_scaled` / `provider_started` events (reference §5).
 * @module
 */
import { ClaimsError, type ComponentMetadata, type ProviderMetadata, stampToHuman, type Token } from "./jwt.ts";

/** The host's claims requirements. */
export interface ClaimsPolicy {
  /** Refuse unsigned components and providers. @default false (`--require-signed`, `TRELLIS_REQUIRE_SIGNED`) */
  requireSigned: boolean;
  /** When non-empty, only these issuers' (`A…`) signatures are accepted (`--allowed-issuer`, `TRELLIS_ALLOWED_ISSUERS`). */
  allowedIssuers: readonly string[];
}

/** The default: signing optional, every issuer accepted (as wasmCloud 1.x). */
export const OPEN_CLAIMS_POLICY: ClaimsPolicy = Object.freeze({ requireSigned: false, allowedIssuers: Object.freeze([]) });

/**
 * Applies the policy to verified claims (or their absence).
 * @param what names the entity in the error, e.g. `component echo (file:///x.wasm)`.
 * @throws ClaimsError when the entity is unsigned and signing is required, or its issuer is not allowed.
 */
export function enforceClaimsPolicy(token: Token<unknown> | undefined, policy: ClaimsPolicy, what: string): void {
  if (!token) {
    if (policy.requireSigned || policy.allowedIssuers.length > 0) {
      throw new ClaimsError(`${what} is not signed, and this host requires signed components and providers`);
    }
    return;
  }
  const iss = token.claims.iss;
  if (policy.allowedIssuers.length > 0 && !policy.allowedIssuers.includes(iss)) {
    throw new ClaimsError(`${what} is signed by issuer ${iss}, which is not among this host's allowed issuers`, { issuer: iss, subject: token.claims.sub });
  }
}

/** A `CLAIMS_{subject}` entry / `claims.get` item for a component (reference §3.2, §1.4): long and short keys. */
export function storedComponentClaims(t: Token<ComponentMetadata>): Record<string, string> {
  const m = t.claims.wascap;
  const rev = String(m?.rev ?? 0);
  return {
    call_alias: m?.call_alias ?? "",
    iss: t.claims.iss,
    issuer: t.claims.iss,
    name: m?.name ?? "",
    rev,
    revision: rev,
    sub: t.claims.sub,
    subject: t.claims.sub,
    tags: (m?.tags ?? []).join(","),
    version: m?.ver ?? "",
  };
}

/** A `CLAIMS_{subject}` entry / `claims.get` item for a provider (reference §3.2, §1.4). */
export function storedProviderClaims(t: Token<ProviderMetadata>): Record<string, string> {
  const m = t.claims.wascap;
  const rev = String(m?.rev ?? 0);
  const out: Record<string, string> = {
    iss: t.claims.iss,
    issuer: t.claims.iss,
    name: m?.name ?? "",
    rev,
    revision: rev,
    sub: t.claims.sub,
    subject: t.claims.sub,
    version: m?.ver ?? "",
  };
  if (m?.config_schema !== undefined) out.config_schema = JSON.stringify(m.config_schema);
  return out;
}

/** The `claims` object of a `component_scaled` event (reference §5). */
export function componentEventClaims(t: Token<ComponentMetadata>): Record<string, unknown> {
  const m = t.claims.wascap;
  return {
    call_alias: m?.call_alias ?? null,
    issuer: t.claims.iss,
    tags: m?.tags ?? null,
    name: m?.name ?? null,
    version: m?.ver ?? null,
    revision: m?.rev ?? 0,
    not_before_human: stampToHuman(t.claims.nbf, "immediately"),
    expires_human: stampToHuman(t.claims.exp, "never"),
  };
}

/**
 * The `claims` object of a `provider_started` event (reference §5), plus `subject` (a Trellis extension: 1.x's
 * `public_key` of this event is the provider id).
 */
export function providerEventClaims(t: Token<ProviderMetadata>): Record<string, unknown> {
  const m = t.claims.wascap;
  return {
    issuer: t.claims.iss,
    subject: t.claims.sub,
    tags: null,
    name: m?.name ?? null,
    version: m?.ver ?? null,
    not_before_human: stampToHuman(t.claims.nbf, "immediately"),
    expires_human: stampToHuman(t.claims.exp, "never"),
  };
}

/** Inventory fields of signed components and providers: `name`, `revision`, and the Trellis `issuer`/`subject`. */
export function describeClaims(t: Token<{ name?: string; rev?: number }>): { name?: string; revision: number; issuer: string; subject: string } {
  const d: { name?: string; revision: number; issuer: string; subject: string } = { revision: t.claims.wascap?.rev ?? 0, issuer: t.claims.iss, subject: t.claims.sub };
  if (t.claims.wascap?.name) d.name = t.claims.wascap.name;
  return d;
}
