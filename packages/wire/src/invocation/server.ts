/**
 * The serving side of the invocation protocol v1 (docs/protocol.md, "Invocation protocol v1"): subscribe to a
 * target's invocation subjects in its queue group, reassemble chunked requests, reply with the result or the one
 * error shape, and chunk large results.
 * @module
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { ErrorCode, NotFoundError, TrellisError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { invocationQueue, invocationWildcard, parseInvocationSubject, stripVersion } from "../core/subjects.ts";
import { decodeParams, encodeResult, Writer, type ResourceMapper } from "./codec.ts";
import { argsFromJson, resultToJson } from "./json.ts";
import { corkUntilImmediate } from "./cork.ts";
import { readRequestHeaders } from "./headers.ts";
import { chunkSize, HEADER_BODY_LENGTH, MAX_BODY_BYTES, Status } from "./protocol.ts";
import { formatFunc, type FuncType, type InterfaceType } from "./types.ts";
import { DEFAULT_IDLE_TIMEOUT_MS, type InvocationLimits, UploadBudget, type UploadBuffer } from "./uploads.ts";

/** One received invocation. */
export interface InvocationRequest {
  /** Target id from the subject. */
  targetId: string;
  /** Interface without version, e.g. `wasi:keyvalue/store`. */
  iface: string;
  /** Function name, e.g. `[method]bucket.get`. */
  fn: string;
  /** Header `source-id`, when the caller sent one. */
  sourceId: string | undefined;
  /** Header `link-name` (`default` when absent). */
  linkName: string;
  /** Header `trellis-timeout-ms`: the caller's time budget in milliseconds, when sent, cut to `maxCallTimeoutMs`. */
  timeoutMs: number | undefined;
  /** True for `content-type: application/json`: params are UTF-8 JSON and the result must be too. */
  json: boolean;
  /** All request headers. */
  headers: MsgHdrs | undefined;
  /** The encoded params (all chunks reassembled). */
  params: Uint8Array;
  /** False for a fire-and-forget notification (no reply subject): the return value is dropped. */
  expectsReply: boolean;
  /** The subject the reply will be published to (the last chunk's reply subject for a chunked request). */
  replySubject: string | undefined;
}

/**
 * Handles one invocation: returns the encoded result (JSON bytes when `req.json`), or throws. A thrown
 * {@link TrellisError} travels with its code; anything else becomes `INTERNAL`.
 */
export type InvocationHandler = (req: InvocationRequest) => Promise<Uint8Array> | Uint8Array;

/** Options of {@link serveInvocations}. */
export interface ServeOptions {
  lattice: string;
  /** The id served: subscribes to `trellis.inv.v1.{lattice}.{targetId}.>`. */
  targetId: string;
  handler: InvocationHandler;
  /**
   * Queue group; every instance of one target on every host must use the same one so that each call reaches one.
   * @default invocationQueue(lattice, targetId); `null` for no queue group (every subscriber gets every call).
   */
  queue?: string | null;
  /** Receives warnings about malformed messages and failed replies. */
  logger?: Logger;
  /** Limits on chunked uploads and timeouts (docs/protocol.md §7.1); ignored when `budget` is given. @default the defaults of {@link InvocationLimits} */
  limits?: InvocationLimits;
  /** Upload slots and bytes shared with other servers of this process. @default a budget of its own from `limits` */
  budget?: UploadBudget;
}

/** A running invocation server. */
export interface InvocationServer {
  /** Stops receiving invocations; in-flight handlers still reply. */
  stop(): void;
}

const utf8 = new TextDecoder();
const utf8enc = new TextEncoder();

/** Serializes an error as a status-1 reply: `0x01` + UTF-8 JSON `{ code, message, details? }`. */
export function errorReply(err: unknown): Uint8Array {
  const wire = TrellisError.from(err).toWire();
  const json = utf8enc.encode(JSON.stringify(wire));
  const out = new Uint8Array(json.length + 1);
  out[0] = Status.Error;
  out.set(json, 1);
  return out;
}

function okReply(result: Uint8Array): Uint8Array {
  const out = new Uint8Array(result.length + 1);
  out[0] = Status.Ok;
  out.set(result, 1);
  return out;
}

