/**
 * The provider runtime: connects, subscribes to the provider contract subjects (reference §4.3, docs/protocol.md
 * "Provider contract"), delivers links and config to the hooks one at a time, answers health and shutdown, and
 * serves the provider's typed exports over the invocation protocol.
 *
 * ```ts
 * import { runProvider } from "trellis/provider-sdk";
 * await runProvider({
 *   linkPutAsTarget: (link) => new Map<string, Uint8Array>(),   // one store per (source id, link name)
 *   exports: [myStoreExport],
 * });
 * ```
 * @module
 */
import { connect, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { CtlResponse } from "../../wire/src/core/envelope.ts";
import { ErrorCode, TrellisError } from "../../wire/src/core/errors.ts";
import type { InterfaceLinkDefinition, Link } from "../../wire/src/core/link.ts";
import { createLogger, type Logger, type LogLevel } from "../../wire/src/core/logger.ts";
import { ctl, providerInstanceLinkPut, providerRpc } from "../../wire/src/core/subjects.ts";
import {
  invoke,
  invokeJson,
  resolveInvocationLimits,
  serveInterfaces,
  type CallOptions,
  type InterfaceImpl,
  type InvocationLimits,
  type InvocationServer,
} from "../../wire/src/invocation/index.ts";
import { type HostData, linkIdentity, parseInterfaceLinkDefinition } from "../../wire/src/provider/host-data.ts";
import { LinkTable } from "./links.ts";
import { providerConnectionOptions, redactConnectionSecrets, redactUrl } from "./connection.ts";
import { hostDataSecrets, SecretOpener } from "./secrets.ts";
import { readHostData, remoteHostData, remoteSettings, type RemoteSettings } from "./startup.ts";
import { Tracer } from "./trace.ts";
import { ProviderTracing, tracingSettings } from "./tracing.ts";
import type { CallContext, HealthStatus, ProviderContext, ProviderDefinition, ProviderLink, ProviderMode } from "./types.ts";

/** Options of {@link runProvider}. */
export interface RunOptions {
  /** Command-line arguments read for remote mode. @default process.argv.slice(2) */
  argv?: readonly string[];
  /** Environment read for remote mode. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Where host data is read from in spawned mode. @default process.stdin */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Remote settings given in code; they win over flags and environment and select remote mode. */
  remote?: Partial<RemoteSettings> & { providerId: string };
  /** Exit the process after shutdown. @default true */
  exitOnShutdown?: boolean;
  /** Shut down on SIGTERM and SIGINT. @default the value of `exitOnShutdown` */
  handleSignals?: boolean;
  /** Shut down when the parent (the host) exits; spawned mode only. @default true */
  watchParent?: boolean;
  /** Logger. @default JSON lines on stderr at the host data's `log_level` */
  logger?: Logger;
  /**
   * Limits the provider's exports apply to callers (docs/protocol.md §7.1): concurrent chunked uploads, bytes buffered
   * for them, longest `trellis-timeout-ms` honoured. Over-limit callers get `TOO_MANY_UPLOADS`, `UPLOAD_BUFFER_FULL`
   * or `PAYLOAD_TOO_LARGE` at once. @default 16 uploads, 128 MiB, 60000 ms
   * @throws InvalidArgumentError (from {@link runProvider}) naming a bad field.
   */
  invocationLimits?: InvocationLimits;
}

/** A running provider. */
export interface RunningProvider<R = unknown> {
  readonly ctx: ProviderContext<R>;
  /** Resolves once the provider has shut down. */
  readonly stopped: Promise<void>;
  /** Shuts down: shutdown hook, resources released, connection drained (then exits, if so configured). */
  shutdown(reason?: string): Promise<void>;
  /** Resolves once every link and config message received so far has been handled. */
  idle(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const IDLE_WAIT_FOR_LINK_MS = 1_000;

/**
 * Starts a provider: spawned mode (host data on stdin) unless `--provider-id` / `TRELLIS_PROVIDER_ID` /
 * `opts.remote` selects remote mode (docs/protocol.md "Remote providers").
 * @returns once subscribed, initialized and serving; links from host data (or `link.get`) are delivered in order.
 * @throws InvalidArgumentError for missing or bad host data or settings; TrellisError `LATTICE_ERROR` when NATS
 *   cannot be reached.
 */
export async function runProvider<R = unknown>(def: ProviderDefinition<R>, opts: RunOptions = {}): Promise<RunningProvider<R>> {
  const env = opts.env ?? process.env;
  resolveInvocationLimits(opts.invocationLimits, "invocationLimits."); // bad limits fail here, before connecting
  const fromFlags = opts.remote ? undefined : remoteSettings(opts.argv ?? process.argv.slice(2), env);
  const remote: RemoteSettings | undefined = opts.remote
    ? { natsUrl: "nats://127.0.0.1:4222", lattice: "default", configNames: [], logLevel: "info", ...opts.remote }
    : fromFlags;
  const hostData = remote ? remoteHostData(remote, 2000) : await readHostData(opts.stdin ?? process.stdin);
  const mode: ProviderMode = remote ? "remote" : "spawned";
  const level = (["trace", "debug", "info", "warn", "error"].includes(hostData.log_level) ? hostData.log_level : "info") as LogLevel;
  const logger = (opts.logger ?? createLogger({ level, json: hostData.structured_logging })).child({
    provider_id: hostData.provider_key,
    ...(def.name ? { provider: def.name } : {}),
  });
  let nc: NatsConnection;
  try {
    nc = await connect(providerConnectionOptions(hostData, { name: `trellis-provider-${hostData.provider_key}`, maxReconnectAttempts: -1 }));
  } catch (err) {
    const why = redactConnectionSecrets((err as Error).message, hostData);
    throw new TrellisError(ErrorCode.Lattice, `provider ${hostData.provider_key} cannot connect to NATS at ${redactUrl(hostData.lattice_rpc_url)}: ${why}`, { cause: err });
  }
  const rt = new ProviderRuntime<R>(def, hostData, mode, nc, logger, opts);
  await rt.start(remote);
  return rt.handle();
}

class ProviderRuntime<R> {
  readonly #def: ProviderDefinition<R>;
  readonly #hd: HostData;
  readonly #mode: ProviderMode;
  readonly #nc: NatsConnection;
  readonly #logger: Logger;
  readonly #opts: RunOptions;
  readonly #table: LinkTable<R>;
  readonly #tracer: Tracer;
  readonly #tracing: ProviderTracing;
  readonly #ctx: ProviderContext<R>;
  readonly #subs: Subscription[] = [];
  readonly #opener: SecretOpener | undefined;
  #config: Record<string, string>;
  #queue: Promise<void> = Promise.resolve();
  #server: InvocationServer | undefined;
  #shutdown: Promise<void> | undefined;
  #resolveStopped!: () => void;
  readonly #stopped = new Promise<void>((r) => (this.#resolveStopped = r));
  /** Identities that live link messages touched during the initial `link.get` load of a remote provider. */
  #liveSeen: Set<string> | undefined;
  #parentWatch: NodeJS.Timeout | undefined;

  constructor(def: ProviderDefinition<R>, hd: HostData, mode: ProviderMode, nc: NatsConnection, logger: Logger, opts: RunOptions) {
    this.#def = def;
    this.#hd = hd;
    this.#mode = mode;
    this.#nc = nc;
    this.#logger = logger;
    this.#opts = opts;
    this.#config = { ...hd.config };
    this.#tracer = new Tracer(hd);
    this.#tracing = new ProviderTracing(tracingSettings(hd), nc);
    this.#opener = SecretOpener.fromHostData(hd);
    const ownSecrets = hostDataSecrets(hd.secrets);
    const opener = this.#opener;
    this.#table = new LinkTable<R>(hd.provider_key, def, logger, (e, d) => this.#tracer.emit(e, d), opener ? (sealed) => opener.open(sealed) : undefined);
    this.#ctx = {
      providerId: hd.provider_key,
      lattice: hd.lattice_rpc_prefix,
      hostId: hd.host_id,
      instanceId: hd.instance_id,
      mode,
      hostData: hd,
      nc,
      logger,
      config: () => ({ ...this.#config }),
      secrets: () => ownSecrets,
      links: () => this.#table.links(),
      linkFor: (peer, name, pkg) => this.#table.find(peer, name, pkg),
      call: (target, iface, fn, type, args, o = {}) => this.#traced(this.#callOptions(target, iface, fn, o), (c) => invoke(nc, c, type, args, o.resources)),
      callJson: (target, iface, fn, args, o = {}) => this.#traced(this.#callOptions(target, iface, fn, o), (c) => invokeJson(nc, c, args)),
      tracing: this.#tracing,
    };
  }

  /** Runs an outbound call under a client span (child of the call being served), its trace context in the headers. */
  async #traced<T, C extends CallOptions>(c: C, f: (c: C) => Promise<T>): Promise<T> {
    if (!this.#tracing.enabled) return f(c);
    const span = this.#tracing.client({ sourceId: c.sourceId, target: c.targetId, iface: c.iface, fn: c.fn, linkName: c.linkName });
    try {
      const v = await f({ ...c, headers: { ...span.headers, ...c.headers } });
      span.end();
      return v;
    } catch (err) {
      span.end(err);
      throw err;
    }
  }

  #callOptions(target: ProviderLink | string, iface: string, fn: string, o: { timeoutMs?: number; linkName?: string; headers?: Record<string, string> }) {
    const targetId = typeof target === "string" ? target : target.target;
    const linkName = typeof target === "string" ? (o.linkName ?? "default") : target.name;
    return {
      lattice: this.#hd.lattice_rpc_prefix,
      targetId,
      iface,
      fn,
      sourceId: this.#hd.provider_key,
      linkName,
      timeoutMs: o.timeoutMs ?? this.#hd.default_rpc_timeout_ms,
      ...(o.headers ? { headers: o.headers } : {}),
    };
  }

  handle(): RunningProvider<R> {
    return { ctx: this.#ctx, stopped: this.#stopped, shutdown: (reason) => this.shutdown(reason ?? "requested"), idle: () => this.idle() };
  }

  /** Subscribes, initializes, delivers the initial links and starts serving. */
  async start(remote: RemoteSettings | undefined): Promise<void> {
    const lattice = this.#hd.lattice_rpc_prefix;
    const id = this.#hd.provider_key;
    const sub = (subject: string, cb: (m: Msg) => void) => this.#subs.push(this.#nc.subscribe(subject, { callback: (err, m) => (err ? this.#logger.warn("subscription error", { subject, error: err.message }) : cb(m)) }));
    sub(providerRpc.linkPut(lattice, id), (m) => this.#onLinkMessage(m, "put"));
    // links with secrets come sealed to this instance, on its xkey subject (reference §4.3)
    if (this.#opener) sub(providerInstanceLinkPut(lattice, this.#opener.publicKey), (m) => this.#onLinkMessage(m, "put"));
    sub(providerRpc.linkDel(lattice, id), (m) => this.#onLinkMessage(m, "del"));
    sub(providerRpc.health(lattice, id), (m) => void this.#onHealth(m));
    sub(providerRpc.shutdown(lattice, id), (m) => this.#onShutdown(m));
    sub(providerRpc.configUpdate(lattice, id), (m) => this.#onConfigUpdate(m));
    if (remote) this.#liveSeen = new Set();
    await this.#nc.flush();
    if (remote && remote.configNames.length > 0) {
      this.#config = await this.#resolveConfigs(remote.configNames);
      this.#tracer.configure(this.#config);
    }
    this.#tracer.emit("init", { pid: process.pid, instance_id: this.#hd.instance_id, mode: this.#mode, links: this.#hd.link_definitions.length });
    this.#enqueue("init", async () => {
      await this.#def.init?.call(this.#def, this.#ctx);
    });
    for (const l of this.#hd.link_definitions) this.#enqueue("link put", () => this.#table.put(l, this.#ctx));
    if (remote) this.#enqueue("initial links", () => this.#loadRemoteLinks());
    await this.idle();
    if (this.#def.exports?.length) {
      this.#server = serveInterfaces(this.#nc, { lattice, targetId: id, logger: this.#logger, ...(this.#opts.invocationLimits ? { limits: this.#opts.invocationLimits } : {}) }, this.#def.exports.map((e) => this.#wrapExport(e)));
      await this.#nc.flush();
    }
    if (this.#opts.handleSignals ?? this.#opts.exitOnShutdown ?? true) {
      for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => void this.shutdown(sig));
    }
    if (this.#mode === "spawned" && (this.#opts.watchParent ?? true)) {
      const ppid = process.ppid;
      this.#parentWatch = setInterval(() => {
        if (process.ppid !== ppid) void this.shutdown("the host process exited");
      }, 1000);
      this.#parentWatch.unref();
    }
    this.#logger.info("provider started", { mode: this.#mode, instance_id: this.#hd.instance_id, links: this.#table.links().length });
  }

  #enqueue(what: string, fn: () => Promise<unknown>): void {
    this.#queue = this.#queue.then(fn).then(
      () => undefined,
      (err: unknown) => this.#logger.error(`${what} failed`, { error: String(err) }),
    );
  }

  /** Resolves once every queued link/config task has run. */
  async idle(): Promise<void> {
    let tail: Promise<void>;
    do {
      tail = this.#queue;
      await tail;
    } while (tail !== this.#queue);
  }

  #onLinkMessage(m: Msg, kind: "put" | "del"): void {
    let def: InterfaceLinkDefinition;
    try {
      def = parseInterfaceLinkDefinition(JSON.parse(decoder.decode(m.data)));
    } catch (err) {
      this.#logger.warn(`malformed link ${kind} message; ignoring it`, { error: String(err) });
      return;
    }
    this.#liveSeen?.add(linkIdentity(def));
    this.#enqueue(`link ${kind}`, () => (kind === "put" ? this.#table.put(def, this.#ctx) : this.#table.delete(def, this.#ctx)));
  }

  async #onHealth(m: Msg): Promise<void> {
    const req = parseJsonObject(m.data);
    if (typeof req.instance_id === "string" && req.instance_id !== "" && req.instance_id !== this.#hd.instance_id) return;
    let status: HealthStatus;
    try {
      status = (await this.#def.health?.call(this.#def, this.#ctx)) ?? { healthy: true };
    } catch (err) {
      status = { healthy: false, message: String(err) };
    }
    if (this.#shutdown) status = { healthy: false, message: "shutting down" };
    try {
      m.respond(encoder.encode(JSON.stringify(status.message ? { healthy: status.healthy, message: status.message } : { healthy: status.healthy })));
    } catch (err) {
      this.#logger.debug("cannot answer health check", { error: String(err) });
    }
  }

  #onShutdown(m: Msg): void {
    const req = parseJsonObject(m.data);
    // Only the instance its host addresses acts, and a remote provider has no host: others stay silent so that the
    // requesting host hears its own instance (reference §4.3).
    if (this.#mode === "remote") return;
    if (req.host_id !== this.#hd.host_id) return;
    if (typeof req.instance_id === "string" && req.instance_id !== "" && req.instance_id !== this.#hd.instance_id) return;
    void this.shutdown("shutdown request from the host", m);
  }

  #onConfigUpdate(m: Msg): void {
    const v = parseJsonObject(m.data);
    const config: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) if (typeof x === "string") config[k] = x;
    this.#enqueue("config update", async () => {
      this.#config = config;
      this.#tracer.configure(config);
      this.#tracer.emit("config_update", { config });
      await this.#def.configUpdate?.call(this.#def, { ...config }, this.#ctx);
    });
  }

  /** Remote mode: `link.get`, keep the links naming this provider, resolve their named configs, deliver them. */
  async #loadRemoteLinks(): Promise<void> {
    const id = this.#hd.provider_key;
    const all = await this.#ctlRequest<Link[]>(ctl.linkGet(this.#hd.lattice_rpc_prefix));
    const mine = (all ?? []).filter((l) => l.source_id === id || l.target === id);
    for (const l of mine) {
      if (this.#liveSeen?.has(linkIdentity(l))) continue; // a live message is at least as new as this snapshot
      const def: InterfaceLinkDefinition = {
        source_id: l.source_id,
        target: l.target,
        name: l.name,
        wit_namespace: l.wit_namespace,
        wit_package: l.wit_package,
        interfaces: [...l.interfaces].sort(),
        source_config: await this.#resolveConfigs(l.source_config ?? []),
        target_config: await this.#resolveConfigs(l.target_config ?? []),
        source_secrets: null,
        target_secrets: null,
      };
      await this.#table.put(def, this.#ctx);
    }
    this.#liveSeen = undefined;
    this.#logger.info("loaded links with link.get", { links: mine.length });
  }

  async #resolveConfigs(names: readonly string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const n of names) {
      const v = await this.#ctlRequest<Record<string, string>>(ctl.configGet(this.#hd.lattice_rpc_prefix, n));
      if (v === undefined) this.#logger.warn("named config does not exist; using {}", { config: n });
      Object.assign(out, v ?? {});
    }
    return out;
  }

  /** A control request, retried (250 ms doubling to 2 s) until a host answers; throws on a `success: false` reply. */
  async #ctlRequest<T>(subject: string): Promise<T | undefined> {
    let delay = 250;
    let warned = false;
    for (;;) {
      if (this.#shutdown) throw new TrellisError(ErrorCode.IllegalState, "shutting down");
      try {
        const m = await this.#nc.request(subject, new Uint8Array(), { timeout: this.#hd.default_rpc_timeout_ms });
        const r = JSON.parse(decoder.decode(m.data)) as CtlResponse<T>;
        if (!r.success) throw new TrellisError(r.error?.code ?? ErrorCode.Application, r.message);
        return r.response;
      } catch (err) {
        if (err instanceof TrellisError) throw err;
        if (!warned) this.#logger.warn("no host answered a control request; retrying", { subject, error: String(err) });
        warned = true;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(2000, delay * 2);
      }
    }
  }

  #wrapExport(e: NonNullable<ProviderDefinition<R>["exports"]>[number]): InterfaceImpl {
    const pkg = e.type.name.split("/")[0] ?? "";
    const requireLink = e.requireLink ?? true;
    const handlers: InterfaceImpl["handlers"] = {};
    for (const [fn, h] of Object.entries(e.handlers)) {
      handlers[fn] = async (...args: unknown[]) => {
        // the typed handler passes the decoded arguments, then the request: take the request off the end
        const request = args.pop() as CallContext<R>["request"];
        let found = request.sourceId ? this.#table.find(request.sourceId, request.linkName, pkg, true) : undefined;
        if (!found && requireLink && request.sourceId) {
          // The link put may still be on its way: the caller's host routes by the lattice's KV as soon as the link is
          // stored, while this provider learns of it from the handling host's link put (docs/protocol.md P5). Wait
          // for it (at most IDLE_WAIT_FOR_LINK_MS), checking after the queue drains and then every few milliseconds.
          const deadline = Date.now() + IDLE_WAIT_FOR_LINK_MS;
          await Promise.race([this.idle(), new Promise((r) => setTimeout(r, IDLE_WAIT_FOR_LINK_MS).unref())]);
          found = this.#table.find(request.sourceId, request.linkName, pkg, true);
          while (!found && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 10).unref());
            await this.idle();
            found = this.#table.find(request.sourceId, request.linkName, pkg, true);
          }
        }
        if (!found && requireLink) {
          throw new TrellisError(
            ErrorCode.LinkNotFound,
            `no link from ${request.sourceId ?? "(no source-id header)"} named ${request.linkName} for ${pkg} to provider ${this.#hd.provider_key}`,
            { details: { sourceId: request.sourceId, linkName: request.linkName, iface: request.iface, providerId: this.#hd.provider_key } },
          );
        }
        const call: CallContext<R> = { provider: this.#ctx, sourceId: request.sourceId, linkName: request.linkName, link: found?.link, resource: found?.resource, request };
        if (!this.#tracing.enabled) return h(...args, call);
        // the call's server span; calls the handler makes through ctx.call are its children
        const span = this.#tracing.server(request.headers, { sourceId: request.sourceId, target: this.#hd.provider_key, iface: request.iface, fn: request.fn, linkName: request.linkName });
        try {
          const v: unknown = await this.#tracing.run(span, () => h(...args, call));
          span.end();
          return v;
        } catch (err) {
          span.end(err);
          throw err;
        }
      };
    }
    return { type: e.type, handlers, ...(e.resources ? { resources: e.resources } : {}) };
  }

  /** Shuts down once: stop serving, run queued work, shutdown hook, reply, release resources, drain, exit. */
  shutdown(reason: string, request?: Msg): Promise<void> {
    this.#shutdown ??= this.#doShutdown(reason, request);
    return this.#shutdown;
  }

  async #doShutdown(reason: string, request: Msg | undefined): Promise<void> {
    this.#logger.info("provider shutting down", { reason });
    if (this.#parentWatch) clearInterval(this.#parentWatch);
    this.#server?.stop();
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, 1000).unref())]);
    this.#tracer.emit("shutdown", { reason });
    try {
      await this.#def.shutdown?.call(this.#def, this.#ctx);
    } catch (err) {
      this.#logger.error("shutdown hook failed", { error: String(err) });
    }
    try {
      request?.respond(encoder.encode("shutting down"));
    } catch (err) {
      this.#logger.debug("cannot answer the shutdown request", { error: String(err) });
    }
    await this.#table.releaseAll();
    await this.#tracing.shutdown();
    for (const s of this.#subs) s.unsubscribe();
    try {
      await this.#nc.drain();
    } catch (err) {
      this.#logger.debug("draining the NATS connection failed", { error: String(err) });
    }
    this.#resolveStopped();
    if (this.#opts.exitOnShutdown ?? true) {
      this.#tracer.flush(() => process.exit(0));
    }
  }
}

function parseJsonObject(data: Uint8Array): Record<string, unknown> {
  if (data.length === 0) return {};
  try {
    const v = JSON.parse(decoder.decode(data)) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
