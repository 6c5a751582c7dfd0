/**
 * Request headers of the invocation protocol v1 (docs/protocol.md §3), built and read in this one place.
 *
 * Building: the headers that stay the same for every call of one caller to one target under one link (`source-id`,
 * `target-id`, `link-name`) are encoded once and kept ({@link requestHeaders}); each call adds only its own
 * (`trellis-timeout-ms`, and rarely `content-type`, `trellis-body-length`, extra headers such as trace context). The
 * bytes on the wire are exactly what nats.js's own `headers()` would send (`NATS/1.0\r\nname: value\r\n…\r\n\r\n`, in
 * the same order); nats.js asks a header object for its bytes with `encode()`, which {@link CallHeaders} answers from
 * the cached prefix. To add a header to every call (e.g. `traceparent`), pass it in {@link RequestHeaderFields.extra}.
 *
 * Reading: {@link readRequestHeaders} walks the decoded headers once instead of one `get` (a scan of all keys) per
 * header.
 * @module
 */
import type { Match, MsgHdrs } from "@nats-io/transport-node";
import { InvalidArgumentError } from "../core/errors.ts";
import { DEFAULT_LINK_NAME } from "../core/link.ts";
import {
  CONTENT_TYPE_JSON,
  HEADER_BODY_LENGTH,
  HEADER_CONTENT_TYPE,
  HEADER_LINK_NAME,
  HEADER_SOURCE_ID,
  HEADER_TARGET_ID,
  HEADER_TIMEOUT_MS,
} from "./protocol.ts";

const HEAD = "NATS/1.0";
const utf8 = new TextEncoder();

/** Most distinct (source, target, link) prefixes kept; the cache is emptied when it grows past it. */
const MAX_PREFIXES = 4096;
const prefixes = new Map<string, { bytes: Uint8Array; entries: readonly [string, string][] }>();

function checkValue(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new InvalidArgumentError("headers", `value of header ${name} cannot contain \\r or \\n`);
  return value.trim();
}

function checkName(name: string): string {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new InvalidArgumentError("headers", `invalid header name ${JSON.stringify(name)}`);
  return name;
}

/**
 * Header object of one call: the cached prefix plus this call's own headers. Implements nats.js's `MsgHdrs` (reads
 * and edits work as usual; an edit drops the cached prefix) and `encode()`, which nats.js calls when publishing.
 */
export class CallHeaders implements MsgHdrs {
  hasError = false;
  status = "";
  code = 0;
  description = "";
  #prefix: Uint8Array | undefined;
  /** Entries covered by `#prefix`, then this call's own. */
  readonly #entries: [string, string][];
  readonly #prefixCount: number;

  constructor(prefix: { bytes: Uint8Array; entries: readonly [string, string][] } | undefined, own: [string, string][]) {
    this.#prefix = prefix?.bytes;
    this.#prefixCount = prefix?.entries.length ?? 0;
    this.#entries = prefix ? [...prefix.entries, ...own] : own;
  }

  /** The header block as nats.js sends it. */
  encode(): Uint8Array {
    const prefix = this.#prefix;
    let tail = "";
    for (let i = prefix ? this.#prefixCount : 0; i < this.#entries.length; i++) {
      const [k, v] = this.#entries[i]!;
      tail += `${k}: ${v}\r\n`;
    }
    tail += "\r\n";
    if (!prefix) return utf8.encode(`${HEAD}\r\n${tail}`);
    const out = new Uint8Array(prefix.length + tail.length * 3);
    out.set(prefix, 0);
    const { written } = utf8.encodeInto(tail, out.subarray(prefix.length));
    return out.subarray(0, prefix.length + written);
  }

  toString(): string {
    return new TextDecoder().decode(this.encode());
  }

  [Symbol.iterator](): Iterator<[string, string[]]> {
    const grouped = new Map<string, string[]>();
    for (const [k, v] of this.#entries) {
      const list = grouped.get(k);
      if (list) list.push(v);
      else grouped.set(k, [v]);
    }
    return grouped.entries();
  }

