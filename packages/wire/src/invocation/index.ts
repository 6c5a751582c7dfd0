/**
 * The Trellis invocation protocol v1 (docs/protocol.md, "Invocation protocol v1"): how any caller (a component's
 * import, a provider, the CLI) calls a function exported by a target (a component or a provider) over NATS.
 *
 * STABLE API — the provider SDK (packages/provider-sdk, src/provider) imports this folder. This folder depends only
 * on src/core and @nats-io. Additions are fine; changes to the names below need the component runtime owner.
 *
 * - Types: {@link WitType}, {@link FuncType}, {@link InterfaceType}, builders {@link t}.
 * - Codec (binary value encoding; jco's JavaScript representation): {@link encodeParams}, {@link decodeParams},
 *   {@link encodeResult}, {@link decodeResult}, {@link encodeValue}, {@link decodeValue}, {@link ResourceMapper}.
 * - JSON form: {@link fromJson}, {@link toJson}, {@link argsFromJson}, {@link resultToJson}.
 * - Client: {@link invoke} (typed), {@link invokeRaw} (bytes), {@link invokeJson} (JSON form), {@link notify}.
 * - Server: {@link serveInvocations} (raw handler), {@link serveInterfaces} / {@link typedHandler} (typed handlers),
 *   {@link errorReply}; introspection {@link INTROSPECT_IFACE}; limits under hostile callers {@link InvocationLimits},
 *   {@link UploadBudget}.
 * - HTTP carried form: {@link HttpRequest}, {@link HttpResponse}, {@link invokeHttp} (HTTP server provider → component),
 *   {@link serveHttpClient} (HTTP client provider answers components' outgoing requests), {@link serveHttpHandler}.
 *
 * Subjects come from src/core/subjects.ts (`invocationSubject`, `invocationWildcard`, `invocationQueue`).
 * @module
 */
export { t, camelCase, formatType, formatFunc } from "./types.ts";
export type { WitType, FuncType, InterfaceType, WitParam, PrimitiveKind } from "./types.ts";
export {
  encodeParams,
  decodeParams,
  encodeResult,
  decodeResult,
  encodeValue,
  decodeValue,
  encoderFor,
  decoderFor,
  Writer,
  Reader,
} from "./codec.ts";
export type { ResourceMapper, Encoder, Decoder } from "./codec.ts";
export { fromJson, toJson, argsFromJson, resultToJson } from "./json.ts";
export { invoke, invokeRaw, invokeJson, notify, parseErrorPayload, DEFAULT_INVOCATION_TIMEOUT_MS } from "./client.ts";
export type { CallOptions, RawInvoker } from "./client.ts";
export {
  serveInvocations,
  serveInterfaces,
  typedHandler,
  errorReply,
  describeInterface,
  INTROSPECT_IFACE,
  INTROSPECT_FN,
  INTROSPECT_WORLD_FN,
  WORLD_IFACE,
  WORLD_LINK_NAMESPACE,
  WORLD_LINK_PACKAGE,
  INTROSPECT_TYPE,
  RESOURCE_DROP_PREFIX,
} from "./server.ts";
export type { InvocationRequest, InvocationHandler, InvocationServer, ServeOptions, InterfaceImpl, WorldDescription } from "./server.ts";
export {
  invokeHttp,
  serveHttpClient,
  serveHttpHandler,
  headersFrom,
  headerValue,
  HTTP_REQUEST_TYPE,
  HTTP_RESPONSE_TYPE,
  HTTP_HANDLE_TYPE,
  HTTP_HANDLE_FN,
  INCOMING_HANDLER,
  OUTGOING_HANDLER,
  INCOMING_HANDLER_TYPE,
  OUTGOING_HANDLER_TYPE,
} from "./http.ts";
export type { HttpRequest, HttpResponse, HttpHeaders, HttpCallOptions } from "./http.ts";
export {
  Status,
  HEADER_SOURCE_ID,
  HEADER_TARGET_ID,
  HEADER_LINK_NAME,
  HEADER_TIMEOUT_MS,
  HEADER_CONTENT_TYPE,
  HEADER_BODY_LENGTH,
  CONTENT_TYPE_JSON,
  MAX_BODY_BYTES,
  PAYLOAD_MARGIN,
  chunkSize,
} from "./protocol.ts";
export {
  UploadBudget,
  UploadBuffer,
  resolveInvocationLimits,
  DEFAULT_MAX_UPLOADS,
  DEFAULT_MAX_UPLOAD_BYTES,
  DEFAULT_MAX_CALL_TIMEOUT_MS,
} from "./uploads.ts";
export type { InvocationLimits, ResolvedInvocationLimits } from "./uploads.ts";
export { corkUntilImmediate } from "./cork.ts";
export { requestHeaders, readRequestHeaders, CallHeaders } from "./headers.ts";
export type { RequestHeaderFields, ReceivedHeaders } from "./headers.ts";
