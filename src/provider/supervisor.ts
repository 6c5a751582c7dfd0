/**
 * The provider supervisor: this host's {@link ProviderManager}. Answers `provider.start.{host}` and
 * `provider.stop.{host}` (reference §1.4), runs each provider as a child process with host data on stdin (§4.1, §4.2),
 * checks health, restarts crashed processes with fresh links and config (§4.4), and stops them gracefully (§4.5).
 *
 * ```ts
 * const host = await Host.create({ workloads: { providers: providerSupervisor({ healthIntervalMs: 10_000 }) } });
 * ```
 * @module
 */
import { type CtlResponse, ok } from "../core/envelope.ts";
import { EventType } from "../core/events.ts";
import { ErrorCode, InvalidArgumentError, TrellisError } from "../core/errors.ts";
import type { ProviderDescription } from "../core/host.ts";
import { validateId } from "../core/ids.ts";
import { parseObjectBody } from "../host/control-server.ts";
import type { ProviderManager, WorkloadContext } from "../host/workloads.ts";
import { ManagedProvider, type ProviderSnapshot } from "./managed.ts";
import { compileSupervisorOptions, type ProviderSupervisorOptions, type SupervisorConfig } from "./options.ts";
import { classifyProviderRef, providerCommand } from "./ref.ts";
import { checkProviderClaims } from "./claims.ts";
import { compileOciOptions } from "../oci/options.ts";
import { pullProvider } from "../oci/artifacts.ts";
import { OciRegistry } from "../oci/registry.ts";

/** Options of {@link providerSupervisor}: supervision settings plus test hooks. */
export interface ProviderSupervisorFactoryOptions extends ProviderSupervisorOptions {
  /** Called with every output line of every provider process (after it is logged). For tests and tools. */
  onOutput?: (providerId: string, stream: "stdout" | "stderr", line: string) => void;
}

/**
 * The factory the host calls at start (src/host/workloads.ts `WorkloadFactories.providers`).
 * @throws InvalidArgumentError at once for bad options.
 */
export function providerSupervisor(options: ProviderSupervisorFactoryOptions = {}): (ctx: WorkloadContext) => Promise<ProviderManager> {
  const cfg = compileSupervisorOptions(options);
  return (ctx) => Promise.resolve(new ProviderSupervisor(ctx, cfg, options.onOutput));
}

/** A parsed `provider.start` request (reference §1.4 `StartProviderCommand`). */
export interface StartProviderCommand {
  provider_id: string;
  provider_ref: string;
  config: string[];
  annotations: Record<string, string>;
}

/**
 * Validates a `provider.start` body.
 * @throws InvalidArgumentError naming the bad field.
 */
export function parseStartProvider(payload: Uint8Array): StartProviderCommand {
  const body = parseObjectBody(payload, "provider.start");
  const ref = body.provider_ref;
  if (typeof ref !== "string" || !ref.trim()) throw new InvalidArgumentError("provider_ref", "provider_ref is required (a path, a file:// URL or a first-party provider name)");
  const config = body.config ?? [];
  if (!Array.isArray(config)) throw new InvalidArgumentError("config", "config must be an array of config names");
  const annotations = body.annotations ?? {};
  if (typeof annotations !== "object" || annotations === null || Array.isArray(annotations) || Object.values(annotations).some((v) => typeof v !== "string")) {
    throw new InvalidArgumentError("annotations", "annotations must be a map of string -> string");
  }
  return {
    provider_id: validateId("provider_id", body.provider_id),
    provider_ref: ref.trim(),
    config: config.map((c, i) => validateId(`config[${i}]`, c)),
    annotations: { ...(annotations as Record<string, string>) },
  };
}

/** Runs capability providers on one host. */
export class ProviderSupervisor implements ProviderManager {
  readonly #ctx: WorkloadContext;
  readonly #cfg: SupervisorConfig;
  readonly #onOutput: ProviderSupervisorFactoryOptions["onOutput"];
  readonly #providers = new Map<string, ManagedProvider>();
  #closed = false;
  #defaultOci: OciRegistry | undefined;

  constructor(ctx: WorkloadContext, cfg: SupervisorConfig, onOutput?: ProviderSupervisorFactoryOptions["onOutput"]) {
    this.#ctx = ctx;
    this.#cfg = cfg;
    this.#onOutput = onOutput;
  }

