/**
 * The calling side of the invocation protocol v1 (docs/protocol.md, "Invocation protocol v1"): one NATS request
 * and one reply per unary call; chunked transfer for bodies larger than one message.
 * @module
 */
import {
  createInbox,
  NoRespondersError,
  RequestError,
  TimeoutError as NatsTimeoutError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import { ErrorCode, InvalidArgumentError, TimeoutError, TrellisError } from "../core/errors.ts";
import { invocationSubject, stripVersion, targetExitWildcard } from "../core/subjects.ts";
import { decodeResult, encodeParams, Reader, type ResourceMapper } from "./codec.ts";
import { corkUntilImmediate } from "./cork.ts";
import { requestHeaders } from "./headers.ts";
import { chunkSize, MAX_BODY_BYTES, Status } from "./protocol.ts";
import type { FuncType } from "./types.ts";
import { parseTargetExit, type TargetExitNotice } from "./exit.ts";

/** Default per-call timeout when a caller gives none, in milliseconds (the wasmCloud 1.x invocation timeout). */
export const DEFAULT_INVOCATION_TIMEOUT_MS = 10_000;

/** What to call and on whose behalf. */
export interface CallOptions {
  /** Lattice name. */
  lattice: string;
  /** Id of the target (component id or provider id). */
  targetId: string;
  /** Interface, `namespace:package/interface`, with or without `@version` (the version is not sent). */
  iface: string;
  /** Function name as in WIT, e.g. `add`, `[method]bucket.get`. */
  fn: string;
  /** Caller id sent as header `source-id` (omitted when undefined). */
  sourceId?: string;
  /** Link name sent as header `link-name`. @default "default" */
  linkName?: string;
  /** Time budget of the whole call in milliseconds, including chunked transfers. @default 10000 */
  timeoutMs?: number;
  /** Extra request headers (e.g. trace context). */
  headers?: Record<string, string>;
}

/** Encoded bytes sent, encoded bytes received. */
export type RawInvoker = (call: CallOptions, params: Uint8Array, json?: boolean) => Promise<Uint8Array>;

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder();
const utf8enc = new TextEncoder();

/** The request headers of a call (./headers.ts builds them; add headers for every call there). */
function buildHeaders(call: CallOptions, timeoutMs: number, json: boolean, bodyLength?: number): MsgHdrs {
  return requestHeaders({ sourceId: call.sourceId, targetId: call.targetId, linkName: call.linkName, timeoutMs, json, bodyLength, extra: call.headers });
}

function describeCall(call: CallOptions): string {
  return `${stripVersion(call.iface)}.${call.fn} on ${call.targetId}`;
}

/** What a pending request is addressed to (for target exit notices). */
interface Addressee {
  lattice: string;
  targetId: string;
}

/** Rejection reason of a request failed by a target exit notice; mapped to `TARGET_EXITED` by {@link natsFailure}. */
class TargetExitedSignal extends Error {
  readonly notice: TargetExitNotice;
  constructor(notice: TargetExitNotice) {
    super(notice.reason);
    this.notice = notice;
  }
}

/** A request waiting for its reply. */
interface Pending {
  resolve: (m: Msg) => void;
  reject: (e: unknown) => void;
  /** `performance.now()` after which the request fails with a timeout. */
  deadline: number;
  to: Addressee | undefined;
}

/**
 * Request/reply multiplexer of one connection: one wildcard inbox subscription, replies matched by the last subject
 * token. Unlike `nc.request` it allocates no Error objects (stack traces) per request, which is a large share of a
 * small request's cost; the wire is the same (a publish with a reply subject, one reply).
 *
 * It also watches the target exit notices of every lattice it sends to (`trellis.exit.v1.{lattice}.*`, ADR 0014)
 * and fails the pending requests addressed to a target that exited, at once.
 */
class RequestMux {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #sub: Subscription;
  readonly #pending = new Map<number, Pending>();
  readonly #exitSubs = new Map<string, Subscription>();
  #seq = 0;
  /**
   * One timer for all pending requests, armed for the earliest deadline it knows of (instead of a timer per request:
   * arming and clearing one per call was a measurable part of a call's cost). When it fires it fails the requests
   * whose deadline has passed and re-arms for the earliest remaining one.
   */
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  /** Whether the timer keeps the process alive: while requests are pending only (it is not cleared per reply). */
  #timerRef = false;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
    this.#prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
    this.#sub = nc.subscribe(`${this.#prefix}*`, {
      callback: (err, m) => {
        if (err) return;
        const id = Number(m.subject.slice(this.#prefix.length));
        const p = this.#pending.get(id);
        if (!p) return;
        this.#pending.delete(id);
        if (this.#pending.size === 0) this.#unref();
        if (m.data.length === 0 && m.headers?.code === 503) p.reject(new NoRespondersError(m.subject));
        else p.resolve(m);
      },
    });
    void nc.closed().then(() => {
      for (const p of this.#pending.values()) p.reject(new Error("connection closed"));
      this.#pending.clear();
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    });
  }

  /** Makes sure the shared timer fires by `deadline` and keeps the process alive meanwhile. */
  #arm(deadline: number): void {
    if (deadline < this.#timerAt) {
      clearTimeout(this.#timer);
      this.#timerAt = deadline;
      this.#timer = setTimeout(() => this.#expire(), Math.max(0, deadline - performance.now()));
      this.#timerRef = true;
    } else if (!this.#timerRef) {
      this.#timer?.ref();
      this.#timerRef = true;
    }
  }

  /** Nothing pending: the timer stays armed (cheaper than clearing it per reply) but no longer keeps the process alive. */
  #unref(): void {
    if (!this.#timerRef) return;
    this.#timer?.unref();
    this.#timerRef = false;
  }

  /** Fails the requests whose deadline has passed; re-arms for the earliest remaining one (none: no timer). */
  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [id, p] of this.#pending) {
      if (p.deadline <= now) {
        this.#pending.delete(id);
        p.reject(new NatsTimeoutError());
      } else if (p.deadline < next) {
        next = p.deadline;
      }
    }
    if (next !== Infinity) this.#arm(next);
    else this.#timerRef = false;
  }

  get closed(): boolean {
    return this.#sub.isClosed();
  }

  /** Subscribes to the exit notices of `lattice` (once; the SUB goes out before the request that needs it). */
  #watchExits(lattice: string): void {
    if (this.#exitSubs.has(lattice)) return;
    const sub = this.#nc.subscribe(targetExitWildcard(lattice), {
      callback: (err, m) => {
        if (err) return;
        const targetId = m.subject.slice(m.subject.lastIndexOf(".") + 1);
        const notice = parseTargetExit(targetId, m.data);
        const spared = new Set(notice.spared);
        for (const [id, p] of this.#pending) {
          if (p.to?.targetId !== targetId || p.to.lattice !== lattice || spared.has(`${this.#prefix}${id}`)) continue;
          this.#pending.delete(id);
          p.reject(new TargetExitedSignal(notice));
        }
        if (this.#pending.size === 0) this.#unref();
      },
    });
    this.#exitSubs.set(lattice, sub);
  }

  request(subject: string, data: Uint8Array, timeoutMs: number, headers?: MsgHdrs, to?: Addressee): Promise<Msg> {
    const id = ++this.#seq;
    if (to) this.#watchExits(to.lattice);
    return new Promise<Msg>((resolve, reject) => {
      const deadline = performance.now() + timeoutMs;
      this.#pending.set(id, { resolve, reject, deadline, to });
      try {
        // requests sent in one event-loop turn (an HTTP server's, a busy worker's) leave in one socket write (./cork.ts)
        corkUntilImmediate(this.#nc);
        this.#nc.publish(subject, data, headers ? { reply: `${this.#prefix}${id}`, headers } : { reply: `${this.#prefix}${id}` });
      } catch (err) {
        this.#pending.delete(id);
        if (this.#pending.size === 0) this.#unref();
        reject(err);
        return;
      }
      this.#arm(deadline);
    });
  }
}

const muxes = new WeakMap<NatsConnection, RequestMux>();
function mux(nc: NatsConnection): RequestMux {
  let m = muxes.get(nc);
  if (!m || m.closed) {
    m = new RequestMux(nc);
    muxes.set(nc, m);
  }
  return m;
}

/** Maps a nats.js request failure to a Trellis error naming the call. */
function natsFailure(err: unknown, call: CallOptions, timeoutMs: number): TrellisError {
  const details = { targetId: call.targetId, iface: stripVersion(call.iface), fn: call.fn };
  const cause = err instanceof RequestError ? (err.cause ?? err) : err;
  if (cause instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) {
    return new TrellisError(
      ErrorCode.NoResponders,
      `no responders for ${describeCall(call)} in lattice ${call.lattice}: nothing serves target ${call.targetId}`,
      { details },
    );
  }
  if (cause instanceof TargetExitedSignal) {
    const n = cause.notice;
    return new TrellisError(
      ErrorCode.TargetExited,
      `invocation of ${describeCall(call)} failed: target ${call.targetId} exited while the call was pending (${n.reason}${n.host_id ? ` on host ${n.host_id}` : ""}); the call may or may not have been carried out`,
      { details: { ...details, hostId: n.host_id, instanceId: n.instance_id } },
    );
  }
  if (cause instanceof NatsTimeoutError) {
    return new TimeoutError(`invocation of ${describeCall(call)} timed out after ${timeoutMs} ms`, timeoutMs, details);
  }
  return new TrellisError(ErrorCode.Lattice, `invocation of ${describeCall(call)} failed: ${(cause as Error)?.message ?? String(cause)}`, {
    details,
    cause,
  });
}

/** Parses the error payload of a reply (status 1). */
export function parseErrorPayload(payload: Uint8Array): TrellisError {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(payload));
  } catch {
    value = { code: ErrorCode.Internal, message: `unparseable error reply: ${utf8.decode(payload).slice(0, 200)}` };
  }
  return TrellisError.fromWire(value);
}

