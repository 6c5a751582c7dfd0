/**
 * Capability providers, host side (issue 4; reference §4; docs/protocol.md "Provider contract"): the supervisor that
 * answers `provider.start` / `provider.stop`, spawns providers with host data, checks their health and restarts them.
 * The provider side (an SDK for provider authors) is packages/provider-sdk.
 * @module
 */
export { providerSupervisor, ProviderSupervisor, parseStartProvider } from "./supervisor.ts";
export type { ProviderSupervisorFactoryOptions, StartProviderCommand } from "./supervisor.ts";
export type { ProviderStatus, ProviderSnapshot } from "./managed.ts";
export {
  compileSupervisorOptions,
  providerEnv,
  DEFAULT_ENV_PASS_THROUGH,
  DEFAULT_FIRST_HEALTH_CHECK_MS,
  DEFAULT_HEALTH_INTERVAL_MS,
  DEFAULT_STARTUP_GRACE_MS,
  DEFAULT_SHUTDOWN_DELAY_MS,
  DEFAULT_RESTART_BACKOFF_MS,
  DEFAULT_MAX_RESTART_BACKOFF_MS,
  DEFAULT_STABLE_AFTER_MS,
  DEFAULT_MAX_RESTARTS,
} from "./options.ts";
export type { ProviderSupervisorOptions, SupervisorConfig } from "./options.ts";
export { encodeHostData, decodeHostData, parseInterfaceLinkDefinition, linkIdentity, sameLinkDefinition } from "./host-data.ts";
export type { HostData } from "./host-data.ts";
export { resolveProviderRef, classifyProviderRef, providerCommand, FIRST_PARTY_DIR } from "./ref.ts";
export type { ProviderCommand } from "./ref.ts";
