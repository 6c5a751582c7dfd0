/**
 * One capability provider supervised by this host (reference §4.1, §4.4, §4.5; docs/adr/0005-provider-supervision.md):
 * spawns its process with fresh host data, checks its health, pushes config updates, restarts it with backoff when it
 * crashes, and shuts it down gracefully on request.
 * @module
 */
import { randomUUID } from "node:crypto";
import { errors as natsErrors } from "@nats-io/transport-node";
import { EventType } from "../core/events.ts";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import type { InterfaceLinkDefinition, Link } from "../core/link.ts";
import { linksEqual } from "../core/link.ts";
import type { Logger } from "../core/logger.ts";
import type { ProviderDescription } from "../core/host.ts";
import { providerInstanceLinkPut, providerRpc } from "../core/subjects.ts";
import { linkHasSecrets, toInterfaceLinkDefinition } from "../link/notify.ts";
import { newXKey, xkeySeed } from "../secrets/xkey.ts";
import { isSecretName } from "../secrets/types.ts";
import { checkProviderClaims } from "./claims.ts";
import type { KeyPair } from "@nats-io/nkeys";
import { encodeTargetExit } from "../../packages/wire/src/invocation/exit.ts";
import type { WorkloadContext } from "../host/workloads.ts";
import { providerOtelConfig } from "../tracing/settings.ts";
import { encodeHostData, hostDataConnectionFields, type HostData } from "./host-data.ts";
import { describeExit, ProviderProcess } from "./process.ts";
import type { ProviderCommand } from "./ref.ts";
import type { SupervisorConfig } from "./options.ts";
import { describeClaims, type ProviderMetadata, providerEventClaims, type Token } from "../claims/index.ts";

/** Lifecycle of a supervised provider, as shown in inventories (`ProviderDescription.status`). */
export type ProviderStatus = "starting" | "running" | "unhealthy" | "restarting" | "failed" | "stopping";

/** What a `provider.start` asked for. */
export interface ProviderSpec {
  id: string;
  ref: string;
  command: ProviderCommand;
  /** Names of the provider's own configs, merged left to right. */
  configNames: string[];
  annotations: Record<string, string>;
  /** Verified claims (from `<executable>.claims.jwt`); undefined when unsigned. */
  claims?: Token<ProviderMetadata> | undefined;
}

/** A snapshot of a supervised provider, for tests and diagnostics. */
export interface ProviderSnapshot {
  id: string;
  ref: string;
  status: ProviderStatus;
  /** Process id of the current process; undefined between processes. */
  pid: number | undefined;
  /** `instance_id` of the current (or last) process. */
  instanceId: string;
  /** Processes started so far (1 + restarts). */
  starts: number;
  /** Why the provider last failed, crashed or was unhealthy. */
  lastError: string | undefined;
  /** Result of the last health check: true, false, or undefined before the first. */
  healthy: boolean | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Supervises one provider id on this host. */
export class ManagedProvider {
  readonly spec: ProviderSpec;
  readonly #ctx: WorkloadContext;
  readonly #cfg: SupervisorConfig;
  readonly #logger: Logger;
  readonly #onLine: ((id: string, stream: "stdout" | "stderr", line: string) => void) | undefined;
  #status: ProviderStatus = "starting";
  #proc: ProviderProcess | undefined;
  #instanceId = "";
  #starts = 0;
  #crashes = 0;
  #healthy: boolean | undefined;
  #lastError: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;
  /** Links (by name) written to the current instance's host data; undefined once caught up. */
  #delivered: Link[] | undefined;
  #lastConfig = "";
  #unwatchConfig: (() => void) | undefined;
  #unwatchLinks: (() => void) | undefined;
  /** This provider's xkey (reference §4.1 step 4): kept across restarts; link secrets are sealed to it. */
  readonly #xkey: KeyPair = newXKey();

