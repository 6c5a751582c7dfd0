/**
 * A Trellis host: joins a lattice on NATS, keeps links and config as lattice data in JetStream KV, answers the
 * control interface, publishes events and heartbeats, and runs components and capability providers through its
 * workload managers.
 *
 * ```ts
 * const host = await Host.create({ lattice: "default", natsUrl: "nats://127.0.0.1:4222" });
 * // … later
 * await host.stop();
 * ```
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { type NatsConnectData, connectNats, describeNatsAuth, redactUrl, resolveNatsConnection } from "../core/connection.ts";
import { OciRegistry } from "../oci/registry.ts";
import { EventType } from "../core/events.ts";
import { IllegalStateError } from "../core/errors.ts";
import { type HostInfo, type HostInventory, humanUptime } from "../core/host.ts";
import type { Logger } from "../core/logger.ts";
import { TRELLIS_VERSION } from "../core/version.ts";
import { type LatticeData, openLatticeData } from "../lattice/lattice.ts";
import { NatsEventPublisher } from "../lattice/events.ts";
import { LinkService } from "../link/service.ts";
import { introspectionLookup } from "../link/check.ts";
import { ProviderLinkNotifier } from "../link/notify.ts";
import { ControlServer } from "./control-server.ts";
import { builtinLabels, friendlyName, hostKeys } from "./identity.ts";
import { type HostConfig, type HostOptions, compileHostOptions } from "./options.ts";
import { hostRoutes } from "./routes.ts";
import type { ComponentManager, ProviderManager, WorkloadContext } from "./workloads.ts";
import { CtlClient } from "../control/client.ts";
import { WadmServer } from "../app/wadm/server.ts";
import { WadmStateWriter } from "../app/wadm/state.ts";
import { Admission } from "../policy/admission.ts";
import { PolicyClient } from "../policy/service.ts";
import { livenessSubject } from "../core/subjects.ts";
import { Reconciler } from "../app/reconciler/reconciler.ts";
import { hostSecretsIdentity, SecretsClient } from "../secrets/client.ts";
import { MetricsWindow } from "../metrics/window.ts";
import { startMetricsServer, type MetricsServer } from "../metrics/prometheus.ts";

/** Lifecycle of a {@link Host}. */
export type HostState = "STARTING" | "RUNNING" | "STOPPING" | "STOPPED";

/** A host on a lattice. Build it with {@link Host.create}. */
export class Host {
  readonly config: HostConfig;
  /** The host id: its server nkey public key (`N…`). */
  readonly id: string;
  readonly friendlyName: string;
  readonly nc: NatsConnection;
  readonly lattice: LatticeData;
  readonly links: LinkService;
  readonly events: NatsEventPublisher;
  readonly #labels: Map<string, string>;
  readonly #ownsConnection: boolean;
  readonly #logger: Logger;
  /** Connection settings for workers and providers; undefined when the host was given a connection without auth. */
  readonly #natsData: NatsConnectData | undefined;
  readonly #startedAt = Date.now();
  #state: HostState = "STARTING";
  #control: ControlServer | undefined;
  #components: ComponentManager | undefined;
  #providers: ProviderManager | undefined;
  #policy: PolicyClient | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #wadm: WadmServer | undefined;
  #wadmState: WadmStateWriter | undefined;
  #liveness: NodeJS.Timeout | undefined;
  #reconciler: Reconciler | undefined;
  /** Call metrics of the last minute (ADR 0026), fed by the component workers. */
  readonly metrics = new MetricsWindow();
  #metricsServer: MetricsServer | undefined;
  #stopping: Promise<void> | undefined;
  readonly #stopped: Promise<void>;
  #resolveStopped!: () => void;