/**
 * Sends one invocation with already-encoded params and returns the encoded result.
 *
 * Bodies larger than one NATS message are sent and received in chunks (docs/protocol.md, "Large bodies").
 * @param json true to send `content-type: application/json` (params and result are then UTF-8 JSON).
 * @throws TrellisError with the target's error (its `code`, `message`, `details`), or `NO_RESPONDERS` when nothing
 *   serves the target, `TIMEOUT` after `call.timeoutMs`, `TARGET_EXITED` at once when the target's host announces that
 *   its process exited while the call was pending (ADR 0014), `PAYLOAD_TOO_LARGE` above {@link MAX_BODY_BYTES},
 *   `LATTICE_ERROR` when NATS fails.
 */
export async function invokeRaw(nc: NatsConnection, call: CallOptions, params: Uint8Array, json = false): Promise<Uint8Array> {
  const timeoutMs = call.timeoutMs ?? DEFAULT_INVOCATION_TIMEOUT_MS;
  if (params.length > MAX_BODY_BYTES) {
    throw new TrellisError(ErrorCode.PayloadTooLarge, `params of ${describeCall(call)} are ${params.length} bytes (limit ${MAX_BODY_BYTES})`);
  }
  const subject = invocationSubject(call.lattice, call.targetId, call.iface, call.fn);
  const chunk = chunkSize(nc.info?.max_payload);
  const deadline = Date.now() + timeoutMs;
  const remaining = () => {
    const left = deadline - Date.now();
    if (left <= 0) throw new TimeoutError(`invocation of ${describeCall(call)} timed out after ${timeoutMs} ms`, timeoutMs);
    return left;
  };
  let reply: Uint8Array;
  const m = mux(nc);
  const to: Addressee = { lattice: call.lattice, targetId: call.targetId };
  try {
    if (params.length <= chunk) {
      const msg = await m.request(subject, params, timeoutMs, buildHeaders(call, timeoutMs, json), to);
      reply = msg.data;
    } else {
      let msg = await m.request(subject, params.subarray(0, chunk), remaining(), buildHeaders(call, timeoutMs, json, params.length), to);
      let off = chunk;
      while (off < params.length) {
        if (msg.data[0] !== Status.Continue) break; // an error (or an early final answer) ends the upload
        const upload = utf8.decode(msg.data.subarray(1));
        const end = Math.min(params.length, off + chunk);
        msg = await m.request(upload, params.subarray(off, end), remaining(), undefined, to);
        off = end;
      }
      reply = msg.data;
    }
    return await readReply(m, call, reply, remaining, to);
  } catch (err) {
    if (err instanceof TrellisError) throw err;
    throw natsFailure(err, call, timeoutMs);
  }
}