/**
 * Subscribes a target's invocation subjects and serves them with `opts.handler`.
 * Replies are sent with `msg.respond`; large results are offered in chunks (docs/protocol.md, "Large bodies").
 */
export function serveInvocations(nc: NatsConnection, opts: ServeOptions): InvocationServer {
  const { lattice, handler, logger } = opts;
  const queue = opts.queue === undefined ? invocationQueue(lattice, opts.targetId) : opts.queue;
  const inboxPrefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
  const chunk = () => chunkSize(nc.info?.max_payload);
  const budget = opts.budget ?? new UploadBudget(opts.limits);
  const idleFor = (req: InvocationRequest) => req.timeoutMs ?? Math.min(DEFAULT_IDLE_TIMEOUT_MS, budget.limits.maxCallTimeoutMs);

  const respond = (msg: Msg, body: Uint8Array) => {
    if (!msg.reply) return;
    try {
      // replies to calls served in one event-loop turn leave in one socket write (./cork.ts)
      corkUntilImmediate(nc);
      msg.respond(body);
    } catch (err) {
      logger?.warn("invocation reply failed", { subject: msg.subject, error: (err as Error).message });
    }
  };

  const finish = async (msg: Msg, req: InvocationRequest) => {
    let result: Uint8Array;
    try {
      result = await handler(req);
    } catch (err) {
      respond(msg, errorReply(err));
      return;
    }
    if (!req.expectsReply) return;
    const size = chunk();
    if (result.length + 1 <= size) {
      respond(msg, okReply(result));
      return;
    }
    if (result.length > MAX_BODY_BYTES) {
      respond(msg, errorReply(new TrellisError(ErrorCode.PayloadTooLarge, `result of ${req.iface}.${req.fn} is ${result.length} bytes (limit ${MAX_BODY_BYTES})`)));
      return;
    }
    offerChunks(msg, result, size, idleFor(req));
  };

  const offerChunks = (msg: Msg, result: Uint8Array, size: number, idleMs: number) => {
    const subject = createInbox(inboxPrefix);
    const w = new Writer(64);
    w.u8(Status.More);
    w.uleb(result.length);
    w.string(subject);
    const headLen = w.pos;
    const firstLen = Math.min(result.length, size - headLen);
    w.bytes(result.subarray(0, firstLen));
    let off = firstLen;
    let timer: NodeJS.Timeout | undefined;
    const sub = nc.subscribe(subject, {
      callback: (_e, m) => {
        const end = Math.min(result.length, off + size - 1);
        const part = new Uint8Array(end - off + 1);
        part[0] = Status.Ok;
        part.set(result.subarray(off, end), 1);
        off = end;
        respond(m, part);
        if (off >= result.length) done();
        else arm();
      },
    });
    const done = () => {
      clearTimeout(timer);
      sub.unsubscribe();
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, idleMs);
      timer.unref?.();
    };
    arm();
    respond(msg, w.finish());
  };

  /**
   * A chunked request (docs/protocol.md §7, §7.1): the body grows as chunks arrive, within the budget; the upload
   * is dropped when idle longer than the call's (capped) timeout or when that time has passed since its first chunk.
   */
  const startUpload = (msg: Msg, req: InvocationRequest, declared: string) => {
    if (!msg.reply) return; // a notification cannot be chunked: nobody would hear the CONTINUE
    const total = /^\d{1,16}$/.test(declared.trim()) ? Number(declared) : NaN;
    let up: UploadBuffer;
    try {
      if (!Number.isSafeInteger(total)) {
        throw new TrellisError(ErrorCode.InvalidArgument, `${HEADER_BODY_LENGTH} must be a decimal byte count, got ${JSON.stringify(declared.slice(0, 40))}`);
      }
      up = budget.open(total, MAX_BODY_BYTES);
      up.append(req.params);
    } catch (err) {
      respond(msg, errorReply(err));
      return;
    }
    if (up.complete) {
      void finish(msg, { ...req, params: up.take() });
      return;
    }
    const subject = createInbox(inboxPrefix);
    const cont = new Uint8Array(1 + utf8enc.encode(subject).length);
    cont[0] = Status.Continue;
    cont.set(utf8enc.encode(subject), 1);
    const idleMs = idleFor(req);
    let timer: NodeJS.Timeout | undefined;
    const end = () => {
      clearTimeout(timer);
      clearTimeout(deadline);
      sub.unsubscribe();
    };
    const drop = () => {
      end();
      up.drop();
    };
    const deadline = setTimeout(drop, req.timeoutMs ?? budget.limits.maxCallTimeoutMs);
    deadline.unref?.();
    const sub = nc.subscribe(subject, {
      callback: (_e, m) => {
        try {
          up.append(m.data);
        } catch (err) {
          end();
          respond(m, errorReply(err));
          return;
        }
        if (!up.complete) {
          arm();
          respond(m, cont);
          return;
        }
        end();
        void finish(m, { ...req, params: up.take(), replySubject: m.reply || undefined });
      },
    });
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(drop, idleMs);
      timer.unref?.();
    };
    arm();
    respond(msg, cont);
  };

  const sub: Subscription = nc.subscribe(invocationWildcard(lattice, opts.targetId), {
    ...(queue === null ? {} : { queue }),
    callback: (err, msg) => {
      if (err) {
        logger?.warn("invocation subscription error", { error: err.message });
        return;
      }
      const parsed = parseInvocationSubject(lattice, msg.subject);
      if (!parsed) {
        respond(msg, errorReply(new TrellisError(ErrorCode.InvalidArgument, `malformed invocation subject ${msg.subject}`)));
        return;
      }
      const h = msg.headers;
      const r = readRequestHeaders(h);
      const req: InvocationRequest = {
        targetId: parsed.targetId,
        iface: parsed.iface,
        fn: parsed.fn,
        sourceId: r.sourceId,
        linkName: r.linkName,
        timeoutMs: budget.capTimeout(r.timeout),
        json: r.json,
        headers: h,
        params: msg.data,
        expectsReply: Boolean(msg.reply),
        replySubject: msg.reply || undefined,
      };
      const bodyLength = r.bodyLength;
      if (bodyLength) startUpload(msg, req, bodyLength);
      else void finish(msg, req);
    },
  });
  return {
    stop: () => {
      sub.unsubscribe();
    },
  };
}