  private constructor(
    config: HostConfig,
    ids: { id: string; friendlyName: string },
    nc: NatsConnection,
    ownsConnection: boolean,
    lattice: LatticeData,
    natsData: NatsConnectData | undefined,
  ) {
    this.config = config;
    this.id = ids.id;
    this.friendlyName = ids.friendlyName;
    this.nc = nc;
    this.#ownsConnection = ownsConnection;
    this.#natsData = natsData;
    this.lattice = lattice;
    this.#logger = config.logger.child({ component: "host", host_id: ids.id, lattice: config.lattice });
    this.#labels = new Map(Object.entries({ ...config.labels, ...builtinLabels() }));
    this.events = new NatsEventPublisher(nc, config.lattice, ids.id, this.#logger);
    this.links = new LinkService(
      lattice.specs,
      lattice.config,
      this.events,
      this.#logger.child({ component: "link" }),
      new ProviderLinkNotifier(nc, config.lattice, lattice.config, this.#logger.child({ component: "link" })),
      introspectionLookup(nc, config.lattice),
    );
    this.#stopped = new Promise((r) => (this.#resolveStopped = r));
  }

  /**
   * Connects (unless `options.nc` is given), opens the lattice's KV buckets and loads them, starts the workload
   * managers, subscribes to the control interface and publishes `host_started`.
   * @throws InvalidArgumentError for bad options (including unreadable credential or certificate files);
   *   TrellisError `LATTICE_ERROR` when NATS cannot be reached, refuses the credentials, or has no JetStream.
   */
  static async create(options: HostOptions = {}): Promise<Host> {
    const config = compileHostOptions(options);
    const keys = hostKeys(config.hostSeed);
    let nc = config.nc;
    const owns = nc === undefined;
    const authGiven = Object.keys(config.natsAuth).length > 0 || config.natsUrl.includes("@");
    const natsData = nc && !authGiven ? undefined : await resolveNatsConnection(config.natsUrl, config.natsAuth);
    if (!nc) nc = await connectNats(natsData!, { name: `trellis-host-${keys.id.slice(0, 8)}`, maxReconnectAttempts: -1 });
    let lattice: LatticeData;
    try {
      lattice = await openLatticeData(
        nc,
        config.lattice,
        config.logger.child({ host_id: keys.id }),
        {
          ...(config.kvReplicas === undefined ? {} : { kvReplicas: config.kvReplicas }),
          ...(config.jsDomain === undefined ? {} : { jsDomain: config.jsDomain }),
        },
      );
    } catch (err) {
      if (owns) await nc.close();
      throw err;
    }
    const host = new Host(config, { id: keys.id, friendlyName: config.friendlyName ?? friendlyName() }, nc, owns, lattice, natsData);
    try {
      await host.#start();
    } catch (err) {
      await host.stop();
      throw err;
    }
    return host;
  }

  async #start(): Promise<void> {
    this.#policy = new PolicyClient(
      this.nc,
      this.config.policy,
      { publicKey: this.id, lattice: this.config.lattice, labels: this.labels() },
      this.#logger.child({ component: "policy" }),
    );
    await this.#policy.start();
    const ctx: WorkloadContext = {
      nc: this.nc,
      natsUrl: this.#natsData ? this.#natsData.servers.join(",") : `nats://${this.nc.getServer()}`,
      ...(this.#natsData ? { nats: this.#natsData } : {}),
      lattice: this.config.lattice,
      hostId: this.id,
      logger: this.config.logger.child({ host_id: this.id }),
      rpcTimeoutMs: this.config.rpcTimeoutMs,
      cacheDir: this.config.cacheDir,
      links: this.lattice.specs,
      config: this.lattice.config,
      events: this.events,
      specs: this.lattice.specs,
      invocationLimits: this.config.invocationLimits,
      admission: new Admission(this.config.load, this.#policy),
      secrets: new SecretsClient({
        nc: this.nc,
        topic: this.config.secretsTopic,
        identity: hostSecretsIdentity(this.id, this.friendlyName),
        config: this.lattice.config,
        timeoutMs: Math.max(this.config.rpcTimeoutMs, 2000),
      }),
      claims: {
        policy: this.config.claims,
        record: (stored) => {
          this.lattice.claims.put(stored).catch((err: unknown) =>
            this.#logger.warn("cannot record claims in lattice data", { subject: stored.subject, error: String(err) }),
          );
        },
      },
      oci: new OciRegistry(this.config.oci),
      tracing: this.config.tracing,
      metrics: this.metrics,
    };
    const factories = this.config.workloads;
    if (factories.components) this.#components = await factories.components(ctx);
    if (factories.providers) this.#providers = await factories.providers(ctx);
    this.#control = new ControlServer({
      nc: this.nc,
      lattice: this.config.lattice,
      hostId: this.id,
      maxPayloadBytes: this.config.maxControlPayloadBytes,
      logger: this.#logger.child({ component: "ctl" }),
      routes: hostRoutes({
        hostId: this.id,
        info: () => this.info(),
        inventory: () => this.inventory(),
        labels: this.#labels,
        links: this.links,
        config: this.lattice.config,
        events: this.events,
        components: () => this.#components,
        providers: () => this.#providers,
        claims: this.lattice.claims,
        requestStop: (timeoutMs) => {
          setTimeout(() => void this.stop(timeoutMs), 10);
        },
      }),
    });
    await this.#control.start();
    if (this.config.metricsListen) {
      this.#metricsServer = await startMetricsServer(this.config.metricsListen, this.metrics, this.id, this.#logger);
      this.#logger.info("serving metrics", { url: this.#metricsServer.url });
    }
    this.lattice.specs.onSpec((id, spec) => {
      if (spec === undefined && this.#components?.inventory().some((c) => c.id === id)) {
        this.#logger.warn("component spec deleted, but component is still running", { component_id: id });
      }
    });
    // The wadm API, wadm_state and the reconciler keep their buckets in the hub's JetStream: a host on a leaf node
    // (jsDomain) leaves them to the hub's hosts (docs/nats-cluster.md, "Across sites").
    const onLeaf = this.config.jsDomain !== undefined;
    if (onLeaf && (this.config.wadm || this.config.reconciler)) {
      this.#logger.warn("wadm API and reconciler not run here: this host uses a JetStream domain (--js-domain); the hub's hosts run them", { js_domain: this.config.jsDomain });
    }
    if (this.config.wadm && !onLeaf) await this.#startWadm();
    this.#state = "RUNNING";
    this.events.publish(EventType.HostStarted, {
      friendly_name: this.friendlyName,
      labels: this.labels(),
      uptime_seconds: 0,
      version: TRELLIS_VERSION,
    });
    this.#sendHeartbeat();
    this.#heartbeat = setInterval(() => this.#sendHeartbeat(), this.config.heartbeatIntervalMs);
    this.#heartbeat.unref();
    this.#startLiveness();
    if (this.config.reconciler && !onLeaf) {
      this.#reconciler = await Reconciler.start({
        nc: this.nc,
        lattice: this.config.lattice,
        hostId: this.id,
        logger: this.config.logger.child({ host_id: this.id }),
        leaseTtlMs: this.config.reconcilerLeaseTtlMs,
      });
    }
    this.#logger.info("host started", {
      friendly_name: this.friendlyName,
      nats_url: redactUrl(this.config.natsUrl),
      ...(this.#natsData ? { nats_auth: describeNatsAuth(this.#natsData) } : {}),
    });
  }

  /** wadm's API and this host's part of `wadm_state` (src/app/wadm, ADR 0013). */
  async #startWadm(): Promise<void> {
    const logger = this.#logger.child({ component: "wadm" });
    const client = await CtlClient.connect({ nc: this.nc, lattice: this.config.lattice });
    this.#wadm = new WadmServer({ client, logger });
    await this.#wadm.start();
    this.#wadmState = new WadmStateWriter({
      nc: this.nc,
      lattice: this.config.lattice,
      hostId: this.id,
      inventory: () => this.inventory(),
      expiryMs: 2 * this.config.heartbeatIntervalMs + 10_000,
      logger,
    });
    await this.#wadmState.start();
  }

  /** The wadm API server this host runs (undefined with `wadm: false`). */
  get wadm(): WadmServer | undefined {
    return this.#wadm;
  }

  /** Liveness beats on `trellis.live.v1.{lattice}.{host}` every `livenessIntervalMs` (ADR 0012). */
  #startLiveness(): void {
    const subject = livenessSubject(this.config.lattice, this.id);
    const intervalMs = this.config.livenessIntervalMs;
    let seq = 0;
    const beat = () => {
      try {
        this.nc.publish(subject, JSON.stringify({ host_id: this.id, interval_ms: intervalMs, seq: ++seq }));
      } catch (err) {
        this.#logger.debug("cannot publish a liveness beat", { error: String(err) });
      }
    };
    beat();
    this.#liveness = setInterval(beat, intervalMs);
    this.#liveness.unref();
  }

  /** This host's reconciler, unless it runs with `reconciler: false`. */
  get reconciler(): Reconciler | undefined {
    return this.#reconciler;
  }

  #sendHeartbeat(): void {
    this.events.publish(EventType.HostHeartbeat, { ...this.inventory() });
  }

  /** Lifecycle state. */
  get state(): HostState {
    return this.#state;
  }

  /** Resolves when the host has stopped (by {@link stop} or a `host.stop` request). */
  get stopped(): Promise<void> {
    return this.#stopped;
  }

  /** Current labels, built-in included. */
  labels(): Record<string, string> {
    return Object.fromEntries(this.#labels);
  }

  /** Seconds since start. */
  uptimeSeconds(): number {
    return Math.floor((Date.now() - this.#startedAt) / 1000);
  }

  /** The `host.ping` reply (reference §1.4). */
  info(): HostInfo {
    const up = this.uptimeSeconds();
    return {
      id: this.id,
      friendly_name: this.friendlyName,
      labels: this.labels(),
      lattice: this.config.lattice,
      uptime_seconds: up,
      uptime_human: humanUptime(up),
      version: TRELLIS_VERSION,
      ctl_host: redactUrl(this.config.natsUrl),
      rpc_host: redactUrl(this.config.natsUrl),
    };
  }

  /** The `host.get` reply and heartbeat data (reference §1.4). */
  inventory(): HostInventory {
    const up = this.uptimeSeconds();
    return {
      components: this.#components?.inventory() ?? [],
      providers: this.#providers?.inventory() ?? [],
      host_id: this.id,
      friendly_name: this.friendlyName,
      labels: this.labels(),
      version: TRELLIS_VERSION,
      uptime_human: humanUptime(up),
      uptime_seconds: up,
      metrics: this.metrics.snapshot(),
    };
  }

  /** URL of the Prometheus endpoint (`--metrics-listen`), when it runs. */
  get metricsUrl(): string | undefined {
    return this.#metricsServer?.url;
  }

  /** The component manager, when this host runs components. */
  get components(): ComponentManager | undefined {
    return this.#components;
  }

  /** The provider manager, when this host runs capability providers. */
  get providers(): ProviderManager | undefined {
    return this.#providers;
  }

  /**
   * Stops answering the control interface, stops workloads, publishes `host_stopped`, and closes the connection it
   * opened. Idempotent.
   * @param timeoutMs bound on stopping workloads, in milliseconds. @default 10000
   */
  stop(timeoutMs = 10_000): Promise<void> {
    this.#stopping ??= this.#doStop(timeoutMs);
    return this.#stopping;
  }

  async #doStop(timeoutMs: number): Promise<void> {
    this.#state = "STOPPING";
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    await this.#wadm?.stop();
    if (this.#liveness) clearInterval(this.#liveness);
    await this.#reconciler?.stop();
    await this.#control?.stop();
    await this.#metricsServer?.close();
    const closing = Promise.allSettled([this.#components?.close(), this.#providers?.close()]);
    await Promise.race([closing, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    await this.#wadmState?.stop();
    this.#policy?.close();
    this.events.publish(EventType.HostStopped, { labels: this.labels() });
    this.lattice.close();
    try {
      if (this.#ownsConnection) await this.nc.drain();
      else await this.nc.flush();
    } catch (err) {
      this.#logger.debug("closing NATS connection", { error: String(err) });
    }
    this.#state = "STOPPED";
    this.#logger.info("host stopped");
    this.#resolveStopped();
  }

  /** `await using host = await Host.create()` stops it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** @throws IllegalStateError unless the host is running. */
  assertRunning(): void {
    if (this.#state !== "RUNNING") throw new IllegalStateError(`host ${this.id} is ${this.#state}`);
  }
}