async function readReply(m: RequestMux, call: CallOptions, reply: Uint8Array, remaining: () => number, to: Addressee): Promise<Uint8Array> {
  const status = reply[0];
  switch (status) {
    case Status.Ok:
      return reply.subarray(1);
    case Status.Error:
      throw parseErrorPayload(reply.subarray(1));
    case Status.More: {
      const r = new Reader(reply.subarray(1));
      const total = r.uleb(53);
      if (total > MAX_BODY_BYTES) throw new TrellisError(ErrorCode.PayloadTooLarge, `result of ${describeCall(call)} is ${total} bytes`);
      const subject = utf8.decode(r.bytes(r.uleb(16)));
      const out = new Uint8Array(total);
      let off = 0;
      const first = reply.subarray(1 + r.pos);
      out.set(first, 0);
      off += first.length;
      while (off < total) {
        const msg = await m.request(subject, EMPTY, remaining(), undefined, to);
        if (msg.data[0] !== Status.Ok) return readReply(m, call, msg.data, remaining, to);
        const part = msg.data.subarray(1);
        if (part.length === 0 || off + part.length > total) {
          throw new TrellisError(ErrorCode.Internal, `malformed chunked result from ${describeCall(call)}`);
        }
        out.set(part, off);
        off += part.length;
      }
      return out;
    }
    default:
      throw new TrellisError(ErrorCode.Internal, `reply from ${describeCall(call)} has unknown status byte ${String(status)}`);
  }
}