/** Implementation of one interface for {@link serveInterfaces}. */
export interface InterfaceImpl {
  /** The interface's type (name and function types). */
  type: InterfaceType;
  /**
   * One handler per function name; called with the decoded arguments followed by the request. Returns the result
   * value in the codec's JavaScript representation (see ./codec.ts), or a promise of it.
   */
  handlers: Record<string, (...args: any[]) => unknown>;
  /** Maps resource handles of this interface (default: handles are Uint8Arrays). */
  resources?: ResourceMapper;
}

/**
 * Interface token of **world-level** functions (a component's `export add: func(…)` / `import add: func(…)`, not in an
 * interface): `trellis.inv.v1.{lattice}.{target}.world.{function}` (docs/protocol.md §2). Real interface tokens always
 * contain `:` and `/`, so this one never collides with them.
 */
export const WORLD_IFACE = "world";
/**
 * Link key of world-level imports: a component's world-level import `add` is routed by a link with
 * `wit_namespace` {@link WORLD_LINK_NAMESPACE}, `wit_package` {@link WORLD_LINK_PACKAGE} and interface `add`.
 */
export const WORLD_LINK_NAMESPACE = "trellis";
/** See {@link WORLD_LINK_NAMESPACE}. */
export const WORLD_LINK_PACKAGE = "world";

/** Reserved interface every typed server answers: `describe() -> string` (JSON of the served {@link InterfaceType}s). */
export const INTROSPECT_IFACE = "trellis:runtime/introspect";
/** The one function of {@link INTROSPECT_IFACE}. */
export const INTROSPECT_FN = "describe";
/**
 * Second function of {@link INTROSPECT_IFACE}: `world() -> string`, JSON of a {@link WorldDescription} (what the target
 * imports and exports, world-level functions included). Used by `trellis inspect ID` and link checks.
 */
export const INTROSPECT_WORLD_FN = "world";
/** What `trellis:runtime/introspect.world` answers (JSON). Interfaces keyed by full name (with `@version`). */
export interface WorldDescription {
  imports: Record<string, InterfaceType>;
  exports: Record<string, InterfaceType>;
  /** World-level imported functions (not in an interface), by name. */
  importedFunctions: Record<string, FuncType>;
  /** World-level exported functions, by name. */
  exportedFunctions: Record<string, FuncType>;
  /** False when the target does not declare what it calls (providers): `imports` is then empty, not "none". */
  importsKnown?: boolean;
}
/** Type of {@link INTROSPECT_FN}. */
export const INTROSPECT_TYPE: FuncType = { params: [], result: { kind: "string" } };

