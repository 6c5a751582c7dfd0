/**
 * The HTTP client behind one http-client link: sends a component's outgoing request (carried form, docs/protocol.md
 * §9) with Node's `http`/`https` on keep-alive agents of its own, and maps failures to wasi:http `error-code` case
 * names (`details.error_code`) so that the guest sees the right case.
 *
 * Link target config:
 * | key | meaning | default |
 * | --- | --- | --- |
 * | `base_url` | send every request to this origin instead (path prefix kept, the request's path appended); for tests and sandboxes without internet | — |
 * | `timeout_ms` | time limit of one request, in ms (the caller's own budget, when smaller, wins) | `10000` |
 * | `max_response_bytes` | largest response body accepted | `16777216` |
 * @module
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { ErrorCode, TrellisError, type HttpHeaders, type HttpRequest, type HttpResponse } from "trellis/provider-sdk";

/** Default time limit of one request, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Default largest response body: 16 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Settings of one link. */
export interface ClientSettings {
  baseUrl?: URL;
  timeoutMs: number;
  maxResponseBytes: number;
}

/**
 * Reads a link's target config (falling back to the provider's config).
 * @throws TrellisError `INVALID_ARGUMENT` for a malformed `base_url` or number.
 */
export function clientSettings(link: Readonly<Record<string, string>>, provider: Readonly<Record<string, string>> = {}): ClientSettings {
  const get = (k: string) => link[k] ?? provider[k];
  const num = (k: string, d: number) => {
    const v = get(k);
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new TrellisError(ErrorCode.InvalidArgument, `http-client config ${k}=${JSON.stringify(v)}: expected a positive integer`);
    return n;
  };
  const s: ClientSettings = { timeoutMs: num("timeout_ms", DEFAULT_TIMEOUT_MS), maxResponseBytes: num("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES) };
  const base = get("base_url");
  if (base) {
    try {
      s.baseUrl = new URL(base);
    } catch {
      throw new TrellisError(ErrorCode.InvalidArgument, `http-client config base_url=${JSON.stringify(base)} is not a URL`);
    }
    if (s.baseUrl.protocol !== "http:" && s.baseUrl.protocol !== "https:") {
      throw new TrellisError(ErrorCode.InvalidArgument, `http-client config base_url=${JSON.stringify(base)}: only http and https are supported`);
    }
  }
  return s;
}

/** A failed outgoing request as the guest should see it: `details.error_code` is a wasi:http `error-code` case. */
export function outgoingError(errorCode: string, message: string): TrellisError {
  return new TrellisError(ErrorCode.Application, message, { details: { error_code: errorCode } });
}

/** Maps a Node network error to a wasi:http `error-code` case without payload (docs/protocol.md §9). */
export function errorCodeFor(err: NodeJS.ErrnoException): string {
  const code = err.code ?? "";
  if (code === "ENOTFOUND") return "destination-not-found";
  if (code === "EAI_AGAIN") return "DNS-timeout";
  if (code === "ECONNREFUSED") return "connection-refused";
  if (code === "ECONNRESET" || code === "EPIPE" || /socket hang up/i.test(err.message)) return "connection-terminated";
  if (code === "ETIMEDOUT") return "connection-timeout";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "EADDRNOTAVAIL") return "destination-unavailable";
  if (code.startsWith("CERT_") || code.includes("SELF_SIGNED") || code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE") return "TLS-certificate-error";
  if (code.startsWith("ERR_TLS") || code === "EPROTO") return "TLS-protocol-error";
  if (code === "ERR_INVALID_HTTP_TOKEN" || code === "ERR_INVALID_CHAR" || code === "ERR_HTTP_INVALID_HEADER_VALUE") return "HTTP-request-denied";
  if (code === "HPE_INVALID_CONSTANT" || code.startsWith("HPE_")) return "HTTP-protocol-error";
  return "internal-error";
}

/** Request headers Node sets itself (or that describe only the hop). */
const SKIP = new Set(["host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "proxy-connection", "te"]);

/** The URL a carried request goes to, after `base_url` rewriting. @throws TrellisError with `HTTP-request-URI-invalid`. */
export function targetUrl(req: HttpRequest, baseUrl: URL | undefined): URL {
  const path = req.pathWithQuery || "/";
  if (baseUrl) {
    const u = new URL(baseUrl.href);
    const [p, q] = path.split("?", 2) as [string, string | undefined];
    u.pathname = `${u.pathname.replace(/\/$/, "")}${p.startsWith("/") ? p : `/${p}`}`;
    u.search = q === undefined ? "" : `?${q}`;
    return u;
  }
  if (!req.authority) throw outgoingError("HTTP-request-URI-invalid", "the outgoing request has no authority (host)");
  const scheme = (req.scheme ?? "https").toLowerCase();
  if (scheme !== "http" && scheme !== "https") throw outgoingError("HTTP-protocol-error", `unsupported scheme ${scheme}`);
  try {
    return new URL(`${scheme}://${req.authority}${path.startsWith("/") ? path : `/${path}`}`);
  } catch {
    throw outgoingError("HTTP-request-URI-invalid", `invalid URL ${scheme}://${req.authority}${path}`);
  }
}

/** One link's client: its keep-alive agents and settings. Closed (agents destroyed) on link delete. */
export class LinkHttpClient {
  readonly settings: ClientSettings;
  readonly #http = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  readonly #https = new HttpsAgent({ keepAlive: true, maxSockets: 64 });

  constructor(settings: ClientSettings) {
    this.settings = settings;
  }

  /**
   * Sends one request and reads the whole response.
   * @param budgetMs the caller's remaining time budget in ms (header `trellis-timeout-ms`), when known.
   * @throws TrellisError `APPLICATION_ERROR` with `details.error_code` (a wasi:http `error-code` case) on failure.
   */
  send(req: HttpRequest, budgetMs?: number): Promise<HttpResponse> {
    const url = targetUrl(req, this.settings.baseUrl);
    const timeoutMs = Math.max(1, Math.min(this.settings.timeoutMs, budgetMs ?? Infinity));
    const headers: [string, string][] = [];
    for (const [name, value] of req.headers) if (!SKIP.has(name.toLowerCase())) headers.push([name, Buffer.from(value).toString("latin1")]);
    const https = url.protocol === "https:";
    const max = this.settings.maxResponseBytes;
    return new Promise<HttpResponse>((resolve, reject) => {
      let done = false;
      const fail = (e: TrellisError) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(e);
      };
      let r: ReturnType<typeof httpRequest>;
      try {
        r = (https ? httpsRequest : httpRequest)(url, {
          method: req.method,
          headers: Object.fromEntries(groupHeaders(headers)),
          agent: https ? this.#https : this.#http,
        });
      } catch (err) {
        fail(outgoingError(errorCodeFor(err as NodeJS.ErrnoException), `outgoing request to ${url.origin} is invalid: ${(err as Error).message}`));
        return;
      }
      const timer = setTimeout(() => {
        fail(outgoingError("HTTP-response-timeout", `outgoing request to ${url.origin} took longer than ${timeoutMs} ms`));
        r.destroy();
      }, timeoutMs);
      r.on("error", (err: NodeJS.ErrnoException) => fail(outgoingError(errorCodeFor(err), `outgoing request to ${url.origin} failed: ${err.code ?? err.message}`)));
      r.on("response", (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > max) {
            fail(outgoingError("internal-error", `response from ${url.origin} is larger than ${max} bytes`));
            res.destroy();
            return;
          }
          chunks.push(c);
        });
        res.on("error", (err: NodeJS.ErrnoException) => fail(outgoingError("HTTP-response-incomplete", `response from ${url.origin} broke off: ${err.message}`)));
        res.on("end", () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          const out: HttpHeaders = [];
          const raw = res.rawHeaders;
          for (let i = 0; i + 1 < raw.length; i += 2) {
            const n = raw[i]!.toLowerCase();
            if (n !== "connection" && n !== "keep-alive" && n !== "transfer-encoding") out.push([n, Buffer.from(raw[i + 1]!, "latin1")]);
          }
          resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks, size) });
        });
      });
      r.end(req.body.length > 0 ? req.body : undefined);
    });
  }

  /** Destroys the agents (and their idle sockets). */
  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}

function groupHeaders(pairs: [string, string][]): Map<string, string | string[]> {
  const m = new Map<string, string | string[]>();
  for (const [k, v] of pairs) {
    const prev = m.get(k);
    m.set(k, prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]);
  }
  return m;
}
