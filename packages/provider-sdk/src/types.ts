/**
 * The types a provider author sees: the hooks of {@link ProviderDefinition}, the {@link ProviderContext} every hook
 * gets, the {@link ProviderLink} view of a link, and typed exports ({@link ProviderExport}).
 * @module
 */
import type { ProviderTracing } from "./tracing.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import type { InterfaceLinkDefinition } from "../../wire/src/core/link.ts";
import type { Logger } from "../../wire/src/core/logger.ts";
import type { FuncType, InterfaceType, ResourceMapper } from "../../wire/src/invocation/index.ts";
import type { InvocationRequest } from "../../wire/src/invocation/index.ts";
import type { HostData } from "../../wire/src/provider/host-data.ts";
import type { SecretValue } from "./secrets.ts";

/** Which end of a link this provider is. */
export type LinkRole = "source" | "target";

/** A link as a provider sees it: who, what, and the config of this provider's side, resolved. */
export interface ProviderLink {
  /** `source` when this provider is the importer / caller, `target` when it is the exporter / callee. */
  readonly role: LinkRole;
  readonly sourceId: string;
  readonly target: string;
  /** Link name (`default` unless given). */
  readonly name: string;
  /** WIT namespace, e.g. `wasi`. */
  readonly namespace: string;
  /** WIT package, e.g. `keyvalue`. */
  readonly package: string;
  /** WIT interfaces, sorted, e.g. `["atomics", "store"]`. */
  readonly interfaces: readonly string[];
  /** The other party's id: the target for a source link, the source for a target link. */
  readonly peerId: string;
  /** This provider's side of the config: `source_config` for a source link, `target_config` for a target link. */
  readonly config: Readonly<Record<string, string>>;
  /**
   * This provider's side of the link's secrets (`target_secrets` for a target link, `source_secrets` for a source
   * link), opened with this instance's xkey; `{}` when the link has none. Never log these.
   */
  readonly secrets: Readonly<Record<string, SecretValue>>;
  /** The link definition as received (reference §2.2). */
  readonly definition: InterfaceLinkDefinition;
}

/** A health answer (reference §4.3): `{"healthy": bool, "message"?: string}`. */
export interface HealthStatus {
  healthy: boolean;
  message?: string;
}

/** How the provider was started. */
export type ProviderMode = "spawned" | "remote";

/** What every hook and handler gets. */
export interface ProviderContext<R = unknown> {
  /** This provider's id (`provider_key` of the host data, or `--provider-id`). */
  readonly providerId: string;
  /** The lattice name. */
  readonly lattice: string;
  /** Id of the host that spawned this process; `""` for a remote provider. */
  readonly hostId: string;
  /** A fresh UUID per process. */
  readonly instanceId: string;
  /** `spawned` (started by a host, host data on stdin) or `remote` (started by hand). */
  readonly mode: ProviderMode;
  /** The host data (synthesized for a remote provider). */
  readonly hostData: HostData;
  /** The provider's NATS connection. */
  readonly nc: NatsConnection;
  /** The provider's logger (JSON lines on stderr by default; the host forwards them to its log). */
  readonly logger: Logger;
  /** The provider's merged config as of now (host data `config`, then `config.update` messages). */
  config(): Readonly<Record<string, string>>;
  /** The provider's own secrets (host data `secrets`: its `SECRET_…` configs, fetched with its claims). Never log these. */
  secrets(): Readonly<Record<string, SecretValue>>;
  /** Every link this provider knows now. */
  links(): readonly ProviderLink[];
  /**
   * The link (and the resource its put hook returned) for a peer and link name: for target links the peer is the
   * source id (the key providers usually keep resources by), for source links the target id.
   * @param pkg `namespace:package` to pick among several links of the same peer and name. @default the first match
   */
  linkFor(peerId: string, linkName: string, pkg?: string): { link: ProviderLink; resource: R | undefined } | undefined;
  /**
   * Calls a function of a component this provider is linked to as source (or any target), with typed arguments,
   * sending `source-id` = this provider and `link-name` = the link's name.
   * @param target a source link (its target and name are used) or a target id (link name `default`).
   * @throws TrellisError as `invoke` of src/invocation (`NO_RESPONDERS`, `TIMEOUT`, the target's error…).
   */
  call(target: ProviderLink | string, iface: string, fn: string, type: FuncType, args: readonly unknown[], opts?: CallSettings): Promise<unknown>;
  /** Like {@link ProviderContext.call} with the JSON form: the target types the arguments; returns the JSON result. */
  callJson(target: ProviderLink | string, iface: string, fn: string, args: unknown, opts?: CallSettings): Promise<unknown>;
  /**
   * The provider's tracing (ADR 0025): {@link call} and {@link callJson} use it already; a provider that calls the
   * lattice by other means (the HTTP server provider) starts its spans here and sends their `headers`.
   */
  readonly tracing: ProviderTracing;
}

