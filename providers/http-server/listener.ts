/**
 * One HTTP listener of the HTTP server provider: accepts requests on its address, hands each one to its linked
 * component's `wasi:http/incoming-handler` in the carried form (docs/protocol.md §9, `invokeHttp`) and writes the
 * component's response back. Bodies larger than one NATS message travel in chunks (§7, done by the invocation client).
 *
 * Limits, each answered with a proper status and never a crash: a request body over `max_content_len` → 413
 * (checked against `content-length` before reading, and while reading a chunked body); a request Node's HTTP parser
 * refuses (malformed chunk size, bad header) → 400 at once and the connection closed; no answer within `timeout_ms`
 * → 504; nothing serves the component → 503; the component trapped or failed → 500; a malformed response from the
 * component (bad status, bad header) → 502.
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, invokeHttp, TrellisError, type HttpHeaders, type HttpRequest, type HttpResponse, type Logger, type ProviderTracing } from "trellis/provider-sdk";
import type { ListenerSettings } from "./settings.ts";

/** Where a listener sends its requests: one link from this provider to one component. */
export interface ListenerTarget {
  nc: NatsConnection;
  lattice: string;
  /** Sent as `source-id`: the HTTP server provider's id. */
  providerId: string;
  /** The linked component (the link's target). */
  componentId: string;
  /** Sent as `link-name`: the link's name. */
  linkName: string;
  /** The provider's tracing: an HTTP span per request, and the component call as its child (ADR 0025). @default none */
  tracing?: ProviderTracing;
}

/** Counters of one listener, for health messages and tests. */
export interface ListenerStats {
  requests: number;
  /** Responses by status class: `2xx`, `4xx`, … */
  byStatus: Record<string, number>;
}

/** Request headers that describe this hop only and are not handed to the component (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]);
/** Response headers the listener sets itself. */
const RESPONSE_SKIP = new Set([...HOP_BY_HOP, "content-length"]);
/** Bytes of an over-long body the listener still reads (and drops) after answering 413, before it closes the socket. */
const DRAIN_LIMIT = 1024 * 1024;

/** Maps a failed invocation to the status and text the HTTP client gets. */
export function statusForError(err: unknown): { status: number; text: string } {
  const e = TrellisError.from(err);
  switch (e.code) {
    case ErrorCode.Timeout:
      return { status: 504, text: `the component did not answer in time: ${e.message}` };
    case ErrorCode.PayloadTooLarge:
      return { status: 413, text: e.message };
    case ErrorCode.NoResponders:
      return { status: 503, text: `the component is not running: ${e.message}` };
    case ErrorCode.TooManyUploads:
    case ErrorCode.UploadBufferFull:
      return { status: 503, text: `the component is busy: ${e.message}` };
    case ErrorCode.Lattice:
      return { status: 502, text: e.message };
    default:
      return { status: 500, text: e.message };
  }
}

/** A running listener. Build it with {@link HttpListener.start}. */
export class HttpListener {
  readonly settings: ListenerSettings;
  readonly target: ListenerTarget;
  readonly stats: ListenerStats = { requests: 0, byStatus: {} };
  readonly #server: Server;
  readonly #logger: Logger;
  #closed: Promise<void> | undefined;
  /** When the last failure was logged (failures are logged at most once a second, with a count). */
  #lastFailureLog = 0;
  #unloggedFailures = 0;

  private constructor(server: Server, settings: ListenerSettings, target: ListenerTarget, logger: Logger) {
    this.#server = server;
    this.settings = settings;
    this.target = target;
    this.#logger = logger;
  }

