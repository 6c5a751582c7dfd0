/**
 * The options of the component runtime (`ComponentRuntime.create` in ./runtime.ts): what the host gives every
 * workload manager, the runtime's policy, and the services it may be given instead of its defaults.
 * @module
 */
import type { NatsConnectData } from "../core/connection.ts";
import type { WorkloadContext } from "../host/workloads.ts";
import type { Admission } from "../policy/admission.ts";
import type { OciRegistry } from "../oci/registry.ts";
import type { ComponentPolicy } from "./policy.ts";

/**
 * Options of {@link ComponentRuntime.create}: what the host gives every workload manager (src/host/workloads.ts;
 * `rpcTimeoutMs` is the default per-call timeout of import calls and execution limit of export calls, `cacheDir` the
 * root of the compiled-output cache), plus the runtime's own policy.
 */
export interface ComponentRuntimeOptions
  extends Pick<WorkloadContext, "nc" | "lattice" | "hostId" | "logger" | "rpcTimeoutMs" | "cacheDir" | "links" | "config" | "events" | "invocationLimits" | "claims" | "secrets" | "tracing" | "metrics"> {
  policy?: ComponentPolicy;
  /**
   * `COMPONENT_{id}` writer shared with the host's link bookkeeping (src/host/workloads.ts `ComponentSpecs`). When
   * absent, the runtime updates `LATTICEDATA_{lattice}` itself (revision-checked) and logs a warning when the spec of a
   * running component is deleted.
   */
  specs?: { setUrl(id: string, url: string): Promise<void> };
  /**
   * Settings of the NATS connection each worker thread opens: plain data with credentials and TLS
   * (src/core/connection.ts `NatsConnectData`), normally the host's (`WorkloadContext.nats`).
   * @default `{ servers: [nc.getServer()], tls: false }` — enough for an unauthenticated server.
   */
  workerNats?: NatsConnectData;
  /**
   * What may be loaded and started (src/policy; docs/security.md): file paths and http(s) URLs need the host's
   * `--allow-file-load` or an `--allowed-path`; the policy service, when set, decides starts and invocations.
   * @default `new Admission()`: no file or URL may be loaded, no policy service
   */
  admission?: Admission;
  /**
   * Registry client for components given by OCI reference (src/oci; docs/adr/0018-oci.md).
   * @default a client with the defaults (no credentials, HTTPS only, `:latest` refused) caching under `cacheDir`
   */
  oci?: OciRegistry;
}
