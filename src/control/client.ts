/**
 * The control interface client (reference §1): what the CLI, tests and users call to drive a lattice.
 *
 * Every method sends one control request and returns the reply's `response`; a reply with `success: false` becomes a
 * thrown {@link TrellisError} with the error's `code` (when the host sent one) and message. Protocol failures throw
 * `TIMEOUT` or `NO_RESPONDERS` errors.
 *
 * ```ts
 * const client = await CtlClient.connect({ natsUrl: "nats://127.0.0.1:4222", lattice: "default" });
 * await client.putLink({ source_id: "app", target: "kv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"] });
 * await client.close();
 * ```
 * @module
 */
import { errors as natsErrors, type NatsConnection } from "@nats-io/transport-node";
import { type NatsAuthOptions, connectNats, parseNatsAuth, resolveNatsConnection } from "../core/connection.ts";
import { ctl } from "../core/subjects.ts";
import type { CtlResponse } from "../core/envelope.ts";
import { ErrorCode, TimeoutError, TrellisError } from "../core/errors.ts";
import { validateId } from "../core/ids.ts";
import type { Link, LinkKey } from "../core/link.ts";
import type { HostInfo, HostInventory } from "../core/host.ts";

/** Default control request timeout: 2 s, as wasmCloud's client (reference §1.5). */
export const DEFAULT_CTL_TIMEOUT_MS = 2_000;

/** Options of {@link CtlClient.connect}. */
export interface CtlClientOptions {
  /** NATS URL(s), comma-separated. @default "nats://127.0.0.1:4222" */
  natsUrl?: string;
  /** An existing connection; the client then does not close it. */
  nc?: NatsConnection;
  /** Lattice name. @default "default" */
  lattice?: string;
  /** Timeout of each request, in milliseconds. @default 2000 */
  timeoutMs?: number;
  /** Credentials and TLS of the connection (docs/security.md, src/core/connection.ts). @default none (anonymous, plain TCP) */
  natsAuth?: NatsAuthOptions;
}

/** A link as sent to `link.put`: `name` and the config lists may be left out. */
export type LinkInput = Omit<Link, "name" | "source_config" | "target_config"> &
  Partial<Pick<Link, "name" | "source_config" | "target_config">> & {
    /** Trellis: refuse the link when its source does not import, or its target does not export, its interfaces. */
    strict?: boolean;
  };

/** Component scale request (reference §1.4 `ScaleComponentCommand`). */
export interface ScaleComponentRequest {
  component_ref: string;
  component_id: string;
  /** Max instances; 0 stops the component. */
  count: number;
  config?: string[];
  annotations?: Record<string, string>;
  allow_update?: boolean;
  /** Trellis: host directories given to the component (src/component/preopens.ts); refused unless the host allows them. */
  preopens?: { host_path: string; guest_path?: string; read_only?: boolean }[];
}

/** Provider start request (reference §1.4 `StartProviderCommand`). */
export interface StartProviderRequest {
  provider_id: string;
  provider_ref: string;
  config?: string[];
  annotations?: Record<string, string>;
}

/** A host's bid in `component.auction` (reference §1.4 `ComponentAuctionAck`). */
export interface ComponentAuctionAck {
  component_ref: string;
  component_id: string;
  host_id: string;
  constraints: Record<string, string>;
}

/** A host's bid in `provider.auction` (reference §1.4 `ProviderAuctionAck`). */
export interface ProviderAuctionAck {
  host_id: string;
  provider_ref: string;
  provider_id: string;
  constraints: Record<string, string>;
}

/** How long an auction collects bids. */
export interface AuctionOptions {
  /** Longest wait, in ms. @default the client's timeout (wasmCloud's client waits 5000) */
  waitMs?: number;
  /** Stop after this long without a new bid, in ms. @default 300 */
  stallMs?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A client of one lattice's control interface. */
export class CtlClient {
  readonly nc: NatsConnection;
  readonly lattice: string;
  readonly timeoutMs: number;
  readonly #owns: boolean;

