/**
 * How the component runtime gets a component into its workers (issue 3 §2–§3): the host's file-load rule for a
 * reference, the directories it may give as preopens, loading and compiling the bytes with their embedded claims
 * checked, fetching its secrets, and the spec the worker pool loads (limits, links, config, invocation policy). Also
 * the record the runtime keeps of each running component ({@link ManagedComponent}).
 * @module
 */
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { compileComponent, type CompiledComponent } from "./compile.ts";
import { checkComponentClaims } from "./claims.ts";
import { loadComponentBytes, resolveRef } from "./loader.ts";
import type { ResolvedPolicy } from "./policy.ts";
import type { Preopen } from "./preopens.ts";
import { buildLinkTable } from "./routing.ts";
import type { ComponentAvailability, WorkerPool } from "./worker-pool.ts";
import type { WorkloadContext } from "../host/workloads.ts";
import type { Admission } from "../policy/admission.ts";
import type { GuestSecrets } from "../secrets/client.ts";
import { isSecretName } from "../secrets/types.ts";
import type { ComponentMetadata, Token } from "../claims/index.ts";
import type { OciRegistry } from "../oci/registry.ts";

/** A component the runtime runs, as it keeps it. */
export interface ManagedComponent {
  id: string;
  imageRef: string;
  /** Its instance limit (`max_instances`). */
  count: number;
  annotations: Record<string, string>;
  /** Names of its named configs, `SECRET_…` names included, in the order given. */
  config: string[];
  /** `component_limits` (`max_linear_memory` in bytes, `max_execution_time` in ms), as given. */
  limits: Record<string, string>;
  compiled: CompiledComponent;
  /** Availability reported by the worker pool (ADR 0014). */
  status?: ComponentAvailability;
  /** Why it is `failed`. */
  error?: string;
  /** Verified embedded claims; undefined when unsigned. */
  claims?: Token<ComponentMetadata> | undefined;
  /** The component's secrets (its `SECRET_…` config names), sealed for its worker. */
  secrets?: GuestSecrets | undefined;
  /** Host directories given to the component (checked against the policy at start). */
  preopens: Preopen[];
}

/** Options of {@link ComponentLoader}: the runtime's resolved policy and services (the same objects it uses). */
export interface ComponentLoaderOptions extends Pick<WorkloadContext, "cacheDir" | "links" | "claims" | "secrets"> {
  policy: ResolvedPolicy;
  admission: Admission;
  oci: OciRegistry;
  pool: WorkerPool;
}

/** Admits, compiles and loads components for the runtime (it holds no state of its own). */
export class ComponentLoader {
  readonly #o: ComponentLoaderOptions;

  constructor(o: ComponentLoaderOptions) {
    this.#o = o;
  }

  /**
   * The host's file-load rule for `ref` (src/policy), before anything is read. OCI references need no file-load rule
   * (their artifacts are verified by digest).
   * @returns the path or URL to load from.
   * @throws LoadNotAllowedError; ComponentLoadError for an unsupported reference.
   */
  admit(ref: string): string {
    const { kind, location } = resolveRef(ref);
    // OCI artifacts are verified by digest (src/oci): no file-load rule; the policy service still decides the start.
    if (kind === "oci") return location;
    return this.#o.admission.checkComponentRef(ref, kind === "file" ? { kind: "file", path: location } : { kind: "url", url: location });
  }

  /**
   * Directories a component may be given as preopens: the same allow-list as loading files (the host's
   * `--allowed-path` directories, or anything with `--allow-file-load`; docs/security.md) plus `policy.preopenRoots`.
   */
  preopenRoots(): string[] {
    const load = this.#o.admission.load;
    return load.allowFileLoad ? ["/"] : [...this.#o.policy.preopenRoots, ...load.allowedPaths];
  }

  /**
   * Loads and compiles `location`, which {@link admit} returned for `ref` (never a reference it did not check), and
   * verifies its embedded claims against the host's claims policy (src/claims).
   * @param id the component id (named in errors).
   * @throws TrellisError `COMPONENT_LOAD_FAILED` (missing, unreadable, not a component, cannot be transpiled) or
   *   `PAYLOAD_TOO_LARGE` (larger than `policy.maxComponentBytes`); ClaimsError (`CLAIMS_INVALID`).
   */
  async compile(location: string, ref: string, id: string): Promise<{ compiled: CompiledComponent; claims: Token<ComponentMetadata> | undefined }> {
    const bytes = await loadComponentBytes(location, { maxBytes: this.#o.policy.maxComponentBytes, oci: this.#o.oci });
    const claims = checkComponentClaims(bytes, `component ${id} (${ref})`, this.#o.claims);
    return { compiled: await compileComponent(bytes, this.#o.cacheDir), claims };
  }

  /**
   * Fetches the secrets named by `SECRET_…` entries of the component's config list with its claims, sealed for its
   * worker (docs/adr/0017-secrets.md).
   * @returns undefined when the list names no secret.
   * @throws SecretsError naming the secret (no topic, unsigned component, missing reference, refused); TrellisError
   *   `SECRETS` when this host has no secrets support.
   */
  async secrets(configNames: string[], claims: Token<ComponentMetadata> | undefined, annotations: Record<string, string>): Promise<GuestSecrets | undefined> {
    if (!configNames.some(isSecretName)) return undefined;
    const client = this.#o.secrets;
    if (!client) throw new TrellisError(ErrorCode.Secrets, "this component names secrets, but this host has no secrets support");
    const bundle = await client.fetch(configNames, claims?.jwt, annotations["wasmcloud.dev/appspec"]);
    return bundle.sealForGuest(client.identity.xkey);
  }

  /**
   * Loads (or replaces the code of) `m` in the worker pool with `config` (its merged named config) and resolves once
   * it serves: its `component_limits` override the policy's memory and time limits, links are synced (up to 1 s)
   * first, and a link change that arrived while it loaded is pushed after.
   * @throws the worker pool's error (the component's instance could not be created, the runtime is closed).
   */
  async load(m: ManagedComponent, config: Record<string, string>): Promise<void> {
    const { policy, pool, links } = this.#o;
    const mem = Number(m.limits["max_linear_memory"] ?? NaN);
    const time = Number(m.limits["max_execution_time"] ?? NaN);
    // Links put on any host just before the start are included…
    await links.sync(1000).catch(() => undefined);
    await pool.load({
      componentId: m.id,
      dir: m.compiled.dir,
      meta: m.compiled.meta,
      maxInstances: m.count,
      maxMemoryBytes: mem > 0 ? mem : policy.maxMemoryBytes,
      timeoutMs: time > 0 ? time : policy.callTimeoutMs,
      links: buildLinkTable(links.linksFrom(m.id)),
      config,
      env: policy.env,
      invocationPolicy: this.#o.admission.invocationSpec({ componentId: m.id, imageRef: m.imageRef, annotations: m.annotations }),
      secrets: m.secrets,
      ...(m.preopens.length ? { preopens: m.preopens } : {}),
    });
    // …and a change that arrived while the worker was loading (when it had no table to update) is applied now.
    await pool.setLinks(m.id, buildLinkTable(links.linksFrom(m.id)));
  }
}
