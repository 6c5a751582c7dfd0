/**
 * `wasi:http/types` and `wasi:http/outgoing-handler` 0.2 for guests, converting to and from the carried form of
 * docs/protocol.md §9: an incoming request is built from an {@link HttpRequest}; the guest's response is collected
 * into an {@link HttpResponse}; an outgoing request becomes one lattice call routed by the component's links.
 * @module
 */
import type { HttpHeaders, HttpRequest, HttpResponse } from "../../../packages/wire/src/invocation/http.ts";
import { BufferSink, InputStream, OutputStream, Pollable } from "./io.ts";

type Variant = { tag: string; val?: unknown };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const METHODS = new Set(["get", "head", "post", "put", "delete", "connect", "options", "trace", "patch"]);

function badSyntax(): never {
  throw { tag: "invalid-syntax" };
}

/** `wasi:http/types.fields` (also `headers` and `trailers`). */
export class Fields {
  entriesList: [string, Uint8Array][] = [];
  immutable = false;

  static fromList(entries: [string, Uint8Array][]): Fields {
    const f = new Fields();
    for (const [k, v] of entries) {
      if (!TOKEN.test(k)) badSyntax();
      f.entriesList.push([k, v]);
    }
    return f;
  }
  /** Host-side constructor from carried headers. */
  static of(headers: HttpHeaders, immutable: boolean): Fields {
    const f = new Fields();
    f.entriesList = headers.map(([k, v]) => [k, v]);
    f.immutable = immutable;
    return f;
  }
  get(name: string): Uint8Array[] {
    const n = name.toLowerCase();
    return this.entriesList.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  }
  has(name: string): boolean {
    const n = name.toLowerCase();
    return this.entriesList.some(([k]) => k.toLowerCase() === n);
  }
  set(name: string, values: Uint8Array[]): void {
    if (this.immutable) throw { tag: "immutable" };
    if (!TOKEN.test(name)) badSyntax();
    this.#remove(name);
    for (const v of values) this.entriesList.push([name, v]);
  }
  delete(name: string): void {
    if (this.immutable) throw { tag: "immutable" };
    if (!TOKEN.test(name)) badSyntax();
    this.#remove(name);
  }
  append(name: string, value: Uint8Array): void {
    if (this.immutable) throw { tag: "immutable" };
    if (!TOKEN.test(name)) badSyntax();
    this.entriesList.push([name, value]);
  }
  entries(): [string, Uint8Array][] {
    return this.entriesList.map(([k, v]) => [k, v]);
  }
  clone(): Fields {
    const f = new Fields();
    f.entriesList = this.entries();
    return f;
  }
  #remove(name: string): void {
    const n = name.toLowerCase();
    this.entriesList = this.entriesList.filter(([k]) => k.toLowerCase() !== n);
  }
}

function toMethod(m: string): Variant {
  const l = m.toLowerCase();
  return METHODS.has(l) && m === m.toUpperCase() ? { tag: l } : { tag: "other", val: m };
}
function fromMethod(v: Variant): string {
  return v.tag === "other" ? String(v.val) : v.tag.toUpperCase();
}
function toScheme(s: string | undefined): Variant | undefined {
  if (s === undefined) return undefined;
  const l = s.toLowerCase();
  return l === "http" ? { tag: "HTTP" } : l === "https" ? { tag: "HTTPS" } : { tag: "other", val: s };
}
function fromScheme(v: Variant | undefined): string | undefined {
  if (!v) return undefined;
  return v.tag === "HTTP" ? "http" : v.tag === "HTTPS" ? "https" : String(v.val);
}

