/**
 * Settings of one HTTP server listener, read from the link's source config (the provider is the link's source) with
 * the provider's own config as defaults (docs/adr/0007-first-party-providers.md, "http-server").
 *
 * | key | meaning | default |
 * | --- | --- | --- |
 * | `address` | `host:port` to listen on (`[::1]:8080`, `:8080` = all interfaces) | `127.0.0.1:8000` |
 * | `timeout_ms` | time budget of one request through the lattice, in ms; past it the client gets 504 | `10000` |
 * | `max_content_len` | largest request body in bytes (suffix `K`, `M`, `G` = ×1024ⁿ); larger ones get 413 | `16M` |
 * @module
 */
import { ErrorCode, TrellisError } from "trellis/provider-sdk";

/** Default listen address: loopback only, port 8000 (wasmCloud's http-server default port). */
export const DEFAULT_ADDRESS = "127.0.0.1:8000";
/** Default time budget of one request, in milliseconds (wasmCloud's invocation timeout). */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Default largest request body: 16 MiB. */
export const DEFAULT_MAX_CONTENT_LEN = 16 * 1024 * 1024;
/** Largest body the invocation protocol carries (docs/protocol.md §7): 64 MiB. */
export const PROTOCOL_MAX_BODY = 64 * 1024 * 1024;

/** Resolved settings of one listener. */
export interface ListenerSettings {
  /** Host part of the address (`127.0.0.1`, `::1`, `0.0.0.0`). */
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Request time budget in milliseconds. */
  timeoutMs: number;
  /** Largest request body in bytes. */
  maxContentLen: number;
}

function bad(key: string, value: string, why: string): TrellisError {
  return new TrellisError(ErrorCode.InvalidArgument, `http-server link config ${key}=${JSON.stringify(value)}: ${why}`, {
    details: { field: key },
  });
}

/**
 * Parses `host:port`, `[v6]:port` or `:port`.
 * @throws TrellisError `INVALID_ARGUMENT` for anything else or a port outside 0–65535.
 */
export function parseAddress(value: string): { host: string; port: number } {
  const v = value.trim();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(v);
  if (!m) throw bad("address", value, "expected host:port, [ipv6]:port or :port");
  const port = Number(m[3]);
  if (port > 65535) throw bad("address", value, "port must be 0–65535");
  const host = m[1] ?? (m[2] || "0.0.0.0");
  return { host, port };
}

/**
 * Parses a byte size: digits with an optional `K`, `M` or `G` suffix (powers of 1024; `KB`, `MiB` … accepted).
 * @throws TrellisError `INVALID_ARGUMENT` when malformed.
 */
export function parseSize(key: string, value: string): number {
  const m = /^\s*(\d+)\s*([kmg])?(?:i?b)?\s*$/i.exec(value);
  if (!m) throw bad(key, value, "expected a byte count such as 1048576, 512K or 16M");
  const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").toLowerCase() as "k" | "m" | "g"] ?? 1;
  return Number(m[1]) * mult;
}

function positiveInt(key: string, value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n <= 0) throw bad(key, value, "expected a positive integer");
  return n;
}

/**
 * The settings of a listener: link config first, then provider config, then defaults.
 * @throws TrellisError `INVALID_ARGUMENT` naming the bad key.
 */
export function listenerSettings(link: Readonly<Record<string, string>>, provider: Readonly<Record<string, string>> = {}): ListenerSettings {
  const get = (k: string) => link[k] ?? provider[k];
  const { host, port } = parseAddress(get("address") ?? DEFAULT_ADDRESS);
  const timeoutMs = get("timeout_ms") === undefined ? DEFAULT_TIMEOUT_MS : positiveInt("timeout_ms", get("timeout_ms")!);
  const rawMax = get("max_content_len");
  const maxContentLen = rawMax === undefined ? DEFAULT_MAX_CONTENT_LEN : parseSize("max_content_len", rawMax);
  if (maxContentLen > PROTOCOL_MAX_BODY) throw bad("max_content_len", rawMax ?? "", `at most ${PROTOCOL_MAX_BODY} bytes (the protocol's limit)`);
  return { host, port, timeoutMs, maxContentLen };
}
