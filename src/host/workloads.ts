/**
 * What the host needs from the parts that run workloads (the component runtime, the provider supervisor), and what
 * it gives them. The host dispatches their control verbs and puts their descriptions in inventories.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { CtlResponse } from "../core/envelope.ts";
import type { NatsConnectData } from "../core/connection.ts";
import type { ComponentDescription, ProviderDescription } from "../core/host.ts";
import type { ConfigSource, EventPublisher, LinkSource } from "../core/ports.ts";
import type { Logger } from "../core/logger.ts";
import type { ComponentSpecification } from "../core/host.ts";
import type { InvocationLimits } from "../../packages/wire/src/invocation/uploads.ts";
import type { Admission } from "../policy/admission.ts";
import type { ClaimsPolicy } from "../claims/policy.ts";
import type { SecretsClient } from "../secrets/client.ts";
import type { OciRegistry } from "../oci/registry.ts";
import type { TracingSettings } from "../tracing/settings.ts";
import type { MetricsBatch } from "../metrics/recorder.ts";

/** What the host gives a workload manager when it starts it. */
export interface WorkloadContext {
  nc: NatsConnection;
  /** The NATS URL(s) the host connected with (comma-separated, credentials removed), for processes the host starts. */
  natsUrl: string;
  /**
   * The host's NATS connection settings with credentials and TLS (src/core/connection.ts), for the connections of
   * component workers and spawned providers. Absent: anonymous connections to {@link natsUrl}.
   */
  nats?: NatsConnectData;
  lattice: string;
  hostId: string;
  logger: Logger;
  /** Default timeout of lattice calls, in milliseconds. */
  rpcTimeoutMs: number;
  /** Directory for caches. */
  cacheDir: string;
  links: LinkSource;
  config: ConfigSource;
  events: EventPublisher;
  /** `COMPONENT_{id}` specifications (reference §3.2). */
  specs: ComponentSpecs;
  /** Limits the host's targets apply to their callers (docs/protocol.md §7.1); absent: the defaults. */
  invocationLimits?: InvocationLimits;
  /** What this host may load and start (file-load rule, policy service); ask it before loading anything. */
  admission: Admission;
  /** What the host requires of claims, and where verified claims are recorded; absent: signing optional, nothing recorded. */
  claims?: WorkloadClaims;
  /** Fetches secrets for workloads and holds the host xkey (src/secrets); absent: secret references fail. */
  secrets?: SecretsClient;
  /** Registry client for OCI references (src/oci), configured by the host's OCI options; absent: the defaults. */
  oci?: OciRegistry;
  /** Tracing settings for component workers and provider host data (src/tracing, ADR 0025); absent: tracing off. */
  tracing?: TracingSettings;
  /** Where call metrics recorded by the workloads go (the host's window, ADR 0026); absent: dropped. */
  metrics?: { add(batch: MetricsBatch): void };
}

/** Claims checks at load and their record (src/claims, docs/adr/0016-claims.md). */
export interface WorkloadClaims {
  policy: ClaimsPolicy;
  /** Writes the stored form as `CLAIMS_{subject}` (reference §3.2); failures are logged, never thrown. */
  record(stored: Record<string, string>): void;
}

/** Access to `COMPONENT_{id}` entries, shared with the host's link bookkeeping. */
export interface ComponentSpecs {
  /** Sets the spec's `url`, keeping its links (creates the spec when missing). Revision-checked, retried. */
  setUrl(id: string, url: string): Promise<void>;
  /** Reads the spec from KV; undefined when missing. */
  read(id: string): Promise<ComponentSpecification | undefined>;
  /** Calls `listener` on every put or delete of a `COMPONENT_{id}` entry. Returns an unsubscribe function. */
  onSpec(listener: (id: string, spec: ComponentSpecification | undefined) => void): () => void;
}

/** Runs components on this host: `component.scale` / `component.update` (reference §1.4). */
export interface ComponentManager {
  handleScale(payload: Uint8Array): Promise<CtlResponse>;
  handleUpdate(payload: Uint8Array): Promise<CtlResponse>;
  inventory(): ComponentDescription[];
  close(): Promise<void>;
}

/** Runs capability providers on this host: `provider.start` / `provider.stop` (reference §1.4, §4). */
export interface ProviderManager {
  handleStart(payload: Uint8Array): Promise<CtlResponse>;
  handleStop(payload: Uint8Array): Promise<CtlResponse>;
  inventory(): ProviderDescription[];
  close(): Promise<void>;
}

/** Factories the host calls at start; either may be absent (the verbs then answer that it is not available). */
export interface WorkloadFactories {
  components: (ctx: WorkloadContext) => Promise<ComponentManager>;
  providers: (ctx: WorkloadContext) => Promise<ProviderManager>;
}
