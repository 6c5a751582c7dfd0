/**
 * Constants of the Trellis invocation protocol v1 (docs/protocol.md, "Invocation protocol v1"): header names,
 * reply status bytes, chunking sizes.
 * @module
 */

/** Request header: id of the caller (component id or provider id), as in wasmCloud 1.x (reference §4.6, §4.7). */
export const HEADER_SOURCE_ID = "source-id";
/** Request header: id of the callee, as in the wasmCloud 1.x provider SDK. */
export const HEADER_TARGET_ID = "target-id";
/** Request header: the link name the caller used (`default` when absent). */
export const HEADER_LINK_NAME = "link-name";
/** Request header (optional): the caller's remaining time budget in milliseconds, a decimal integer. */
export const HEADER_TIMEOUT_MS = "trellis-timeout-ms";
/** Request header (optional): `application/json` selects the JSON form for params and result. */
export const HEADER_CONTENT_TYPE = "content-type";
/** The JSON content type. */
export const CONTENT_TYPE_JSON = "application/json";
/** Request header on the first message of a chunked request: the total length of the encoded params in bytes. */
export const HEADER_BODY_LENGTH = "trellis-body-length";

/** First byte of every reply. */
export const Status = {
  /** The rest of the reply is the encoded result. */
  Ok: 0,
  /** The rest of the reply is UTF-8 JSON `{ code, message, details? }`. */
  Error: 1,
  /** Chunked request: send the next chunk; the rest of the reply is the UTF-8 subject to send it to. */
  Continue: 2,
  /** Chunked result: LEB128 total length, LEB128 subject length, subject, then the first chunk of the result. */
  More: 3,
} as const;
/** One of {@link Status}'s values. */
export type Status = (typeof Status)[keyof typeof Status];

/** Bytes kept free in every message for the subject, reply subject and headers (NATS counts headers in max_payload). */
export const PAYLOAD_MARGIN = 8 * 1024;
/** max_payload assumed when the server did not announce one (the nats-server default, 1 MiB). */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Largest total size of an encoded request or result, in bytes (64 MiB). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The largest chunk that fits one message on a server with `maxPayload`. */
export function chunkSize(maxPayload: number | undefined): number {
  const mp = maxPayload && maxPayload > 0 ? maxPayload : DEFAULT_MAX_PAYLOAD;
  return Math.max(1024, mp - PAYLOAD_MARGIN);
}