/** Per-call settings of outbound calls. */
export interface CallSettings {
  /** Time budget in milliseconds. @default the host data's `default_rpc_timeout_ms` */
  timeoutMs?: number;
  /** Link name when `target` is an id. @default "default" */
  linkName?: string;
  /** Extra headers. */
  headers?: Record<string, string>;
  /** Maps resource values to handles and back. */
  resources?: ResourceMapper;
}

/** What a typed handler gets after its decoded arguments. */
export interface CallContext<R = unknown> {
  /** The provider context. */
  readonly provider: ProviderContext<R>;
  /** Header `source-id` (the caller), when sent. */
  readonly sourceId: string | undefined;
  /** Header `link-name` (`default` when absent). */
  readonly linkName: string;
  /** The link the caller used (found by source id, link name and the interface's package), when there is one. */
  readonly link: ProviderLink | undefined;
  /** The resource the link's put hook returned, when there is one. */
  readonly resource: R | undefined;
  /** The raw request. */
  readonly request: InvocationRequest;
}

/**
 * One WIT interface the provider exports, with one handler per function. A handler gets the decoded arguments,
 * then a {@link CallContext}, and returns the result value (jco's JavaScript representation) or a promise of it.
 */
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- R documents the resource type handlers receive in CallContext<R>
export interface ProviderExport<R = unknown> {
  /** The interface's WIT type: name (`ns:pkg/iface@version`), functions and resources. */
  type: InterfaceType;
  handlers: Record<string, (...args: any[]) => unknown>;
  /** Maps resource handles of this interface (default: handles are Uint8Arrays). */
  resources?: ResourceMapper;
  /**
   * Reject calls that arrive without a link from (`source-id`, `link-name`) to this provider for this package, with
   * `LINK_NOT_FOUND`. @default true
   */
  requireLink?: boolean;
}

/**
 * A capability provider: every hook is optional and has a default. `R` is the per-link resource a put hook may return
 * (a connection, a store…); the SDK keeps it by (peer id, link name), hands it to handlers, passes it to
 * {@link ProviderDefinition.linkDeleted} and then releases it (`Symbol.asyncDispose`, `Symbol.dispose` or `close()`).
 *
 * Delivery guarantees (docs/protocol.md "Provider contract"): hooks run one at a time in arrival order; each link is
 * delivered once (a duplicate put is ignored); a delete of an unknown link is ignored; a link that changed arrives
 * as {@link linkDeleted} for the old one, then a put hook for the new one. A hook that throws is logged; a put
 * whose hook threw is not recorded, so a later put of the same link is delivered again.
 */
export interface ProviderDefinition<R = unknown> {
  /** Name for logs. @default the provider id */
  name?: string;
  /** Called once, after the subscriptions exist and before any link is delivered. Default: nothing. */
  init?(ctx: ProviderContext<R>): void | Promise<void>;
  /** A link where this provider is the source (e.g. an HTTP server provider → a component). Default: nothing. */
  linkPutAsSource?(link: ProviderLink, ctx: ProviderContext<R>): R | void | Promise<R | void>;
  /** A link where this provider is the target (e.g. a component → a key-value provider). Default: nothing. */
  linkPutAsTarget?(link: ProviderLink, ctx: ProviderContext<R>): R | void | Promise<R | void>;
  /** A known link was deleted (or is being replaced); `resource` is what its put hook returned. Default: nothing. */
  linkDeleted?(link: ProviderLink, resource: R | undefined, ctx: ProviderContext<R>): void | Promise<void>;
  /** The provider's merged config changed (`config.update`). Default: nothing (`ctx.config()` is updated anyway). */
  configUpdate?(config: Readonly<Record<string, string>>, ctx: ProviderContext<R>): void | Promise<void>;
  /** Answers health checks. A hook that throws answers unhealthy with its message. Default: `{ healthy: true }`. */
  health?(ctx: ProviderContext<R>): HealthStatus | Promise<HealthStatus>;
  /** Called once before the process exits (shutdown request or SIGTERM/SIGINT). Default: nothing. */
  shutdown?(ctx: ProviderContext<R>): void | Promise<void>;
  /** WIT interfaces this provider serves over the invocation protocol. */
  exports?: ProviderExport<R>[];
  /**
   * After a link is deleted, calls that still arrive on it are served for this long, in milliseconds: a component's
   * host applies a re-link (`link.replace`) when its KV watch delivers it, a moment after this provider hears the
   * delete, and calls sent in between must not fail. {@link linkDeleted} runs at once (free what must be free for a
   * new put, such as a listening port, there); the link's resource is released when the drain ends, also when the
   * same link is put again meanwhile. 0 turns draining off. @default 2000
   */
  linkDrainMs?: number;
}
