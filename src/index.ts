/**
 * Trellis: a lattice runtime for WebAssembly components.
 *
 * ```ts
 * import { Host, CtlClient } from "trellis";
 *
 * const host = await Host.create({ lattice: "default", natsUrl: "nats://127.0.0.1:4222" });
 * const client = await CtlClient.connect({ lattice: "default" });
 * await client.putLink({ source_id: "counter", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store", "atomics"] });
 * await client.close();
 * await host.stop();
 * ```
 * @module
 */
export * from "./core/index.ts";
export { Host } from "./host/host.ts";
export type { HostState } from "./host/host.ts";
export {
  compileHostOptions,
  DEFAULT_LATTICE,
  DEFAULT_NATS_URL,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_RPC_TIMEOUT_MS,
  DEFAULT_MAX_CONTROL_PAYLOAD_BYTES,
} from "./host/options.ts";
export type { HostOptions, HostConfig } from "./host/options.ts";
export type { WorkloadContext, WorkloadFactories, ComponentManager, ProviderManager, ComponentSpecs } from "./host/workloads.ts";
export { CtlClient, DEFAULT_CTL_TIMEOUT_MS } from "./control/client.ts";
export type { CtlClientOptions, LinkInput, ScaleComponentRequest, StartProviderRequest } from "./control/client.ts";
export { startNatsServer, findNatsServerBinary, isNatsReachable, NatsServerError } from "./lattice/nats-server.ts";
export type { NatsServerOptions, NatsServerHandle } from "./lattice/nats-server.ts";
export { Admission, PolicyClient, compileLoadPermissions, compilePolicyOptions, DEFAULT_POLICY_TIMEOUT_MS } from "./policy/index.ts";
export type { LoadPermissionOptions, LoadPermissions, PolicyServiceOptions, PolicyConfig, PolicyRequest, PolicyResponse } from "./policy/index.ts";
export { explainCall, followTarget, formatExplanation, buildPath } from "./tracing/explain.ts";
export type { Explanation, ExplainedHop, ExplainCallOptions, FollowOptions } from "./tracing/explain.ts";
export type { ExplainSpan, Tracing, HopSpan, Hop } from "./tracing/types.ts";
export { MetricsWindow, METRICS_WINDOW_MS } from "./metrics/window.ts";
export type { HostMetrics, CallFigures, LinkFigures } from "./metrics/window.ts";