/**
 * Calls a function with typed arguments and returns its decoded result.
 * @param fn the function's type (params and result), e.g. from a component's imports or {@link t.func}.
 * @param res maps resource values to handles and back (see {@link ResourceMapper}).
 * @throws InvalidArgumentError when an argument does not fit its type; otherwise as {@link invokeRaw}.
 */
export async function invoke(
  nc: NatsConnection,
  call: CallOptions,
  fn: FuncType,
  args: readonly unknown[],
  res?: ResourceMapper,
): Promise<unknown> {
  const out = await invokeRaw(nc, call, encodeParams(fn, args, res));
  return decodeResult(fn, out, res);
}

/**
 * Calls a function with JSON arguments (an array in parameter order, or an object keyed by parameter name); the
 * target types them by its own WIT and answers JSON (docs/protocol.md, "JSON form").
 * @returns the result in JSON form (`null` when the function returns nothing).
 * @throws InvalidArgumentError from the target when the arguments do not fit; otherwise as {@link invokeRaw}.
 */
export async function invokeJson(nc: NatsConnection, call: CallOptions, args: unknown): Promise<unknown> {
  const out = await invokeRaw(nc, call, utf8enc.encode(JSON.stringify(args ?? [])), true);
  if (out.length === 0) return null;
  try {
    return JSON.parse(utf8.decode(out));
  } catch {
    throw new InvalidArgumentError("result", `result of ${describeCall(call)} is not JSON`);
  }
}

/**
 * Sends a fire-and-forget invocation (no reply expected), used for `[resource-drop]R` notifications
 * (docs/protocol.md, "Resources"). Never throws.
 */
export function notify(nc: NatsConnection, call: CallOptions, params: Uint8Array): void {
  try {
    nc.publish(invocationSubject(call.lattice, call.targetId, call.iface, call.fn), params, {
      headers: buildHeaders(call, call.timeoutMs ?? DEFAULT_INVOCATION_TIMEOUT_MS, false),
    });
  } catch {
    // closed connection: nothing to tell
  }
}
