/**
 * The workload managers a host uses unless told otherwise: the component runtime (src/component) and the capability
 * provider supervisor (src/provider).
 * @module
 */
import type { WorkloadFactories } from "./workloads.ts";
import { providerSupervisor } from "../provider/supervisor.ts";
import { componentRuntime } from "../component/index.ts";

/** Factories of the default component runtime and provider supervisor. */
export function defaultWorkloads(): Partial<WorkloadFactories> {
  return {
    components: componentRuntime(),
    providers: providerSupervisor(),
  };
}