/** `wasi:http/types.incoming-body`. */
export class IncomingBody {
  #data: Uint8Array;
  #streamTaken = false;
  constructor(data: Uint8Array) {
    this.#data = data;
  }
  stream(): InputStream {
    if (this.#streamTaken) throw undefined;
    this.#streamTaken = true;
    return new InputStream(this.#data);
  }
  static finish(_body: IncomingBody): FutureTrailers {
    return new FutureTrailers();
  }
}

/** `wasi:http/types.future-trailers`: trailers are not carried, so always "no trailers". */
export class FutureTrailers {
  #taken = false;
  subscribe(): Pollable {
    return new Pollable();
  }
  get(): unknown {
    if (this.#taken) return { tag: "err", val: undefined };
    this.#taken = true;
    return { tag: "ok", val: { tag: "ok", val: undefined } };
  }
}

/** `wasi:http/types.incoming-request`, built from the carried form. */
export class IncomingRequest {
  #req: HttpRequest;
  #consumed = false;
  #headers: Fields;
  constructor(req: HttpRequest) {
    this.#req = req;
    this.#headers = Fields.of(req.headers, true);
  }
  method(): Variant {
    return toMethod(this.#req.method);
  }
  pathWithQuery(): string | undefined {
    return this.#req.pathWithQuery;
  }
  scheme(): Variant | undefined {
    return toScheme(this.#req.scheme);
  }
  authority(): string | undefined {
    return this.#req.authority;
  }
  headers(): Fields {
    return this.#headers;
  }
  consume(): IncomingBody {
    if (this.#consumed) throw undefined;
    this.#consumed = true;
    return new IncomingBody(this.#req.body);
  }
}

/** `wasi:http/types.outgoing-body`: collects what the guest writes. */
export class OutgoingBody {
  readonly sink = new BufferSink();
  #stream: OutputStream | undefined;
  finished = false;
  onFinish: (() => void) | undefined;
  write(): OutputStream {
    if (this.#stream) throw undefined;
    this.#stream = new OutputStream(this.sink);
    return this.#stream;
  }
  static finish(body: OutgoingBody, _trailers: Fields | undefined): void {
    body.finished = true;
    if (body.#stream) body.#stream.closed = true;
    body.onFinish?.();
  }
}

/** `wasi:http/types.outgoing-response`. */
export class OutgoingResponse {
  status = 200;
  readonly fields: Fields;
  /** The body, once the guest took it with `body()`. */
  takenBody: OutgoingBody | undefined;
  constructor(headers: Fields) {
    this.fields = headers;
  }
  statusCode(): number {
    return this.status;
  }
  setStatusCode(code: number): void {
    if (code < 100 || code > 599) throw undefined;
    this.status = code;
  }
  headers(): Fields {
    return this.fields;
  }
  body(): OutgoingBody {
    if (this.takenBody) throw undefined;
    this.takenBody = new OutgoingBody();
    return this.takenBody;
  }
}

/** The body an outgoing response or request was given, if any. */
export function bodyOf(x: OutgoingResponse | OutgoingRequest): OutgoingBody | undefined {
  return x.takenBody;
}

/** `wasi:http/types.response-outparam`: receives the guest's response (or error). */
export class ResponseOutparam {
  response: { tag: "ok"; val: OutgoingResponse } | { tag: "err"; val: Variant } | undefined;
  static set(param: ResponseOutparam, response: { tag: "ok"; val: OutgoingResponse } | { tag: "err"; val: Variant }): void {
    param.response = response;
  }
}

/** `wasi:http/types.request-options`: timeouts are recorded (the lattice call has its own budget). */
export class RequestOptions {
  #t: Record<string, bigint | undefined> = {};
  connectTimeout(): bigint | undefined {
    return this.#t.connect;
  }
  setConnectTimeout(d: bigint | undefined): void {
    this.#t.connect = d;
  }
  firstByteTimeout(): bigint | undefined {
    return this.#t.first;
  }
  setFirstByteTimeout(d: bigint | undefined): void {
    this.#t.first = d;
  }
  betweenBytesTimeout(): bigint | undefined {
    return this.#t.between;
  }
  setBetweenBytesTimeout(d: bigint | undefined): void {
    this.#t.between = d;
  }
}

/** `wasi:http/types.outgoing-request`. */
export class OutgoingRequest {
  #method: Variant = { tag: "get" };
  #path: string | undefined;
  #scheme: Variant | undefined;
  #authority: string | undefined;
  readonly fields: Fields;
  /** The body, once the guest took it with `body()`. */
  takenBody: OutgoingBody | undefined;
  constructor(headers: Fields) {
    this.fields = headers;
  }
  body(): OutgoingBody {
    if (this.takenBody) throw undefined;
    this.takenBody = new OutgoingBody();
    return this.takenBody;
  }
  method(): Variant {
    return this.#method;
  }
  setMethod(m: Variant): void {
    if (m.tag === "other" && !TOKEN.test(String(m.val))) throw undefined;
    this.#method = m;
  }
  pathWithQuery(): string | undefined {
    return this.#path;
  }
  setPathWithQuery(p: string | undefined): void {
    this.#path = p;
  }
  scheme(): Variant | undefined {
    return this.#scheme;
  }
  setScheme(s: Variant | undefined): void {
    this.#scheme = s;
  }
  authority(): string | undefined {
    return this.#authority;
  }
  setAuthority(a: string | undefined): void {
    this.#authority = a;
  }
  headers(): Fields {
    return this.fields;
  }
  /** The carried form of this request, with `body`. */
  toCarried(body: Uint8Array): HttpRequest {
    const req: HttpRequest = {
      method: fromMethod(this.#method),
      pathWithQuery: this.#path ?? "/",
      headers: this.fields.entries(),
      body,
    };
    const scheme = fromScheme(this.#scheme);
    if (scheme !== undefined) req.scheme = scheme;
    if (this.#authority !== undefined) req.authority = this.#authority;
    return req;
  }
}

/** `wasi:http/types.incoming-response`, built from a carried response. */
export class IncomingResponse {
  #res: HttpResponse;
  #consumed = false;
  #headers: Fields;
  constructor(res: HttpResponse) {
    this.#res = res;
    this.#headers = Fields.of(res.headers, true);
  }
  status(): number {
    return this.#res.status;
  }
  headers(): Fields {
    return this.#headers;
  }
  consume(): IncomingBody {
    if (this.#consumed) throw undefined;
    this.#consumed = true;
    return new IncomingBody(this.#res.body);
  }
}

/** `wasi:http/types.future-incoming-response`: settles when the lattice call answers. */
export class FutureIncomingResponse {
  #outcome: { tag: "ok"; val: IncomingResponse } | { tag: "err"; val: Variant } | undefined;
  #taken = false;
  readonly #done: Promise<void>;
  constructor(result: Promise<HttpResponse>, toErrorCode: (err: unknown) => Variant) {
    this.#done = result.then(
      (r) => void (this.#outcome = { tag: "ok", val: new IncomingResponse(r) }),
      (e: unknown) => void (this.#outcome = { tag: "err", val: toErrorCode(e) }),
    );
  }
  subscribe(): Pollable {
    return new Pollable({ ready: () => this.#outcome !== undefined, wait: () => this.#done });
  }
  get(): unknown {
    if (!this.#outcome) return undefined;
    if (this.#taken) return { tag: "err", val: undefined };
    this.#taken = true;
    return { tag: "ok", val: this.#outcome };
  }
}

const ERROR_CASE_PAYLOADS: Record<string, unknown> = {
  "DNS-error": { rcode: undefined, infoCode: undefined },
  "TLS-alert-received": { alertId: undefined, alertMessage: undefined },
};
/** wasi:http `error-code` cases without payload or with only optional fields. */
const KNOWN_CASES = new Set([
  "DNS-timeout",
  "DNS-error",
  "destination-not-found",
  "destination-unavailable",
  "destination-IP-prohibited",
  "destination-IP-unroutable",
  "connection-refused",
  "connection-terminated",
  "connection-reset",
  "connection-timeout",
  "connection-read-timeout",
  "connection-write-timeout",
  "connection-limit-reached",
  "TLS-protocol-error",
  "TLS-certificate-error",
  "TLS-alert-received",
  "HTTP-request-denied",
  "HTTP-request-length-required",
  "HTTP-request-method-invalid",
  "HTTP-request-URI-invalid",
  "HTTP-request-URI-too-long",
  "HTTP-response-incomplete",
  "HTTP-response-timeout",
  "HTTP-upgrade-failed",
  "HTTP-protocol-error",
  "loop-detected",
  "configuration-error",
]);

/** Maps a failed outgoing call to a wasi:http `error-code` (docs/protocol.md §9). */
export function toErrorCode(err: unknown): Variant {
  const e = err as { message?: string; details?: { error_code?: unknown } };
  const code = e?.details?.error_code;
  if (typeof code === "string" && KNOWN_CASES.has(code)) {
    return code in ERROR_CASE_PAYLOADS ? { tag: code, val: ERROR_CASE_PAYLOADS[code] } : { tag: code };
  }
  return { tag: "internal-error", val: e?.message ?? String(err) };
}

/** Sends an outgoing request over the lattice (routed by the component's links). */
export type OutgoingSender = (request: HttpRequest) => Promise<HttpResponse>;

/**
 * `wasi:http/outgoing-handler.handle`: returns at once; the lattice call starts when the request body is finished
 * (or immediately when the guest never took a body).
 */
export function outgoingHandle(send: OutgoingSender, request: OutgoingRequest, _options: RequestOptions | undefined): FutureIncomingResponse {
  const body = bodyOf(request);
  let result: Promise<HttpResponse>;
  if (!body || body.finished) {
    result = send(request.toCarried(body ? body.sink.bytes() : new Uint8Array(0)));
  } else {
    result = new Promise<HttpResponse>((resolve, reject) => {
      body.onFinish = () => {
        send(request.toCarried(body.sink.bytes())).then(resolve, reject);
      };
    });
  }
  result.catch(() => undefined);
  return new FutureIncomingResponse(result, toErrorCode);
}

/** The carried response of a guest's `response-outparam`, or an error message when it set none or an error. */
export function collectResponse(out: ResponseOutparam): HttpResponse | { error: string; errorCode?: Variant } {
  const r = out.response;
  if (!r) return { error: "the component returned without setting a response (response-outparam.set was not called)" };
  if (r.tag === "err") return { error: `the component answered with error-code ${r.val.tag}`, errorCode: r.val };
  const body = bodyOf(r.val);
  return { status: r.val.status, headers: r.val.fields.entries(), body: body ? body.sink.bytes() : new Uint8Array(0) };
}

/** The `wasi:http/types` import object (classes jco checks with `instanceof`). */
export function httpTypes(): Record<string, unknown> {
  return {
    Fields,
    IncomingRequest,
    OutgoingRequest,
    RequestOptions,
    ResponseOutparam,
    IncomingResponse,
    IncomingBody,
    FutureTrailers,
    OutgoingResponse,
    OutgoingBody,
    FutureIncomingResponse,
    httpErrorCode: () => undefined,
  };
}