/**
 * A handler that decodes arguments by the interfaces' WIT types, calls the matching function and encodes its result;
 * answers JSON-form calls too, and the introspection function {@link INTROSPECT_IFACE}.
 * @throws (to the caller) NOT_FOUND for an unknown interface or function, INVALID_ARGUMENT for undecodable params.
 */
export function typedHandler(targetId: string, impls: readonly InterfaceImpl[]): InvocationHandler {
  const byIface = new Map(impls.map((i) => [stripVersion(i.type.name), i]));
  const describe = JSON.stringify(impls.map((i) => i.type));
  const world = JSON.stringify({
    imports: {},
    exports: Object.fromEntries(impls.map((i) => [i.type.name, i.type])),
    importedFunctions: {},
    exportedFunctions: {},
    importsKnown: false,
  } satisfies WorldDescription);
  return async (req) => {
    if (req.iface === INTROSPECT_IFACE && (req.fn === INTROSPECT_FN || req.fn === INTROSPECT_WORLD_FN)) {
      const text = req.fn === INTROSPECT_FN ? describe : world;
      return req.json ? utf8enc.encode(JSON.stringify(text)) : encodeResult(INTROSPECT_TYPE, text);
    }
    const impl = byIface.get(req.iface);
    const fnType = impl?.type.functions[req.fn] ?? (impl ? dropType(req.fn) : undefined);
    const h = impl?.handlers[req.fn];
    if (!impl || !fnType || !h) {
      throw new NotFoundError(`${targetId} does not export ${req.iface}.${req.fn}`, { targetId, iface: req.iface, fn: req.fn });
    }
    const args = req.json ? argsFromJson(fnType, parseJsonParams(req.params), impl.resources) : decodeParams(fnType, req.params, impl.resources);
    const value = await h(...args, req);
    if (req.json) return utf8enc.encode(JSON.stringify(resultToJson(fnType, value, impl.resources)) ?? "null");
    return encodeResult(fnType, value, impl.resources);
  };
}

/** `[resource-drop]R` takes the handle being dropped: `func(self: own<R>)`. */
function dropType(fn: string): FuncType | undefined {
  if (!fn.startsWith(RESOURCE_DROP_PREFIX)) return undefined;
  return { params: [{ name: "self", type: { kind: "own", resource: fn.slice(RESOURCE_DROP_PREFIX.length) } }] };
}

/** Function-name prefix of resource drop notifications: `[resource-drop]bucket` (docs/protocol.md, "Resources"). */
export const RESOURCE_DROP_PREFIX = "[resource-drop]";

/**
 * The params of a JSON-mode invocation (`trellis-json: true`, docs/protocol.md): the UTF-8 text of a JSON array of
 * arguments; empty text is no arguments (`[]`).
 * @throws TrellisError `INVALID_ARGUMENT` when the text is not JSON.
 */
export function parseJsonParams(bytes: Uint8Array): unknown {
  const text = utf8.decode(bytes);
  if (text.trim() === "") return [];
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TrellisError(ErrorCode.InvalidArgument, `params are not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Serves typed interfaces as `targetId` (a provider, a test target): {@link serveInvocations} with a
 * {@link typedHandler}.
 * @example
 * serveInterfaces(nc, { lattice, targetId: "adder" }, [{
 *   type: { name: "docs:adder/add@0.1.0", resources: [], functions: { add: t.func([["x", t.u32], ["y", t.u32]], t.u32) } },
 *   handlers: { add: (x: number, y: number) => x + y },
 * }]);
 */
export function serveInterfaces(
  nc: NatsConnection,
  opts: Omit<ServeOptions, "handler">,
  impls: readonly InterfaceImpl[],
): InvocationServer {
  return serveInvocations(nc, { ...opts, handler: typedHandler(opts.targetId, impls) });
}

/** A short description of every function of an interface, for error messages and `trellis call`. */
export function describeInterface(iface: InterfaceType): string[] {
  return Object.entries(iface.functions).map(([name, f]) => `${iface.name}.${name}: ${formatFunc(f)}`);
}