  /**
   * Listens on `settings.host:settings.port`.
   * @throws TrellisError `INVALID_ARGUMENT` when the address cannot be bound (in use, not local, no permission).
   */
  static async start(settings: ListenerSettings, target: ListenerTarget, logger: Logger): Promise<HttpListener> {
    const server = createServer({ keepAliveTimeout: 5_000, requestTimeout: Math.max(30_000, settings.timeoutMs * 2) });
    const l = new HttpListener(server, settings, target, logger);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => l.#onRequest(req, res));
    server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && err.code !== "ECONNRESET") socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(
          new TrellisError(ErrorCode.InvalidArgument, `http-server cannot listen on ${hostPort(settings.host, settings.port)}: ${err.code ?? err.message}`, {
            details: { field: "address", componentId: target.componentId },
            cause: err,
          }),
        );
      };
      server.once("error", onError);
      server.listen(settings.port, settings.host, () => {
        server.off("error", onError);
        server.on("error", (err) => logger.error("http listener error", { error: String(err) }));
        resolve();
      });
    });
    logger.info("listening", { url: l.url, component_id: target.componentId, link_name: target.linkName });
    return l;
  }

  /** `http://host:port` of the bound address (the real port when 0 was asked). */
  get url(): string {
    const a = this.#server.address() as AddressInfo | null;
    return `http://${hostPort(this.settings.host, a?.port ?? this.settings.port)}`;
  }

  /** The bound TCP port. */
  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? this.settings.port;
  }

  /**
   * Stops accepting connections, lets in-flight requests finish for up to `graceMs`, then closes every connection.
   * Idempotent. @param graceMs milliseconds. @default 2000
   */
  close(graceMs = 2_000): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      setTimeout(() => this.#server.closeAllConnections(), graceMs).unref();
    }).then(() => this.#logger.info("listener closed", { url: this.url, component_id: this.target.componentId }));
    return this.#closed;
  }

  #count(status: number): void {
    this.stats.requests++;
    const k = `${Math.floor(status / 100)}xx`;
    this.stats.byStatus[k] = (this.stats.byStatus[k] ?? 0) + 1;
  }

  #plain(res: ServerResponse, status: number, text: string, close = false): void {
    this.#count(status);
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = Buffer.from(`${text}\n`, "utf8");
    const headers: Record<string, string | number> = { "content-type": "text/plain; charset=utf-8", "content-length": body.length };
    if (close) headers.connection = "close";
    res.writeHead(status, headers);
    res.end(body);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const max = this.settings.maxContentLen;
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > max) {
      this.#tooLarge(req, res, Number(declared));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        this.#tooLarge(req, res, size);
        return;
      }
      chunks.push(c);
    });
    req.on("error", () => res.destroy());
    req.on("end", () => {
      if (over) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      this.#forward(req, res, body);
    });
  }

  #tooLarge(req: IncomingMessage, res: ServerResponse, size: number): void {
    this.#plain(res, 413, `request body of ${size}+ bytes is larger than the limit of ${this.settings.maxContentLen} bytes`, true);
    let drained = 0;
    req.removeAllListeners("data");
    req.on("data", (c: Buffer) => {
      drained += c.length;
      if (drained > DRAIN_LIMIT) req.socket.destroy();
    });
    req.resume();
  }

  #forward(req: IncomingMessage, res: ServerResponse, body: Uint8Array): void {
    const raw = req.rawHeaders;
    const headers: HttpHeaders = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (!HOP_BY_HOP.has(name)) headers.push([name, Buffer.from(raw[i + 1]!, "latin1")]);
    }
    const request: HttpRequest = {
      method: req.method ?? "GET",
      pathWithQuery: req.url ?? "/",
      scheme: "http",
      ...(req.headers.host ? { authority: req.headers.host } : {}),
      headers,
      body,
    };
    const t = this.target;
    // The request's span (child of the HTTP client's traceparent, if any) and the component call under it.
    const tr = t.tracing?.enabled ? t.tracing : undefined;
    const http = tr?.server({ get: (n) => headerString(req.headers[n]) }, { target: t.providerId, iface: "http", fn: request.method }, `HTTP ${request.method}`);
    const call = tr?.client({ sourceId: t.providerId, target: t.componentId, iface: "wasi:http/incoming-handler", fn: "handle", linkName: t.linkName }, http);
    invokeHttp(t.nc, t.lattice, t.componentId, request, {
      sourceId: t.providerId,
      linkName: t.linkName,
      timeoutMs: this.settings.timeoutMs,
      ...(call ? { headers: call.headers } : {}),
    }).then(
      (response) => {
        call?.end();
        http?.end();
        this.#write(req, res, response);
      },
      (err: unknown) => {
        call?.end(err);
        http?.end(err);
        const { status, text } = statusForError(err);
        if (status >= 500) this.#logFailure(status, text);
        this.#plain(res, status, text);
      },
    );
  }

  #logFailure(status: number, text: string): void {
    const now = Date.now();
    if (now - this.#lastFailureLog < 1_000) {
      this.#unloggedFailures++;
      return;
    }
    const more = this.#unloggedFailures;
    this.#lastFailureLog = now;
    this.#unloggedFailures = 0;
    this.#logger.warn("request failed", { component_id: this.target.componentId, status, error: text, ...(more ? { failures_not_logged: more } : {}) });
  }

  #write(req: IncomingMessage, res: ServerResponse, response: HttpResponse): void {
    if (res.destroyed) return;
    const status = response.status;
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      this.#plain(res, 502, `the component answered with invalid status ${status}`);
      return;
    }
    const flat: string[] = [];
    let contentLength: string | undefined;
    for (const [name, value] of response.headers) {
      const n = name.toLowerCase();
      if (n === "content-length") contentLength = Buffer.from(value).toString("latin1");
      if (RESPONSE_SKIP.has(n)) continue;
      flat.push(name, Buffer.from(value).toString("latin1"));
    }
    const noBody = status === 204 || status === 304;
    if (!noBody) flat.push("content-length", req.method === "HEAD" && contentLength !== undefined ? contentLength : String(response.body.length));
    try {
      res.writeHead(status, flat);
    } catch (err) {
      this.#plain(res, 502, `the component's response has an invalid header: ${(err as Error).message}`);
      return;
    }
    this.#count(status);
    res.end(noBody || req.method === "HEAD" ? undefined : response.body);
  }
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
