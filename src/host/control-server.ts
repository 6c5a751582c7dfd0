/**
 * The host side of the control interface v1: subscriptions, queue groups and dispatch (reference §1.1–§1.4).
 * Every request that carries a reply subject gets exactly one `{ success, message, response? }` reply, whatever it
 * holds; a handler's failure never escapes this module.
 * @module
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { ctlCatchAllSubscriptions, ctlSubscriptions, isServedCtlSubject, parseCtlSubject } from "../core/subjects.ts";
import { type CtlResponse, fail } from "../core/envelope.ts";
import { ErrorCode, InvalidArgumentError, TrellisError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";

/**
 * A handler for one (noun, verb); `arg` is the token after the verb (a host id or a config name). It returns
 * `undefined` only for a scatter-gather request this host stays silent on (an auction it does not bid in,
 * reference §1.3); every other request gets the returned envelope.
 */
export type CtlHandler = (
  payload: Uint8Array,
  arg: string | undefined,
) => Promise<CtlResponse | undefined> | CtlResponse | undefined;

/** Handlers by `noun.verb` (e.g. `link.put`, `host.get`). */
export type CtlRoutes = Record<string, CtlHandler>;

const decoder = new TextDecoder();

/**
 * Parses a request body as JSON.
 * @param required when false, an empty body reads as `{}`.
 * @throws InvalidArgumentError (`request`) for an empty required body or invalid JSON.
 */
export function parseJsonBody(payload: Uint8Array, what: string, required = true): unknown {
  if (payload.length === 0) {
    if (!required) return {};
    throw new InvalidArgumentError("request", `${what}: the request body is empty; a JSON object is required`);
  }
  const text = decoder.decode(payload);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidArgumentError("request", `${what}: the request body is not valid JSON (${(err as Error).message})`);
  }
}

/**
 * Parses a body that must be a JSON object (an empty body reads as `{}` when not `required`).
 * @throws InvalidArgumentError (`request`) when it is not a JSON object.
 */
export function parseObjectBody(payload: Uint8Array, what: string, required = true): Record<string, unknown> {
  const v = parseJsonBody(payload, what, required);
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new InvalidArgumentError("request", `${what}: the request body must be a JSON object, got ${Array.isArray(v) ? "an array" : v === null ? "null" : typeof v}`);
  }
  return v as Record<string, unknown>;
}

/** Serves the control interface of one host. */
export class ControlServer {
  readonly #nc: NatsConnection;
  readonly #lattice: string;
  readonly #hostId: string;
  readonly #routes: CtlRoutes;
  readonly #maxPayload: number;
  readonly #logger: Logger;
  #subs: Subscription[] = [];
  #inflight = new Set<Promise<void>>();

  constructor(opts: {
    nc: NatsConnection;
    lattice: string;
    hostId: string;
    routes: CtlRoutes;
    /** Largest request body accepted, in bytes. */
    maxPayloadBytes: number;
    logger: Logger;
  }) {
    this.#nc = opts.nc;
    this.#lattice = opts.lattice;
    this.#hostId = opts.hostId;
    this.#routes = opts.routes;
    this.#maxPayload = opts.maxPayloadBytes;
    this.#logger = opts.logger;
  }

  /**
   * Subscribes to every control subject of reference §1.2, and to the catch-all subjects through which a subject no
   * host serves gets "unsupported subject" at once ({@link ctlCatchAllSubscriptions}); waits until the server has them.
   */
  async start(): Promise<void> {
    const subs = [
      ...ctlSubscriptions(this.#lattice, this.#hostId).map((s) => ({ ...s, catchAll: false })),
      ...ctlCatchAllSubscriptions(this.#lattice).map((s) => ({ ...s, catchAll: true })),
    ];
    for (const { subject, queue, catchAll } of subs) {
      const sub = this.#nc.subscribe(subject, {
        ...(queue ? { queue } : {}),
        callback: (err, msg) => {
          if (err) {
            this.#logger.warn("control subscription error", { subject, error: err.message });
            return;
          }
          // A served subject reaching a catch-all subscription is answered by the subscription that serves it.
          if (catchAll && isServedCtlSubject(this.#lattice, msg.subject)) return;
          const p = catchAll ? this.#reply(msg, unsupported(msg.subject)) : this.#handle(msg);
          this.#inflight.add(p);
          void p.finally(() => this.#inflight.delete(p));
        },
      });
      this.#subs.push(sub);
    }
    await this.#nc.flush();
  }

  async #handle(msg: Msg): Promise<void> {
    let resp: CtlResponse | undefined;
    try {
      resp = await this.#dispatch(msg);
    } catch (err) {
      const e = TrellisError.from(err);
      if (e.code === ErrorCode.Internal || e.code === ErrorCode.Lattice) {
        this.#logger.error("control request failed", { subject: msg.subject, error: e.message });
      } else {
        this.#logger.debug("control request rejected", { subject: msg.subject, code: e.code, error: e.message });
      }
      resp = fail(e);
    }
    if (resp === undefined) return;
    await this.#reply(msg, resp);
  }

  async #reply(msg: Msg, resp: CtlResponse): Promise<void> {
    if (!msg.reply) return;
    try {
      msg.respond(JSON.stringify(resp));
    } catch (err) {
      this.#logger.warn("cannot send control reply", { subject: msg.subject, error: String(err) });
      try {
        msg.respond(JSON.stringify(fail(new TrellisError(ErrorCode.PayloadTooLarge, `reply too large: ${String(err)}`))));
      } catch {
        // nothing more can be done for this request
      }
    }
  }

  async #dispatch(msg: Msg): Promise<CtlResponse | undefined> {
    if (msg.data.length > this.#maxPayload) {
      throw new TrellisError(
        ErrorCode.PayloadTooLarge,
        `request body of ${msg.data.length} bytes exceeds this host's limit of ${this.#maxPayload} bytes`,
        { details: { size: msg.data.length, limit: this.#maxPayload } },
      );
    }
    const parsed = parseCtlSubject(this.#lattice, msg.subject);
    if (!parsed || parsed.extra || parsed.verb === undefined) return unsupported(msg.subject);
    const handler = this.#routes[`${parsed.noun}.${parsed.verb}`];
    if (!handler) return unsupported(msg.subject);
    return handler(msg.data, parsed.arg);
  }

  /** Unsubscribes, then waits for requests in progress to be answered. */
  async stop(): Promise<void> {
    for (const s of this.#subs) s.unsubscribe();
    this.#subs = [];
    await Promise.allSettled([...this.#inflight]);
  }
}

/** The reply to a subject Trellis does not implement (docs/control-interface.md): `INVALID_ARGUMENT` with the subject. */
function unsupported(subject: string): CtlResponse {
  return fail(new TrellisError(ErrorCode.InvalidArgument, "unsupported subject", { details: { subject } }));
}