  get(k: string, _match?: Match): string {
    for (const [n, v] of this.#entries) if (n === k) return v;
    return "";
  }

  last(k: string, _match?: Match): string {
    let out = "";
    for (const [n, v] of this.#entries) if (n === k) out = v;
    return out;
  }

  has(k: string, _match?: Match): boolean {
    return this.#entries.some(([n]) => n === k);
  }

  keys(): string[] {
    return [...new Set(this.#entries.map(([n]) => n))];
  }

  values(k: string, _match?: Match): string[] {
    return this.#entries.filter(([n]) => n === k).map(([, v]) => v);
  }

  set(k: string, v: string, _match?: Match): void {
    this.delete(k);
    this.append(k, v);
  }

  append(k: string, v: string, _match?: Match): void {
    this.#prefix = undefined;
    this.#entries.push([checkName(k), checkValue(k, v)]);
  }

  delete(k: string, _match?: Match): void {
    this.#prefix = undefined;
    for (let i = this.#entries.length - 1; i >= 0; i--) if (this.#entries[i]![0] === k) this.#entries.splice(i, 1);
  }
}

/** What one call's request headers say (docs/protocol.md §3). */
export interface RequestHeaderFields {
  /** `source-id` (omitted when undefined). */
  sourceId: string | undefined;
  /** `target-id`. */
  targetId: string;
  /** `link-name`. @default "default" */
  linkName: string | undefined;
  /** `trellis-timeout-ms`: the call's budget in milliseconds (sent as an integer ≥ 1). */
  timeoutMs: number;
  /** True to send `content-type: application/json`. */
  json?: boolean;
  /** `trellis-body-length` of the first message of a chunked request. */
  bodyLength?: number | undefined;
  /** Extra headers (e.g. trace context), sent after the protocol's own. */
  extra?: Readonly<Record<string, string>> | undefined;
}

/**
 * The headers of one request. The (`source-id`, `target-id`, `link-name`) part is encoded once per distinct triple.
 * @throws InvalidArgumentError when a value contains CR or LF, or an extra header name is not a token.
 */
export function requestHeaders(f: RequestHeaderFields): CallHeaders {
  const linkName = f.linkName ?? DEFAULT_LINK_NAME;
  const key = `${f.sourceId ?? ""}\u0000${f.sourceId === undefined ? "0" : "1"}\u0000${f.targetId}\u0000${linkName}`;
  let prefix = prefixes.get(key);
  if (!prefix) {
    const entries: [string, string][] = [];
    if (f.sourceId !== undefined) entries.push([HEADER_SOURCE_ID, checkValue(HEADER_SOURCE_ID, f.sourceId)]);
    entries.push([HEADER_TARGET_ID, checkValue(HEADER_TARGET_ID, f.targetId)], [HEADER_LINK_NAME, checkValue(HEADER_LINK_NAME, linkName)]);
    let text = HEAD;
    for (const [k, v] of entries) text += `\r\n${k}: ${v}`;
    prefix = { bytes: utf8.encode(`${text}\r\n`), entries };
    if (prefixes.size >= MAX_PREFIXES) prefixes.clear();
    prefixes.set(key, prefix);
  }
  const own: [string, string][] = [[HEADER_TIMEOUT_MS, String(Math.max(1, Math.floor(f.timeoutMs)))]];
  if (f.json) own.push([HEADER_CONTENT_TYPE, CONTENT_TYPE_JSON]);
  if (f.bodyLength !== undefined) own.push([HEADER_BODY_LENGTH, String(f.bodyLength)]);
  const h = new CallHeaders(prefix, own);
  if (f.extra) for (const [k, v] of Object.entries(f.extra)) h.set(k, v);
  return h;
}

/** The protocol headers of a received request (docs/protocol.md §3), read in one pass. */
export interface ReceivedHeaders {
  sourceId: string | undefined;
  linkName: string;
  /** Raw `trellis-timeout-ms` (not yet capped). */
  timeout: string | undefined;
  json: boolean;
  /** Raw `trellis-body-length`. */
  bodyLength: string | undefined;
}

/** Reads the protocol headers of a request; absent ones get their defaults (`link-name` → `default`). */
export function readRequestHeaders(h: MsgHdrs | undefined): ReceivedHeaders {
  let sourceId: string | undefined;
  let linkName: string | undefined;
  let timeout: string | undefined;
  let contentType: string | undefined;
  let bodyLength: string | undefined;
  // the first value of each header counts (as nats.js `get`); an empty value counts as absent
  if (h) {
    for (const [k, values] of h) {
      const v = values[0];
      if (!v) continue;
      switch (k) {
        case HEADER_SOURCE_ID:
          sourceId ??= v;
          break;
        case HEADER_LINK_NAME:
          linkName ??= v;
          break;
        case HEADER_TIMEOUT_MS:
          timeout ??= v;
          break;
        case HEADER_CONTENT_TYPE:
          contentType ??= v;
          break;
        case HEADER_BODY_LENGTH:
          bodyLength ??= v;
          break;
      }
    }
  }
  return { sourceId, linkName: linkName ?? DEFAULT_LINK_NAME, timeout, json: contentType === CONTENT_TYPE_JSON, bodyLength };
}