  /**
   * `provider.start.{host}`: checks the reference with the host's admission (file-load rule, then the policy service;
   * docs/security.md), resolves it and the provider's configs, spawns the process and replies
   * `successfully started provider` once it runs. Emits `provider_started`, or `provider_start_failed` and replies
   * with the error. A provider id that is `failed` here is replaced; any other existing one is an error.
   */
  async handleStart(payload: Uint8Array): Promise<CtlResponse> {
    if (this.#closed) throw new TrellisError(ErrorCode.IllegalState, "the host is stopping");
    const cmd = parseStartProvider(payload);
    const existing = this.#providers.get(cmd.provider_id);
    if (existing && existing.status !== "failed") {
      throw new TrellisError(ErrorCode.AlreadyExists, "provider with that ID is already running", { details: { provider_id: cmd.provider_id } });
    }
    if (existing) this.#providers.delete(cmd.provider_id);
    let mp: ManagedProvider | undefined;
    try {
      // Admission first (docs/security.md): nothing is stat'ed, read or spawned for a refused reference.
      const oci = this.#ctx.oci ?? (this.#defaultOci ??= new OciRegistry(compileOciOptions({ cacheDir: this.#ctx.cacheDir })));
      const target = classifyProviderRef(cmd.provider_ref, process.cwd(), this.#cfg.firstPartyDir, oci.config.builtinAliases);
      let file = target.kind === "file" ? this.#ctx.admission.checkProviderFile(cmd.provider_ref, target.file) : target.file;
      await this.#ctx.admission.startProvider({ providerId: cmd.provider_id, imageRef: cmd.provider_ref, annotations: cmd.annotations });
      // an OCI provider archive is pulled (digest-verified, cached by content) only once the start is admitted
      if (target.kind === "oci") file = (await pullProvider(oci, target.ref)).file;
      const command = providerCommand(cmd.provider_ref, target, file);
      const claims = checkProviderClaims(command.file, `provider ${cmd.provider_id} (${cmd.provider_ref})`, this.#ctx.claims);
      await this.#ctx.config.resolve(cmd.config);
      mp = new ManagedProvider(
        { id: cmd.provider_id, ref: cmd.provider_ref, command, configNames: cmd.config, annotations: cmd.annotations, claims },
        this.#ctx,
        this.#cfg,
        this.#onOutput,
      );
      this.#providers.set(cmd.provider_id, mp);
      await mp.start();
    } catch (err) {
      const e = TrellisError.from(err, ErrorCode.Provider);
      if (!mp) {
        this.#ctx.events.publish(EventType.ProviderStartFailed, {
          provider_ref: cmd.provider_ref,
          provider_id: cmd.provider_id,
          host_id: this.#ctx.hostId,
          error: e.message,
          link_name: "default",
        });
      }
      throw e;
    }
    this.#ctx.specs.setUrl(cmd.provider_id, cmd.provider_ref).catch((err: unknown) =>
      this.#ctx.logger.warn("cannot record the provider in lattice data", { provider_id: cmd.provider_id, error: String(err) }),
    );
    return ok("successfully started provider");
  }

  /**
   * `provider.stop.{host}`: graceful shutdown, then SIGKILL after `shutdownDelayMs`; replies once the process is gone.
   * @throws NotFoundError-coded TrellisError `provider with that ID is not running`.
   */
  async handleStop(payload: Uint8Array): Promise<CtlResponse> {
    const body = parseObjectBody(payload, "provider.stop");
    const id = validateId("provider_id", body.provider_id ?? body.provider_ref);
    const mp = this.#providers.get(id);
    if (!mp || mp.status === "stopping") {
      throw new TrellisError(ErrorCode.NotFound, "provider with that ID is not running", { details: { provider_id: id } });
    }
    await mp.stop("stop");
    this.#providers.delete(id);
    return ok("successfully stopped provider");
  }

  /** Every supervised provider, with its status (reference §1.4 `ProviderDescription`). */
  inventory(): ProviderDescription[] {
    return [...this.#providers.values()].map((p) => p.describe()).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** A snapshot of one provider (pid, instance id, starts, last error), or undefined. For tests and diagnostics. */
  snapshot(id: string): ProviderSnapshot | undefined {
    return this.#providers.get(id)?.snapshot();
  }

  /** Stops every provider (in parallel) with reason `host_stopped`. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#providers.values()];
    await Promise.allSettled(all.map((p) => p.stop("host_stopped")));
    this.#providers.clear();
  }
}
