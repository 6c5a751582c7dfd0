/**
 * The claims check a host makes when it starts a capability provider (reference §6.2, docs/adr/0016-claims.md): the
 * claims file beside the executable (`<executable>.claims.jwt`) is verified when present (executable hash for this
 * target, signature, dates); the host's policy may then require a signature and restrict issuers. Verified claims are
 * recorded as `CLAIMS_{subject}`.
 * @module
 */
import { enforceClaimsPolicy, type ProviderMetadata, readProviderClaims, storedProviderClaims, type Token } from "../claims/index.ts";
import type { WorkloadClaims } from "../host/workloads.ts";

/**
 * Verifies a provider executable's claims and applies the host's policy.
 * @param file the resolved executable (or Node script) the host will run.
 * @param what names the provider in errors, e.g. `provider kv (./kv.ts)`.
 * @returns the verified claims, or undefined for an unsigned provider that the policy allows.
 * @throws ClaimsError (`CLAIMS_INVALID`) for a changed executable, a bad or expired signature, an unsigned provider when
 *   signing is required, or an issuer not allowed.
 */
export function checkProviderClaims(file: string, what: string, claims: WorkloadClaims | undefined): Token<ProviderMetadata> | undefined {
  let token: Token<ProviderMetadata> | undefined;
  try {
    token = readProviderClaims(file);
  } catch (err) {
    (err as Error).message = `${what}: ${(err as Error).message}`;
    throw err;
  }
  if (claims) enforceClaimsPolicy(token, claims.policy, what);
  if (token) claims?.record(storedProviderClaims(token));
  return token;
}