  constructor(
    spec: ProviderSpec,
    ctx: WorkloadContext,
    cfg: SupervisorConfig,
    onLine?: (id: string, stream: "stdout" | "stderr", line: string) => void,
  ) {
    this.spec = spec;
    this.#ctx = ctx;
    this.#cfg = cfg;
    this.#onLine = onLine;
    this.#logger = ctx.logger.child({ component: "provider", provider_id: spec.id });
  }

  /** Current status. */
  get status(): ProviderStatus {
    return this.#status;
  }

  /** The inventory entry (reference §1.4 `ProviderDescription`, `status` a Trellis extension). */
  describe(): ProviderDescription {
    const d: ProviderDescription = { id: this.spec.id, image_ref: this.spec.ref, revision: 0, status: this.#status };
    if (Object.keys(this.spec.annotations).length > 0) d.annotations = { ...this.spec.annotations };
    if (this.spec.claims) Object.assign(d, describeClaims(this.spec.claims));
    return d;
  }

  /** A snapshot for tests and diagnostics. */
  snapshot(): ProviderSnapshot {
    return {
      id: this.spec.id,
      ref: this.spec.ref,
      status: this.#status,
      pid: this.#proc && this.#proc.exit === undefined ? this.#proc.pid : undefined,
      instanceId: this.#instanceId,
      starts: this.#starts,
      lastError: this.#lastError,
      healthy: this.#healthy,
    };
  }

  /**
   * Spawns the first process and starts supervising it. Emits `provider_started` on success.
   * @throws TrellisError `PROVIDER_ERROR` when the process cannot be spawned (the caller emits `provider_start_failed`).
   */
  async start(): Promise<void> {
    this.#unwatchConfig = this.#ctx.config.onChange((name) => {
      if (this.spec.configNames.includes(name)) this.#pushConfig();
    });
    // Links with secrets are delivered by this host, sealed to this instance (the put notifier skips them).
    this.#unwatchLinks = this.#ctx.links.onChange((change) => {
      if (this.#delivered !== undefined) return; // the catch-up after the first health check delivers them
      for (const l of change.added) {
        if (linkHasSecrets(l) && (l.source_id === this.spec.id || l.target === this.spec.id)) void this.#publishPut(l);
      }
    });
    try {
      await this.#spawn();
    } catch (err) {
      this.#unwatchConfig();
      this.#unwatchLinks?.();
      this.#fail(TrellisError.from(err, ErrorCode.Provider).message);
      throw err;
    }
    if (this.#stopping) return;
    this.#ctx.events.publish(EventType.ProviderStarted, {
      host_id: this.#ctx.hostId,
      image_ref: this.spec.ref,
      provider_id: this.spec.id,
      annotations: this.spec.annotations,
      instance_id: this.#instanceId,
      public_key: this.spec.id,
      link_name: "default",
      ...(this.spec.claims ? { claims: providerEventClaims(this.spec.claims) } : {}),
    });
  }

  /**
   * The provider-facing form of a link; this provider's side of its secrets (`SECRET_…` names) fetched with the
   * provider's claims and sealed from the host xkey to this provider's xkey (reference §2.2, §6.3).
   * @throws SecretsError when a secret cannot be fetched (the message names it, never its value).
   */
  async #linkDefinition(l: Link): Promise<InterfaceLinkDefinition> {
    const def = await toInterfaceLinkDefinition(l, this.#ctx.config);
    if (!linkHasSecrets(l)) return def;
    const secrets = this.#ctx.secrets;
    if (!secrets) throw new TrellisError(ErrorCode.Secrets, `link ${l.source_id} -> ${l.target} names secrets, but this host has no secrets support`);
    const mine = l.target === this.spec.id ? l.target_config : l.source_config;
    const bundle = await secrets.fetch(mine, this.spec.claims?.jwt, this.spec.annotations["wasmcloud.dev/appspec"]);
    const sealed = bundle.sealFor(secrets.identity.xkey, this.#xkey.getPublicKey());
    return l.target === this.spec.id ? { ...def, target_secrets: sealed } : { ...def, source_secrets: sealed };
  }

  /**
   * The provider's own secrets for its host data.
   * @throws SecretsError naming the secret (the start then fails with that message).
   */
  async #ownSecrets(): Promise<Record<string, unknown>> {
    const secrets = this.#ctx.secrets;
    if (!secrets) throw new TrellisError(ErrorCode.Secrets, `provider ${this.spec.id} names secrets, but this host has no secrets support`);
    return (await secrets.fetch(this.spec.configNames, this.spec.claims?.jwt, this.spec.annotations["wasmcloud.dev/appspec"])).forProviderStdin();
  }

  /** Publishes a link put: links with secrets to this instance's xkey subject, others to the provider id. */
  async #publishPut(l: Link): Promise<void> {
    try {
      const def = await this.#linkDefinition(l);
      const subject = linkHasSecrets(l) ? providerInstanceLinkPut(this.#ctx.lattice, this.#xkey.getPublicKey()) : providerRpc.linkPut(this.#ctx.lattice, this.spec.id);
      this.#ctx.nc.publish(subject, JSON.stringify(def));
    } catch (err) {
      this.#logger.warn("cannot deliver a link to the provider", { source_id: l.source_id, target: l.target, link_name: l.name, error: (err as Error).message });
    }
  }

  async #hostData(): Promise<{ data: HostData; links: Link[] }> {
    const all = this.#currentLinks();
    const links: Link[] = [];
    const defs: InterfaceLinkDefinition[] = [];
    for (const l of all) {
      try {
        defs.push(await this.#linkDefinition(l));
        links.push(l);
      } catch (err) {
        this.#logger.warn("link left out of host data: its secrets cannot be fetched", { source_id: l.source_id, target: l.target, link_name: l.name, error: (err as Error).message });
      }
    }
    const config = this.#ctx.config.current(this.spec.configNames.filter((c) => !isSecretName(c)));
    this.#lastConfig = JSON.stringify(config);
    // the provider's own secrets (`SECRET_…` in its config list), fetched with its claims; they go to its stdin only
    const own = this.spec.configNames.some(isSecretName) ? await this.#ownSecrets() : {};
    const data: HostData = {
      host_id: this.#ctx.hostId,
      lattice_rpc_prefix: this.#ctx.lattice,
      link_name: "default",
      ...hostDataConnectionFields(this.#ctx.nats),
      lattice_rpc_url: this.#cfg.natsUrl ?? this.#ctx.natsUrl,
      provider_key: this.spec.id,
      env_values: {},
      instance_id: this.#instanceId,
      link_definitions: defs,
      cluster_issuers: [],
      config,
      secrets: own,
      host_xkey_public_key: this.#ctx.secrets?.identity.xkey.getPublicKey() ?? "",
      provider_xkey_private_key: this.#ctx.secrets ? xkeySeed(this.#xkey) : "",
      default_rpc_timeout_ms: this.#ctx.rpcTimeoutMs,
      structured_logging: this.#cfg.structuredLogging,
      log_level: this.#cfg.providerLogLevel,
      otel_config: providerOtelConfig(this.#ctx.tracing, this.spec.id),
    };
    return { data, links };
  }

  /** Every link where this provider is source or target, as this host knows them now. */
  #currentLinks(): Link[] {
    const from = this.#ctx.links.linksFrom(this.spec.id);
    const to = this.#ctx.links.linksTo(this.spec.id).filter((l) => l.source_id !== this.spec.id);
    return [...from, ...to];
  }

  async #spawn(): Promise<void> {
    // A restart runs the executable again: its claims are checked again (it may have been replaced meanwhile).
    if (this.#starts > 0 && (this.spec.claims || this.#ctx.claims)) {
      checkProviderClaims(this.spec.command.file, `provider ${this.spec.id} (${this.spec.ref})`, this.#ctx.claims);
    }
    this.#instanceId = randomUUID();
    this.#healthy = undefined;
    // Read-your-writes: include links put on other hosts just before this start.
    await this.#ctx.links.sync(1000).catch(() => undefined);
    const { data, links } = await this.#hostData();
    const env = { ...this.#cfg.childEnv };
    const logger = this.#logger.child({ instance_id: this.#instanceId });
    const onLine = this.#onLine;
    const proc = await ProviderProcess.spawn(this.spec.command, env, encodeHostData(data), logger, onLine ? (s, l) => onLine(this.spec.id, s, l) : undefined);
    if (this.#stopping) {
      // stopped while spawning: this process must not outlive the provider
      proc.kill("SIGKILL");
      return;
    }
    this.#starts++;
    this.#proc = proc;
    this.#delivered = links;
    if (this.#status !== "failed") this.#status = this.#starts === 1 ? "starting" : "restarting";
    logger.info("provider process started", { pid: proc.pid, links: links.length, command: this.spec.command.command });
    void proc.exited.then(() => this.#onExit(proc));
    this.#schedule(() => void this.#check(proc), this.#cfg.firstHealthCheckMs);
  }

  #schedule(fn: () => void, ms: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(fn, ms);
    this.#timer.unref();
  }

  #onExit(proc: ProviderProcess): void {
    if (proc !== this.#proc || this.#stopping) return;
    if (this.#timer) clearTimeout(this.#timer);
    const exit = proc.exit ?? { code: null, signal: null };
    const uptime = Date.now() - proc.startedAt;
    if (uptime >= this.#cfg.stableAfterMs) this.#crashes = 0;
    this.#crashes++;
    const why = `provider process ${describeExit(exit, proc.tail())}`;
    this.#lastError = why;
    this.#announceExit(`provider process ${describeExit(exit, [])}`);
    if (this.#crashes > this.#cfg.maxRestarts) {
      this.#logger.error("provider keeps crashing; giving up", { crashes: this.#crashes, error: why });
      this.#fail(`${why} (${this.#crashes} crashes in a row, none lasting ${this.#cfg.stableAfterMs} ms; not restarting)`);
      return;
    }
    const delay = Math.min(this.#cfg.restartBackoffMs * 2 ** (this.#crashes - 1), this.#cfg.maxRestartBackoffMs);
    this.#status = "restarting";
    this.#logger.warn("provider process exited; restarting", { error: why, restart_in_ms: delay, crashes: this.#crashes, uptime_ms: uptime });
    this.#schedule(() => void this.#restart(), delay);
  }

  /**
   * Publishes the target exit notice of the process that just went away (ADR 0014, docs/protocol.md "Target exit
   * notices"), so callers waiting on it fail at once instead of at their timeout. `reason` holds no process output.
   */
  #announceExit(reason: string): void {
    const { subject, data } = encodeTargetExit(this.#ctx.lattice, {
      target_id: this.spec.id,
      kind: "provider",
      host_id: this.#ctx.hostId,
      instance_id: this.#instanceId,
      reason,
      at: Date.now(),
    });
    try {
      this.#ctx.nc.publish(subject, data);
    } catch (err) {
      this.#logger.debug("cannot publish the provider exit notice", { error: (err as Error).message });
    }
  }

  async #restart(): Promise<void> {
    if (this.#stopping) return;
    try {
      await this.#spawn();
    } catch (err) {
      const msg = TrellisError.from(err, ErrorCode.Provider).message;
      this.#lastError = msg;
      this.#crashes++;
      if (this.#crashes > this.#cfg.maxRestarts) {
        this.#fail(`${msg} (${this.#crashes} failed restarts in a row; not restarting)`);
        return;
      }
      const delay = Math.min(this.#cfg.restartBackoffMs * 2 ** (this.#crashes - 1), this.#cfg.maxRestartBackoffMs);
      this.#logger.warn("cannot restart provider; retrying", { error: msg, restart_in_ms: delay });
      this.#schedule(() => void this.#restart(), delay);
    }
  }

  /** Marks the provider failed for good (until stopped or started again) and emits `provider_start_failed`. */
  #fail(error: string): void {
    this.#status = "failed";
    this.#lastError = error;
    if (this.#timer) clearTimeout(this.#timer);
    this.#ctx.events.publish(EventType.ProviderStartFailed, {
      provider_ref: this.spec.ref,
      provider_id: this.spec.id,
      host_id: this.#ctx.hostId,
      error,
      link_name: "default",
    });
  }

  /** One health check of `proc` (reference §4.4), then the next one is scheduled. */
  async #check(proc: ProviderProcess): Promise<void> {
    if (proc !== this.#proc || this.#stopping || proc.exit !== undefined) return;
    const timeout = this.#cfg.healthTimeoutMs ?? this.#ctx.rpcTimeoutMs;
    let healthy: boolean;
    let message: string | undefined;
    try {
      const reply = await this.#ctx.nc.request(
        providerRpc.health(this.#ctx.lattice, this.spec.id),
        encoder.encode(JSON.stringify({ host_id: this.#ctx.hostId, instance_id: this.#instanceId })),
        { timeout },
      );
      ({ healthy, message } = parseHealth(reply.data));
    } catch (err) {
      healthy = false;
      message = `no reply to the health check within ${timeout} ms (${(err as Error).message})`;
      if (this.#healthy === undefined && isNoResponders(err) && Date.now() - proc.startedAt < this.#cfg.startupGraceMs) {
        // Not subscribed yet: still starting. Counted as a failure only once the start-up grace has passed.
        this.#logger.debug("provider not subscribed to its health subject yet", { since_start_ms: Date.now() - proc.startedAt });
        this.#schedule(() => void this.#check(proc), Math.max(this.#cfg.firstHealthCheckMs, 100));
        return;
      }
    }
    if (proc !== this.#proc || this.#stopping || proc.exit !== undefined) return;
    this.#recordHealth(healthy, message);
    if (healthy && this.#delivered !== undefined) await this.#catchUp();
    if (proc !== this.#proc || this.#stopping) return;
    // Until an instance first answers healthy, probe at the first-check cadence (for at most one interval), so that
    // a slow starter is seen soon and links changed during its start reach it soon.
    const probing = this.#delivered !== undefined && Date.now() - proc.startedAt < this.#cfg.healthIntervalMs;
    this.#schedule(() => void this.#check(proc), probing ? Math.max(this.#cfg.firstHealthCheckMs, 100) : this.#cfg.healthIntervalMs);
  }

  #recordHealth(healthy: boolean, message: string | undefined): void {
    const prev = this.#healthy;
    this.#healthy = healthy;
    const data: Record<string, unknown> = { host_id: this.#ctx.hostId, provider_id: this.spec.id };
    if (message) data.message = message;
    if (healthy) {
      this.#status = "running";
      this.#ctx.events.publish(prev === true ? EventType.HealthCheckStatus : EventType.HealthCheckPassed, data);
    } else {
      this.#status = "unhealthy";
      this.#lastError = message ?? "the provider reported itself unhealthy";
      if (prev !== false) {
        this.#logger.warn("provider health check failed", { message });
        this.#ctx.events.publish(EventType.HealthCheckFailed, data);
      } else {
        this.#logger.debug("provider still unhealthy", { message });
      }
    }
  }

  /**
   * After an instance first answers health (so it has subscribed to the link subjects), delivers the links that
   * changed between writing its host data and now: puts of links added, deletes of links removed. Closes the window
   * of reference §10.5 (links lost during provider start); providers handle the overlap idempotently.
   */
  async #catchUp(): Promise<void> {
    const delivered = this.#delivered;
    this.#delivered = undefined;
    if (!delivered) return;
    const now = this.#currentLinks();
    const added = now.filter((l) => !delivered.some((d) => linksEqual(d, l)));
    const removed = delivered.filter((d) => !now.some((l) => linksEqual(d, l)));
    if (added.length === 0 && removed.length === 0) return;
    this.#logger.info("delivering links changed during start", { added: added.length, removed: removed.length });
    for (const l of removed) {
      const del = { ...l, interfaces: [...l.interfaces], source_config: {}, target_config: {}, source_secrets: null, target_secrets: null };
      this.#ctx.nc.publish(providerRpc.linkDel(this.#ctx.lattice, this.spec.id), JSON.stringify(del));
    }
    for (const l of added) await this.#publishPut(l);
  }

  /** Publishes the merged provider config on `config.update` when it changed (reference §3.4). */
  #pushConfig(): void {
    if (!this.#proc || this.#proc.exit !== undefined || this.#stopping) return;
    const config = this.#ctx.config.current(this.spec.configNames.filter((c) => !isSecretName(c)));
    const json = JSON.stringify(config);
    if (json === this.#lastConfig) return;
    this.#lastConfig = json;
    this.#logger.debug("pushing provider config update");
    this.#ctx.nc.publish(providerRpc.configUpdate(this.#ctx.lattice, this.spec.id), json);
  }

  /**
   * Stops supervising and ends the process: the shutdown request `{ host_id, instance_id }` (reference §4.5), then
   * up to `shutdownDelayMs` for the process to exit, then SIGKILL. Emits `provider_stopped` with `reason`.
   */
  async stop(reason: string): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#status = "stopping";
    if (this.#timer) clearTimeout(this.#timer);
    this.#unwatchConfig?.();
    this.#unwatchLinks?.();
    const proc = this.#proc;
    if (proc && proc.exit === undefined) {
      const deadline = Date.now() + this.#cfg.shutdownDelayMs;
      try {
        await this.#ctx.nc.request(
          providerRpc.shutdown(this.#ctx.lattice, this.spec.id),
          encoder.encode(JSON.stringify({ host_id: this.#ctx.hostId, instance_id: this.#instanceId })),
          { timeout: Math.max(1, this.#cfg.shutdownDelayMs) },
        );
      } catch (err) {
        this.#logger.warn("provider did not answer the shutdown request", { error: (err as Error).message });
      }
      const left = deadline - Date.now();
      if (left > 0) await Promise.race([proc.exited, sleep(left)]);
      if (proc.exit === undefined) {
        this.#logger.warn("provider did not exit after the shutdown request; killing it", { pid: proc.pid });
        proc.kill("SIGKILL");
        await Promise.race([proc.exited, sleep(2000)]);
      }
      this.#announceExit(`provider stopped (${reason})`);
    }
    this.#ctx.events.publish(EventType.ProviderStopped, {
      host_id: this.#ctx.hostId,
      provider_id: this.spec.id,
      annotations: this.spec.annotations,
      reason,
      instance_id: this.#instanceId,
      public_key: this.spec.id,
      link_name: "default",
    });
  }
}

/** Parses a health reply `{"healthy": bool, "message"?: string}` (reference §4.3); anything else is unhealthy. */
export function parseHealth(data: Uint8Array): { healthy: boolean; message: string | undefined } {
  try {
    const v = JSON.parse(decoder.decode(data)) as { healthy?: unknown; message?: unknown };
    if (typeof v === "object" && v !== null && typeof v.healthy === "boolean") {
      return { healthy: v.healthy, message: typeof v.message === "string" && v.message ? v.message : undefined };
    }
  } catch {
    // fall through
  }
  return { healthy: false, message: `malformed health reply: ${decoder.decode(data).slice(0, 200)}` };
}

function isNoResponders(err: unknown): boolean {
  return err instanceof natsErrors.NoRespondersError || (err instanceof natsErrors.RequestError && err.isNoResponders());
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
