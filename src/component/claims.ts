/**
 * The claims check a host makes when it loads a component (reference §6.2, docs/adr/0016-claims.md): embedded
 * claims are always verified (module hash, signature, dates); the host's policy may then require a signature and
 * restrict issuers. Verified claims are recorded as `CLAIMS_{subject}`.
 * @module
 */
import {
  type ComponentMetadata,
  enforceClaimsPolicy,
  storedComponentClaims,
  type Token,
  verifyComponentClaims,
} from "../claims/index.ts";
import type { WorkloadClaims } from "../host/workloads.ts";

/**
 * Verifies the claims of component bytes and applies the host's policy.
 * @param what names the component in errors, e.g. `component echo (./echo.wasm)`.
 * @param claims the host's policy and recorder; absent: signing optional, nothing recorded.
 * @returns the verified claims, or undefined for an unsigned component that the policy allows.
 * @throws ClaimsError (`CLAIMS_INVALID`) for a tampered, malformed, expired or not-yet-valid signature, an unsigned
 *   component when signing is required, or an issuer not allowed.
 */
export function checkComponentClaims(bytes: Uint8Array, what: string, claims: WorkloadClaims | undefined): Token<ComponentMetadata> | undefined {
  let token: Token<ComponentMetadata> | undefined;
  try {
    token = verifyComponentClaims(bytes);
  } catch (err) {
    (err as Error).message = `${what}: ${(err as Error).message}`;
    throw err;
  }
  if (claims) enforceClaimsPolicy(token, claims.policy, what);
  if (token) claims?.record(storedComponentClaims(token));
  return token;
}
