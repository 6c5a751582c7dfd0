/**
 * wadm's API on NATS: `wadm.api.{lattice}.model.{get|put|versions|del|deploy|undeploy|status}[.{name}]`
 * (wasmCloud/wadm@589e98b3 `crates/wadm/src/server/mod.rs`), served by every Trellis host of the lattice on one
 * queue group, so exactly one host answers each request. Every request gets a reply: a malformed subject, body or
 * manifest gets wadm's `{ "result": "error", "message": … }`. docs/apps.md "wadm API"; ADR 0013.
 * @module
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { CtlClient } from "../../control/client.ts";
import { TrellisError } from "../../core/errors.ts";
import { type Logger, silentLogger } from "../../core/logger.ts";
import { wadmApi, wadmApiRoot } from "../../core/subjects.ts";
import { WadmApi, errorReply, parseVersionBody } from "./api.ts";
import type { WadmReply } from "./types.ts";

/** Options of {@link WadmServer}. */
export interface WadmServerOptions {
  /** Control client on the lattice to serve (its connection is used for the subscription too). */
  client: CtlClient;
  /** Largest request accepted, in bytes; larger ones get an error reply. @default 1048576 */
  maxPayloadBytes?: number;
  /** Structured logger. @default silent */
  logger?: Logger;
}

/** Default largest wadm API request: 1 MiB (a manifest). */
export const DEFAULT_WADM_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** A parsed wadm API subject (after `wadm.api.{lattice}.`). */
export interface ParsedWadmSubject {
  category: string;
  operation: string;
  name: string | undefined;
}

/**
 * Splits a wadm API subject as wadm's `parse_subject` does.
 * @throws Error with wadm's message ("Expected to find operation", "Found extra components of subject, …").
 */
export function parseWadmSubject(lattice: string, subject: string): ParsedWadmSubject {
  const root = `${wadmApiRoot(lattice)}.`;
  if (!subject.startsWith(root)) throw new Error("Expected to find lattice ID");
  const parts = subject.slice(root.length).split(".");
  const [category, operation, name] = parts;
  if (!category) throw new Error("Expected to find API category");
  if (!operation) throw new Error("Expected to find operation");
  if (parts.length > 3) {
    throw new Error("Found extra components of subject, ensure your manifest name consists of only alphanumeric characters, dashes, and underscores.");
  }
  return { category, operation, name: name || undefined };
}

/** The wadm API server of one host. */
export class WadmServer {
  readonly #client: CtlClient;
  readonly #nc: NatsConnection;
  readonly #maxPayload: number;
  readonly #logger: Logger;
  #api: WadmApi | undefined;
  #sub: Subscription | undefined;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(opts: WadmServerOptions) {
    this.#client = opts.client;
    this.#nc = opts.client.nc;
    this.#maxPayload = opts.maxPayloadBytes ?? DEFAULT_WADM_MAX_PAYLOAD_BYTES;
    this.#logger = (opts.logger ?? silentLogger).child({ component: "wadm" });
  }

  /** The operations behind the server (for tests: {@link WadmApi.idle}). Undefined before {@link start}. */
  get api(): WadmApi | undefined {
    return this.#api;
  }

  /**
   * Opens the stores and subscribes to `wadm.api.{lattice}.>` on the lattice's queue group.
   * @throws TrellisError `LATTICE_ERROR` when JetStream is unavailable.
   */
  async start(): Promise<void> {
    this.#api = await WadmApi.open(this.#client, { logger: this.#logger });
    const lattice = this.#client.lattice;
    this.#sub = this.#nc.subscribe(wadmApi.wildcard(lattice), {
      queue: wadmApi.queue(lattice),
      callback: (_err, msg) => {
        const p = this.#handle(msg);
        this.#inFlight.add(p);
        void p.finally(() => this.#inFlight.delete(p));
      },
    });
    await this.#nc.flush();
  }

  async #handle(msg: Msg): Promise<void> {
    let reply: WadmReply;
    try {
      reply = await this.#dispatch(msg);
    } catch (err) {
      const e = TrellisError.from(err);
      this.#logger.warn("wadm API request failed", { subject: msg.subject, code: e.code, error: e.message });
      reply = errorReply(e.message);
    }
    if (!msg.reply) return;
    try {
      msg.respond(JSON.stringify(reply));
    } catch (err) {
      this.#logger.debug("wadm API reply not sent", { subject: msg.subject, error: String(err) });
    }
  }

  async #dispatch(msg: Msg): Promise<WadmReply> {
    const api = this.#api;
    if (!api) return errorReply("the wadm API is not started");
    let p: ParsedWadmSubject;
    try {
      p = parseWadmSubject(this.#client.lattice, msg.subject);
    } catch (err) {
      return errorReply(`Invalid subject: ${(err as Error).message}`);
    }
    if (msg.data.length > this.#maxPayload) return errorReply(`request of ${msg.data.length} bytes is larger than the ${this.#maxPayload} bytes allowed`);
    const unsupported = () => errorReply(`Unsupported subject: ${msg.subject}`);
    if (p.category !== "model") return unsupported();
    const body = (what: string): { version?: string } | ErrorLike => {
      try {
        return parseVersionBody(msg.data);
      } catch (err) {
        return { error: errorReply(`Unable to parse ${what} application request: ${(err as Error).message}`) };
      }
    };
    const name = p.name;
    switch (p.operation) {
      case "put":
        if (name !== undefined) return unsupported();
        return api.put(msg.data, msg.headers?.get("Content-Type") || undefined);
      case "get": {
        if (name === undefined) return api.list();
        const b = body("get");
        return "error" in b ? b.error : api.get(name, b.version);
      }
      case "list":
        // wadm's deprecated `model.list` answers a bare array; Trellis answers the `model.get` shape.
        return name === undefined ? api.list() : unsupported();
      case "versions":
        return name === undefined ? unsupported() : api.versions(name);
      case "status":
        return name === undefined ? unsupported() : api.status(name);
      case "deploy": {
        if (name === undefined) return unsupported();
        const b = body("deploy");
        return "error" in b ? b.error : api.deploy(name, b.version);
      }
      case "undeploy": {
        if (name === undefined) return unsupported();
        const b = body("undeploy");
        return "error" in b ? b.error : api.undeploy(name);
      }
      case "del": {
        if (name === undefined) return unsupported();
        const b = body("delete");
        return "error" in b ? b.error : api.del(name, b.version);
      }
      case "history":
        return errorReply("Model deployment history is not currently supported. It may be added in a future version");
      default:
        return unsupported();
    }
  }

  /**
   * Unsubscribes, then waits for requests being answered and the deploys / undeploys they started, at most
   * `timeoutMs` (what is still running then goes on in the background and may fail once the host is gone).
   * @param timeoutMs longest wait, in milliseconds. @default 5000
   */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    const done = (async () => {
      await Promise.allSettled([...this.#inFlight]);
      await this.#api?.idle();
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}

interface ErrorLike {
  error: ReturnType<typeof errorReply>;
}
