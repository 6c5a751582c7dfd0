/**
 * What a host may run (docs/security.md, "What a host may run"), in one place to audit: the file-load rule
 * (`--allow-file-load`, `--allowed-path`) and the policy service client (wasmCloud 1.x `--policy-topic`, reference §6.4).
 * Depends only on src/core; the component runtime and the provider supervisor call it before loading anything.
 * @module
 */
export {
  ALLOW_FILE_LOAD_ENV,
  ALLOW_FILE_LOAD_FLAG,
  ALLOWED_PATH_ENV,
  ALLOWED_PATH_FLAG,
  checkLoad,
  compileLoadPermissions,
  parseAllowedPathList,
} from "./allow.ts";
export type { LoadPermissionOptions, LoadPermissions, LoadSubject, LoadTarget } from "./allow.ts";
export { Admission } from "./admission.ts";
export type { InvocationPolicySpec } from "./admission.ts";
export { compilePolicyOptions, DEFAULT_POLICY_TIMEOUT_MS, PolicyClient } from "./service.ts";
export type { InvocationTarget, PolicyConfig, PolicyServiceOptions } from "./service.ts";
export { cacheKey, parseDecision, POLICY_REQUEST_VERSION } from "./wire.ts";
export type {
  ComponentInformation,
  PerformInvocationRequest,
  PolicyClaims,
  PolicyHostInfo,
  PolicyRequest,
  PolicyRequestBody,
  PolicyRequestKind,
  PolicyResponse,
  ProviderInformation,
} from "./wire.ts";