  private constructor(nc: NatsConnection, lattice: string, timeoutMs: number, owns: boolean) {
    this.nc = nc;
    this.lattice = lattice;
    this.timeoutMs = timeoutMs;
    this.#owns = owns;
  }

  /**
   * Connects to NATS (unless `nc` is given), with `natsAuth` credentials and TLS.
   * @throws TrellisError `LATTICE_ERROR` when NATS cannot be reached or refuses the credentials (no secret in the
   *   message); InvalidArgumentError for a bad lattice name or bad / unreadable `natsAuth`.
   */
  static async connect(opts: CtlClientOptions = {}): Promise<CtlClient> {
    const lattice = validateId("lattice", opts.lattice ?? "default");
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CTL_TIMEOUT_MS;
    if (opts.nc) return new CtlClient(opts.nc, lattice, timeoutMs, false);
    const data = await resolveNatsConnection(opts.natsUrl ?? "nats://127.0.0.1:4222", parseNatsAuth(opts.natsAuth));
    const nc = await connectNats(data, { name: "trellis-ctl", timeout: timeoutMs });
    return new CtlClient(nc, lattice, timeoutMs, true);
  }

  /**
   * Sends one control request and returns the whole envelope (success or not).
   * @param body a value to send as JSON, raw bytes, or nothing (empty body).
   * @throws TimeoutError after `timeoutMs`; TrellisError `NO_RESPONDERS` when no host serves the subject.
   */
  async request<T = unknown>(subject: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<CtlResponse<T>> {
    const payload =
      body === undefined ? new Uint8Array() : body instanceof Uint8Array ? body : encoder.encode(JSON.stringify(body));
    try {
      const msg = await this.nc.request(subject, payload, { timeout: timeoutMs });
      return JSON.parse(decoder.decode(msg.data)) as CtlResponse<T>;
    } catch (err) {
      throw mapRequestError(err, subject, timeoutMs);
    }
  }

  /** Like {@link request} but returns `response` and throws the envelope's error when `success` is false. */
  async call<T = unknown>(subject: string, body?: unknown, timeoutMs?: number): Promise<{ message: string; response: T | undefined }> {
    const r = await this.request<T>(subject, body, timeoutMs);
    if (!r.success) throw new TrellisError(r.error?.code ?? ErrorCode.Application, r.message, r.error?.details ? { details: r.error.details } : undefined);
    return { message: r.message, response: r.response };
  }

  /**
   * Every host of the lattice (`host.ping`, scatter-gather): collects replies until none came for `stallMs` or
   * `waitMs` passed.
   * @param waitMs longest wait, in milliseconds. @default the client's timeout
   * @param stallMs stop after this long without a new reply, in milliseconds. @default 300
   */
  async getHosts(waitMs = this.timeoutMs, stallMs = 300): Promise<HostInfo[]> {
    const hosts: HostInfo[] = [];
    try {
      const it = await this.nc.requestMany(ctl.hostPing(this.lattice), new Uint8Array(), {
        strategy: "stall",
        stall: stallMs,
        maxWait: waitMs,
      });
      for await (const m of it) {
        try {
          const r = JSON.parse(decoder.decode(m.data)) as CtlResponse<HostInfo>;
          if (r.success && r.response) hosts.push(r.response);
        } catch {
          // a malformed reply is not a host
        }
      }
    } catch (err) {
      const e = mapRequestError(err, ctl.hostPing(this.lattice), waitMs);
      if (e.code !== ErrorCode.NoResponders) throw e;
    }
    return hosts.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * `component.auction` (scatter-gather): the bids of every host whose labels match every constraint and that does
   * not run `component_id` yet. Hosts that do not bid stay silent; an empty array means no host matched.
   * @throws TrellisError with the hosts' error code when they reject the request (e.g. a bad `component_id`).
   */
  async auctionComponent(
    req: { component_ref: string; component_id: string; constraints?: Record<string, string> },
    opts: AuctionOptions = {},
  ): Promise<ComponentAuctionAck[]> {
    const body = { component_ref: req.component_ref, component_id: validateId("component_id", req.component_id), constraints: req.constraints ?? {} };
    return this.#gather<ComponentAuctionAck>(ctl.componentAuction(this.lattice), body, opts);
  }

  /**
   * `provider.auction` (scatter-gather): the bids of every host whose labels match every constraint and that does not
   * run `provider_id` yet; an empty array means no host matched.
   * @throws TrellisError with the hosts' error code when they reject the request.
   */
  async auctionProvider(
    req: { provider_ref: string; provider_id: string; constraints?: Record<string, string> },
    opts: AuctionOptions = {},
  ): Promise<ProviderAuctionAck[]> {
    const body = { provider_ref: req.provider_ref, provider_id: validateId("provider_id", req.provider_id), constraints: req.constraints ?? {} };
    return this.#gather<ProviderAuctionAck>(ctl.providerAuction(this.lattice), body, opts);
  }

  async #gather<T>(subject: string, body: unknown, opts: AuctionOptions): Promise<T[]> {
    const waitMs = opts.waitMs ?? this.timeoutMs;
    const out: T[] = [];
    let failure: TrellisError | undefined;
    try {
      const it = await this.nc.requestMany(subject, encoder.encode(JSON.stringify(body)), {
        strategy: "stall",
        stall: opts.stallMs ?? 300,
        maxWait: waitMs,
      });
      for await (const m of it) {
        let r: CtlResponse<T>;
        try {
          r = JSON.parse(decoder.decode(m.data)) as CtlResponse<T>;
        } catch {
          continue;
        }
        if (r.success && r.response !== undefined) out.push(r.response);
        else if (!r.success) {
          failure ??= new TrellisError(r.error?.code ?? ErrorCode.Application, r.message, r.error?.details ? { details: r.error.details } : undefined);
        }
      }
    } catch (err) {
      const e = mapRequestError(err, subject, waitMs);
      if (e.code !== ErrorCode.NoResponders) throw e;
    }
    if (out.length === 0 && failure) throw failure;
    return out;
  }

  /** `host.get.{host}`: the host's inventory. */
  async getInventory(hostId: string): Promise<HostInventory> {
    return must(await this.call<HostInventory>(ctl.hostGet(this.lattice, validateId("host_id", hostId))), "inventory");
  }

  /** `host.stop.{host}`; `timeoutMs` bounds the host's shutdown. */
  async stopHost(hostId: string, timeoutMs?: number): Promise<string> {
    const id = validateId("host_id", hostId);
    return (await this.call(ctl.hostStop(this.lattice, id), timeoutMs === undefined ? { host_id: id } : { host_id: id, timeout: timeoutMs })).message;
  }

  /** `label.put.{host}`. */
  async putLabel(hostId: string, key: string, value: string): Promise<string> {
    return (await this.call(ctl.labelPut(this.lattice, validateId("host_id", hostId)), { key, value })).message;
  }

  /** `label.del.{host}`. */
  async deleteLabel(hostId: string, key: string): Promise<string> {
    return (await this.call(ctl.labelDel(this.lattice, validateId("host_id", hostId)), { key })).message;
  }

  /** `link.put` (reference §2.3 with the immutability rule). */
  async putLink(link: LinkInput): Promise<string> {
    return (await this.call(ctl.linkPut(this.lattice), link)).message;
  }

  /** `link.del`: every link with the key, narrowed by `target` when given (reference §2.4). */
  async deleteLink(key: Omit<LinkKey, "name"> & { name?: string; target?: string }): Promise<string> {
    return (await this.call(ctl.linkDel(this.lattice), key)).message;
  }

  /** `link.replace` (Trellis): delete the links with `del`'s key and put `link`, as one KV update. */
  async replaceLink(del: Omit<LinkKey, "name"> & { name?: string; target?: string }, link: LinkInput): Promise<string> {
    return (await this.call(ctl.linkReplace(this.lattice), { delete: del, link })).message;
  }

  /** `link.get`: every link in the lattice. */
  async getLinks(): Promise<Link[]> {
    return (await this.call<Link[]>(ctl.linkGet(this.lattice))).response ?? [];
  }

  /** `claims.get` (reference §1.4): the stored claims of every signed component and provider seen by the lattice. */
  async getClaims(): Promise<Record<string, string>[]> {
    return (await this.call<Record<string, string>[]>(ctl.claimsGet(this.lattice))).response ?? [];
  }

  /** `config.put.{name}`. */
  async putConfig(name: string, values: Record<string, string>): Promise<string> {
    return (await this.call(ctl.configPut(this.lattice, validateId("config name", name)), values)).message;
  }

  /** `config.get.{name}`: the config, or undefined when it does not exist. */
  async getConfig(name: string): Promise<Record<string, string> | undefined> {
    return (await this.call<Record<string, string>>(ctl.configGet(this.lattice, validateId("config name", name)))).response;
  }

  /** `config.del.{name}`. */
  async deleteConfig(name: string): Promise<string> {
    return (await this.call(ctl.configDel(this.lattice, validateId("config name", name)))).message;
  }

  /** `component.scale.{host}`: acknowledged before the component starts; watch `component_scaled` events. */
  async scaleComponent(hostId: string, req: ScaleComponentRequest): Promise<string> {
    return (await this.call(ctl.componentScale(this.lattice, validateId("host_id", hostId)), { host_id: hostId, ...req })).message;
  }

  /** `component.update.{host}`. */
  async updateComponent(hostId: string, componentId: string, newRef: string): Promise<string> {
    return (
      await this.call(ctl.componentUpdate(this.lattice, validateId("host_id", hostId)), {
        host_id: hostId,
        component_id: componentId,
        new_component_ref: newRef,
      })
    ).message;
  }

  /** `provider.start.{host}`: acknowledged before the process starts; watch `provider_started` events. */
  async startProvider(hostId: string, req: StartProviderRequest): Promise<string> {
    return (await this.call(ctl.providerStart(this.lattice, validateId("host_id", hostId)), { host_id: hostId, ...req })).message;
  }

  /** `provider.stop.{host}`. */
  async stopProvider(hostId: string, providerId: string): Promise<string> {
    return (await this.call(ctl.providerStop(this.lattice, validateId("host_id", hostId)), { host_id: hostId, provider_id: providerId })).message;
  }

  /** Closes the connection if the client opened it. */
  async close(): Promise<void> {
    if (this.#owns) await this.nc.close();
  }

  /** `await using client = await CtlClient.connect()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function must<T>(r: { response: T | undefined }, what: string): T {
  if (r.response === undefined) throw new TrellisError(ErrorCode.Internal, `the reply carried no ${what}`);
  return r.response;
}

/** Maps a nats.js request failure to a Trellis error. */
export function mapRequestError(err: unknown, subject: string, timeoutMs: number): TrellisError {
  if (err instanceof TrellisError) return err;
  if (err instanceof natsErrors.NoRespondersError || (err instanceof natsErrors.RequestError && err.isNoResponders())) {
    return new TrellisError(ErrorCode.NoResponders, `no host answered ${subject} (is a host running on this lattice?)`, {
      details: { subject },
    });
  }
  if (err instanceof natsErrors.TimeoutError || (err instanceof natsErrors.RequestError && /timeout/i.test(err.message))) {
    return new TimeoutError(`no reply to ${subject} within ${timeoutMs} ms`, timeoutMs, { subject });
  }
  if (err instanceof natsErrors.PermissionViolationError || /permissions violation/i.test((err as Error).message ?? "")) {
    return new TrellisError(ErrorCode.NatsPermissionDenied, `the NATS server refused ${subject} for this user: ${(err as Error).message}`, {
      cause: err,
      details: { subject },
    });
  }
  return new TrellisError(ErrorCode.Lattice, `request ${subject} failed: ${(err as Error).message ?? String(err)}`, { cause: err });
}
