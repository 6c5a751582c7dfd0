/**
 * The carried form of HTTP on the lattice (docs/protocol.md, "HTTP"): `wasi:http/incoming-handler.handle` and
 * `wasi:http/outgoing-handler.handle` travel as one request record and one response record, not as wasi:http
 * resources, so that an HTTP server provider, an HTTP client provider or a test can speak them in any language.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { invoke, type CallOptions } from "./client.ts";
import { serveInterfaces, type InvocationRequest, type InvocationServer, type ServeOptions } from "./server.ts";
import { t, type FuncType, type InterfaceType, type WitType } from "./types.ts";

/** Headers in order, names as sent (lower-case recommended), values as bytes; a name may repeat. */
export type HttpHeaders = [name: string, value: Uint8Array][];

/** An HTTP request in carried form (WIT record `http-request`). */
export interface HttpRequest {
  /** Upper-case method, e.g. `GET`; any token is allowed (`other`). */
  method: string;
  /** Path and query, e.g. `/items?id=3`; `/` at least. */
  pathWithQuery: string;
  /** `http` or `https` (or another scheme), when known. */
  scheme?: string;
  /** `host[:port]`, when known. Outgoing requests need it. */
  authority?: string;
  headers: HttpHeaders;
  body: Uint8Array;
}

/** An HTTP response in carried form (WIT record `http-response`). */
export interface HttpResponse {
  /** Status code, 100–599. */
  status: number;
  headers: HttpHeaders;
  body: Uint8Array;
}

const headersType = t.list(t.tuple(t.string, t.list(t.u8)));

/** WIT: `record http-request { method: string, path-with-query: string, scheme: option<string>, authority: option<string>, headers: list<tuple<string, list<u8>>>, body: list<u8> }`. */
export const HTTP_REQUEST_TYPE: WitType = t.record(
  [
    ["method", t.string],
    ["path-with-query", t.string],
    ["scheme", t.option(t.string)],
    ["authority", t.option(t.string)],
    ["headers", headersType],
    ["body", t.list(t.u8)],
  ],
  "http-request",
);

/** WIT: `record http-response { status: u16, headers: list<tuple<string, list<u8>>>, body: list<u8> }`. */
export const HTTP_RESPONSE_TYPE: WitType = t.record(
  [
    ["status", t.u16],
    ["headers", headersType],
    ["body", t.list(t.u8)],
  ],
  "http-response",
);

/** WIT: `handle: func(request: http-request) -> http-response`, the one function of both HTTP interfaces on the wire. */
export const HTTP_HANDLE_TYPE: FuncType = t.func([["request", HTTP_REQUEST_TYPE]], HTTP_RESPONSE_TYPE);

/** The interface an HTTP server provider calls on a component. */
export const INCOMING_HANDLER = "wasi:http/incoming-handler";
/** The interface a component's outgoing HTTP is routed to (an HTTP client provider serves it). */
export const OUTGOING_HANDLER = "wasi:http/outgoing-handler";
/** Function name of both. */
export const HTTP_HANDLE_FN = "handle";

/** Interface types of the carried form, for typed servers. */
export const INCOMING_HANDLER_TYPE: InterfaceType = { name: INCOMING_HANDLER, resources: [], functions: { handle: HTTP_HANDLE_TYPE } };
/** See {@link INCOMING_HANDLER_TYPE}. */
export const OUTGOING_HANDLER_TYPE: InterfaceType = { name: OUTGOING_HANDLER, resources: [], functions: { handle: HTTP_HANDLE_TYPE } };

/** Options of {@link invokeHttp}: who calls, under which link name, and the time budget. */
export type HttpCallOptions = Pick<CallOptions, "sourceId" | "linkName" | "timeoutMs" | "headers">;

/**
 * Hands an HTTP request to `targetId`'s `wasi:http/incoming-handler` (a component) and returns its response — the
 * path an HTTP server provider uses.
 * @throws TrellisError as {@link invoke} (e.g. `COMPONENT_TRAP` when the component traps, `TIMEOUT`, `NO_RESPONDERS`).
 */
export async function invokeHttp(
  nc: NatsConnection,
  lattice: string,
  targetId: string,
  request: HttpRequest,
  opts: HttpCallOptions = {},
): Promise<HttpResponse> {
  return (await invoke(nc, { ...opts, lattice, targetId, iface: INCOMING_HANDLER, fn: HTTP_HANDLE_FN }, HTTP_HANDLE_TYPE, [
    request,
  ])) as HttpResponse;
}

/**
 * Serves `wasi:http/outgoing-handler.handle` as `targetId` — what an HTTP client provider (or a test double) does
 * to answer components' outgoing requests. Throw a {@link TrellisError} with `details.error_code` set to a
 * wasi:http `error-code` case name (e.g. `DNS-error`, `connection-refused`) to give the guest that error.
 */
export function serveHttpClient(
  nc: NatsConnection,
  opts: Omit<ServeOptions, "handler">,
  handler: (request: HttpRequest, req: InvocationRequest) => Promise<HttpResponse> | HttpResponse,
): InvocationServer {
  return serveInterfaces(nc, opts, [{ type: OUTGOING_HANDLER_TYPE, handlers: { handle: handler } }]);
}

/** Serves `wasi:http/incoming-handler.handle` as `targetId` from plain JavaScript (tests, non-wasm targets). */
export function serveHttpHandler(
  nc: NatsConnection,
  opts: Omit<ServeOptions, "handler">,
  handler: (request: HttpRequest, req: InvocationRequest) => Promise<HttpResponse> | HttpResponse,
): InvocationServer {
  return serveInterfaces(nc, opts, [{ type: INCOMING_HANDLER_TYPE, handlers: { handle: handler } }]);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Carried headers from a plain object (`{ "content-type": "text/plain" }`); array values repeat the name. */
export function headersFrom(record: Record<string, string | string[] | undefined>): HttpHeaders {
  const out: HttpHeaders = [];
  for (const [k, v] of Object.entries(record)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push([k.toLowerCase(), enc.encode(one)]);
  }
  return out;
}

/** The first value of header `name` (case-insensitive) as UTF-8 text, or undefined. */
export function headerValue(headers: HttpHeaders, name: string): string | undefined {
  const n = name.toLowerCase();
  const h = headers.find(([k]) => k.toLowerCase() === n);
  return h ? dec.decode(h[1]) : undefined;
}
