/**
 * The workload managers a host uses unless told otherwise: the component runtime (src/component) and the capability
 * provider supervisor (src/provider).
 * @module
 */
import type { WorkloadFactories } from "./workloads.ts";
import { providerSupervisor } from "../provider/supervisor.ts";
import type { ProviderSupervisorOptions } from "../provider/options.ts";
import { type ComponentPolicy, componentRuntime } from "../component/index.ts";

/** Options of {@link defaultWorkloads}. */
export interface DefaultWorkloadOptions {
  /** Policy of the component runtime (memory cap, workers, call timeout, …); see `ComponentPolicy`. */
  components?: ComponentPolicy;
  /** Options of the capability provider supervisor (health interval, restarts, …); see `ProviderSupervisorOptions`. */
  providers?: ProviderSupervisorOptions;
}

/** Factories of the default component runtime and provider supervisor. */
export function defaultWorkloads(options: DefaultWorkloadOptions = {}): Partial<WorkloadFactories> {
  return {
    components: componentRuntime(options.components ? { policy: options.components } : {}),
    providers: providerSupervisor(options.providers ?? {}),
  };
}
