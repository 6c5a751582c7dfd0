/**
 * `@trellis/provider-sdk` (in this repository: `import … from "trellis/provider-sdk"`; elsewhere the tarball of
 * `npm pack`, compiled for Node >= 20, see README.md): write Trellis capability
 * providers in TypeScript. A provider implements only the hooks it needs ({@link ProviderDefinition}) plus typed
 * handlers for the WIT interfaces it exports, and calls {@link runProvider}. The SDK reads host data (or remote
 * settings), subscribes to the provider contract subjects, delivers each link once, keeps per-link resources and
 * serves invocations (docs/protocol.md "Provider contract", "Invocation protocol v1").
 * @module
 */
export { runProvider } from "./provider.ts";
export type { RunOptions, RunningProvider } from "./provider.ts";
export { LinkTable, toProviderLink, releaseResource, DEFAULT_LINK_DRAIN_MS } from "./links.ts";
export type { LinkOutcome } from "./links.ts";
export { remoteSettings, readHostData, remoteHostData } from "./startup.ts";
export type { RemoteSettings } from "./startup.ts";
export { providerConnectionOptions, remoteConnectionFields, redactUrl, NATS_AUTH_SETTINGS, ProviderAuthError } from "./connection.ts";
export type { HostDataConnection, ProviderNatsAuth } from "./connection.ts";
export { TRACE_CONFIG_KEY, TRACE_PREFIX } from "./trace.ts";
export { ProviderTracing, ProviderSpan, tracingSettings, parseTraceContext, isExplainState, otlpJson, SpanAttr, TRACEPARENT, TRACESTATE } from "./tracing.ts";
export type { ProviderTracingSettings, SpanHop, HeaderSource, TraceContext, FinishedSpan } from "./tracing.ts";
export { SecretOpener, secretString } from "./secrets.ts";
// wasi:keyvalue@0.2.0-draft: WIT types, and store/atomics/batch as exports over any backend (the key-value providers).
export { KV_ERROR, KEY_RESPONSE, KEYVALUE_STORE, KEYVALUE_ATOMICS, kvOther } from "./keyvalue/types.ts";
export { KEYVALUE_BATCH, U64_MAX, NoSuchStore, BUCKET_HANDLES, DRAIN_MS, LINK_WAIT_MS, LinkDrain, parseCounter, keyvalueExports } from "./keyvalue/exports.ts";
export type { KeyPage, KvBackend } from "./keyvalue/exports.ts";
export type { SecretValue } from "./secrets.ts";
export type {
  ProviderDefinition,
  ProviderContext,
  ProviderLink,
  ProviderExport,
  ProviderMode,
  LinkRole,
  HealthStatus,
  CallContext,
  CallSettings,
} from "./types.ts";
// Re-exported so that providers need only this package for their WIT types and errors.
export { t } from "../../wire/src/invocation/index.ts";
export type { WitType, FuncType, InterfaceType, ResourceMapper, InvocationLimits } from "../../wire/src/invocation/index.ts";
// The HTTP carried form (docs/protocol.md §9), for providers that bridge HTTP and components (http-server, http-client).
export { invokeHttp, OUTGOING_HANDLER_TYPE } from "../../wire/src/invocation/index.ts";
export type { HttpRequest, HttpResponse, HttpHeaders, HttpCallOptions } from "../../wire/src/invocation/index.ts";
export { TrellisError, ErrorCode } from "../../wire/src/core/errors.ts";
export type { InterfaceLinkDefinition } from "../../wire/src/core/link.ts";
export type { HostData } from "../../wire/src/provider/host-data.ts";
export type { Logger } from "../../wire/src/core/logger.ts";
