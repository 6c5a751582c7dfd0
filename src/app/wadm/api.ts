/**
 * wadm's model operations — put, get, list, versions, del, deploy, undeploy, status — with wadm's replies
 * (wasmCloud/wadm@589e98b3 `crates/wadm/src/server/handlers.rs`), on Trellis' app store and planner: versions are
 * kept in `TRELLIS_APP_VERSIONS_{lattice}` (./models.ts); deploying and undeploying call the public
 * {@link deployApp} / {@link undeployApp} of src/app, after the reply, one at a time per app (wadm also answers
 * `acknowledged` before its scalers act). Used by the NATS server (./server.ts) and by `trellis app get|history|
 * put|delete`. docs/apps.md "wadm API"; ADR 0013.
 * @module
 */
import type { CtlClient } from "../../control/client.ts";
import { TrellisError } from "../../core/errors.ts";
import { type Logger, silentLogger } from "../../core/logger.ts";
import { type AppStatusResult, deployApp, getAppStatus, listApps, undeployApp } from "../deploy.ts";
import { type AppManifest, parseManifest, parseManifestText } from "../manifest.ts";
import { AppStore } from "../store.ts";
import { ModelStore, type StoredModel, currentVersion, fromAppRecord, ulid } from "./models.ts";
import { statusInfo, wadmStatus, wadmStatusFromApp } from "./status.ts";
import type {
  DeleteModelResponse,
  DeployModelResponse,
  ErrorReply,
  GetModelResponse,
  ListModelsResponse,
  ModelSummary,
  PutModelResponse,
  StatusResponse,
  VersionResponse,
  WadmStatus,
} from "./types.ts";

/** wadm's `LATEST_VERSION`: deploys the current version; not allowed as a version. */
export const LATEST_VERSION = "latest";
const YAML_MIME = "application/yaml";
const JSON_MIME = "application/json";

/** An error reply, `{ result: "error", message }` (wadm `send_error`). */
export function errorReply(message: string): ErrorReply {
  return { result: "error", message };
}

/** Options of {@link WadmApi}. */
export interface WadmApiOptions {
  /** Structured logger. @default silent */
  logger?: Logger;
  /** Clock, for tests. @default () => new Date() */
  now?: () => Date;
}

/**
 * Parses a request body that is empty or a JSON object whose `version` (when present) is a string or null.
 * @throws Error naming what was wrong (turned into wadm's "Unable to parse … request" reply).
 */
export function parseVersionBody(payload: Uint8Array): { version?: string } {
  if (payload.length === 0) return {};
  const v: unknown = JSON.parse(new TextDecoder().decode(payload));
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("expected a JSON object");
  const version = (v as Record<string, unknown>).version;
  if (version === undefined || version === null) return {};
  if (typeof version !== "string") throw new Error(`version: expected a string, got ${JSON.stringify(version)}`);
  return { version };
}

/** The model operations of one lattice. Build one per server (or per CLI command) with {@link WadmApi.open}. */
export class WadmApi {
  readonly client: CtlClient;
  readonly #models: ModelStore;
  readonly #apps: AppStore;
  readonly #logger: Logger;
  readonly #now: () => Date;
  /** Per app: the chain of deploy / undeploy applies started by this instance. */
  readonly #applying = new Map<string, Promise<void>>();

  private constructor(client: CtlClient, models: ModelStore, apps: AppStore, opts: WadmApiOptions) {
    this.client = client;
    this.#models = models;
    this.#apps = apps;
    this.#logger = (opts.logger ?? silentLogger).child({ component: "wadm" });
    this.#now = opts.now ?? (() => new Date());
  }

  /**
   * Opens the stores of `client.lattice`.
   * @throws TrellisError `LATTICE_ERROR` when JetStream is unavailable.
   */
  static async open(client: CtlClient, opts: WadmApiOptions = {}): Promise<WadmApi> {
    const [models, apps] = await Promise.all([ModelStore.open(client.nc, client.lattice), AppStore.open(client.nc, client.lattice)]);
    return new WadmApi(client, models, apps, opts);
  }

  /** The stored model of `name`, or one read from its app record; revision for a write. */
  async #load(name: string): Promise<{ model: StoredModel | undefined; revision: number }> {
    const got = await this.#models.get(name);
    if (got.model) return got;
    const rec = await this.#apps.get(name);
    return { model: rec ? fromAppRecord(rec.record) : undefined, revision: got.revision };
  }

  /** Resolves when every deploy / undeploy this instance started for `name` (or for every app) has been applied. */
  async idle(name?: string): Promise<void> {
    if (name !== undefined) await this.#applying.get(name);
    else await Promise.all(this.#applying.values());
  }

  /** Runs `fn` after the previous apply of `name`; its failure is recorded in the model's `last_error`. */
  #schedule(name: string, what: string, fn: () => Promise<void>): void {
    const prev = this.#applying.get(name) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        await fn();
      } catch (err) {
        const e = TrellisError.from(err);
        this.#logger.warn(`wadm ${what} could not be applied`, { app: name, code: e.code, error: e.message });
        await this.#recordError(name, `${what}: ${e.message}`).catch(() => undefined);
      }
    });
    this.#applying.set(name, next);
    void next.then(() => {
      if (this.#applying.get(name) === next) this.#applying.delete(name);
    });
  }

  async #recordError(name: string, message: string): Promise<void> {
    const { model, revision } = await this.#models.get(name);
    if (model) await this.#models.put({ ...model, last_error: message }, revision);
  }

  /**
   * `model.put`: stores a new version. The body is YAML or JSON (by the `Content-Type` header when given, as wadm:
   * `application/yaml` or `application/json`, anything else is refused). A manifest without a `version` annotation
   * gets a ULID. Errors: unparseable or invalid manifest, a version that exists already.
   */
  async put(body: Uint8Array | string, contentType?: string): Promise<PutModelResponse | ErrorReply> {
    if (contentType !== undefined && contentType !== YAML_MIME && contentType !== JSON_MIME) {
      return errorReply(`Unsupported content type ${contentType} given. Wadm supports YAML and JSON`);
    }
    let manifest: AppManifest;
    try {
      const text = typeof body === "string" ? body : new TextDecoder().decode(body);
      if (!text.trim()) return errorReply("Unable to parse manifest: the body is empty");
      manifest = parseManifestText(text, "manifest").manifest;
    } catch (err) {
      return errorReply(`Unable to parse manifest: ${(err as Error).message}`);
    }
    let raw = manifest.raw;
    let version = manifest.version;
    if (version === undefined) {
      version = ulid(this.#now().getTime());
      const meta = { ...(raw.metadata as Record<string, unknown>) };
      meta.annotations = { ...((meta.annotations as Record<string, unknown> | undefined) ?? {}), version };
      raw = { ...raw, metadata: meta };
    }
    const name = manifest.name;
    try {
      const { model, revision } = await this.#load(name);
      if (model?.versions.some((v) => v.version === version)) return errorReply(`Manifest version ${version} already exists`);
      const next: StoredModel = model
        ? { ...model, versions: [...model.versions, { version, manifest: raw, put_at: this.#now().toISOString() }] }
        : { name, versions: [{ version, manifest: raw, put_at: this.#now().toISOString() }], deployed_version: null };
      await this.#models.put(next, revision);
      return {
        result: next.versions.length === 1 ? "created" : "newversion",
        total_versions: next.versions.length,
        current_version: version,
        message: `Successfully put manifest ${name} ${version}`,
        name,
      };
    } catch (err) {
      return errorReply(TrellisError.from(err).message);
    }
  }

  /** `model.get.{name}`: the current version's manifest, or `version`'s. */
  async get(name: string, version?: string): Promise<GetModelResponse | ErrorReply> {
    const { model } = await this.#load(name);
    if (!model) return { result: "notfound", message: `Application with the name ${name} not found` };
    if (version === undefined) return { result: "success", message: `Successfully fetched application ${name}`, manifest: currentVersion(model).manifest };
    const v = model.versions.find((x) => x.version === version);
    if (!v) return { result: "notfound", message: `Application ${name} with version ${version} doesn't exist` };
    return { result: "success", message: `Successfully fetched application ${name} ${version}`, manifest: v.manifest };
  }

  /** `model.versions.{name}`: every version in put order, the deployed one marked. */
  async versions(name: string): Promise<VersionResponse> {
    const { model } = await this.#load(name);
    if (!model) return { result: "notfound", message: `Application with the name ${name} not found`, versions: [] };
    return {
      result: "success",
      message: `Successfully fetched versions for application ${name}`,
      versions: model.versions.map((v) => ({ version: v.version, deployed: v.version === model.deployed_version })),
    };
  }

  /** Every model: stored ones and apps that only have an app record. */
  async #all(): Promise<StoredModel[]> {
    const stored = await this.#models.list();
    const names = new Set(stored.map((m) => m.name));
    const extra = (await this.#apps.list()).filter((r) => !names.has(r.name)).map(fromAppRecord);
    return [...stored, ...extra].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** `model.get` without a name: every application with its status (one lattice observation for all). */
  async list(): Promise<ListModelsResponse> {
    const models = await this.#all();
    const deployed = models.some((m) => m.deployed_version !== null);
    const statuses = new Map<string, AppStatusResult>();
    if (deployed) for (const s of await listApps(this.client)) statuses.set(s.app, s);
    const summary = (m: StoredModel): ModelSummary => {
      const st = this.#statusOf(m, statuses.get(m.name));
      const cur = currentVersion(m);
      const meta = cur.manifest.metadata as { annotations?: Record<string, unknown> } | undefined;
      const description = meta?.annotations?.description;
      return {
        name: m.name,
        version: cur.version,
        description: typeof description === "string" ? description : null,
        deployed_version: m.deployed_version,
        detailed_status: st,
        status: st.status.type === "waiting" ? "undeployed" : st.status.type,
        status_message: st.status.message ?? "",
      };
    };
    return { result: "success", message: "Successfully fetched list of applications", models: models.map(summary) };
  }

  /** wadm status of one model given Trellis' status of its app record (undefined: no record). */
  #statusOf(m: StoredModel, s: AppStatusResult | undefined): WadmStatus {
    if (m.deployed_version === null) return wadmStatus(statusInfo("undeployed", m.last_error ?? ""));
    const busy = this.#applying.has(m.name);
    if (!s || s.version !== m.deployed_version || busy) {
      if (m.last_error && !busy) return wadmStatus(statusInfo("failed", m.last_error));
      return wadmStatus(statusInfo("reconciling", `deploying version ${m.deployed_version}`));
    }
    const v = m.versions.find((x) => x.version === m.deployed_version);
    if (!v) return wadmStatus(statusInfo(s.status, s.message));
    return wadmStatusFromApp(s, parseManifest(v.manifest).manifest);
  }

  /** `model.status.{name}`. An unknown name answers `notfound` (wadm answers `ok` / `undeployed`). */
  async status(name: string): Promise<StatusResponse | ErrorReply> {
    const { model } = await this.#load(name);
    if (!model) return { result: "notfound", message: `Application with the name ${name} not found` };
    let s: AppStatusResult | undefined;
    if (model.deployed_version !== null && (await this.#apps.get(name))) s = await getAppStatus(this.client, name);
    return { result: "ok", message: `Successfully fetched status for application ${name}`, status: this.#statusOf(model, s) };
  }

  /**
   * `model.deploy.{name}`: marks `version` (default, or `latest`: the current one) deployed and applies it with
   * {@link deployApp} after the reply.
   */
  async deploy(name: string, version?: string): Promise<DeployModelResponse | ErrorReply> {
    const { model, revision } = await this.#load(name);
    if (!model) return { result: "notfound", message: `Application with the name ${name} not found`, name, version: version ?? null };
    const chosen = version === undefined || version === LATEST_VERSION ? currentVersion(model) : model.versions.find((v) => v.version === version);
    if (!chosen) {
      return { result: "error", message: `Application with the name '${name}' does not have a version '${version}' to deploy`, name, version: version ?? null };
    }
    let manifest: AppManifest;
    try {
      manifest = parseManifest(chosen.manifest).manifest;
    } catch (err) {
      return errorReply(`stored version ${chosen.version} of ${name} no longer validates: ${(err as Error).message}`);
    }
    const next: StoredModel = { ...model, deployed_version: chosen.version };
    delete next.last_error;
    try {
      await this.#models.put(next, revision);
    } catch (err) {
      return { result: "error", message: TrellisError.from(err).message, name, version: chosen.version };
    }
    this.#schedule(name, `deploy of ${chosen.version}`, async () => {
      await deployApp(this.client, manifest, { logger: this.#logger });
    });
    return { result: "acknowledged", message: `Successfully deployed application ${name} ${chosen.version}`, name, version: chosen.version };
  }

  /** Removes the app from the lattice with {@link undeployApp} after the reply; a missing app record is not an error. */
  #scheduleUndeploy(name: string): void {
    this.#schedule(name, "undeploy", async () => {
      if (!(await this.#apps.get(name))) return;
      const r = await undeployApp(this.client, name, { logger: this.#logger });
      if (!r.removed) throw new TrellisError("APPLICATION_ERROR", r.failures.map((f) => `${f.action}: ${f.message}`).join("; "));
    });
  }

  /** `model.undeploy.{name}`: clears the deployed version and removes what the app runs; its versions stay. */
  async undeploy(name: string): Promise<DeployModelResponse | ErrorReply> {
    const { model, revision } = await this.#load(name);
    if (!model) return { result: "notfound", message: `Application with the name ${name} not found`, name, version: null };
    if (model.deployed_version === null) {
      this.#scheduleUndeploy(name);
      return { result: "acknowledged", message: `Application ${name} was already undeployed`, name, version: null };
    }
    const next: StoredModel = { ...model, deployed_version: null };
    delete next.last_error;
    try {
      await this.#models.put(next, revision);
    } catch (err) {
      return { result: "error", message: TrellisError.from(err).message, name, version: null };
    }
    this.#scheduleUndeploy(name);
    return { result: "acknowledged", message: `Successfully undeployed application ${name}`, name, version: null };
  }

  /**
   * `model.del.{name}`: without `version`, deletes every version and undeploys; with one, deletes that version
   * (undeploying when it was the deployed one; deleting the last version deletes the app).
   */
  async del(name: string, version?: string): Promise<DeleteModelResponse> {
    const { model, revision } = await this.#load(name);
    if (!model) return { result: "noop", message: `Application ${name} doesn't exist or was already deleted`, undeploy: false };
    try {
      if (version === undefined) {
        await this.#models.delete(name);
        this.#scheduleUndeploy(name);
        return { result: "deleted", message: `Successfully deleted application ${name}`, undeploy: true };
      }
      if (!model.versions.some((v) => v.version === version)) {
        return { result: "noop", message: `Application version ${version} doesn't exist`, undeploy: false };
      }
      const rest = model.versions.filter((v) => v.version !== version);
      if (rest.length === 0) {
        await this.#models.delete(name);
        this.#scheduleUndeploy(name);
        return { result: "deleted", message: `Successfully deleted last version of application ${name}`, undeploy: true };
      }
      const undeploy = model.deployed_version === version;
      await this.#models.put({ ...model, versions: rest, deployed_version: undeploy ? null : model.deployed_version }, revision);
      if (undeploy) this.#scheduleUndeploy(name);
      return { result: "deleted", message: `Successfully deleted version ${version} of application ${name}`, undeploy };
    } catch (err) {
      return { result: "error", message: `error when deleting application ${name}: ${TrellisError.from(err).message}`, undeploy: false };
    }
  }

  /**
   * Records `manifest` as deployed without applying it (what `trellis app deploy` calls after applying): adds its
   * version when new and marks it deployed, so `history` and the wadm API see CLI deploys.
   */
  async recordDeployed(manifest: AppManifest, version: string): Promise<void> {
    const { model, revision } = await this.#load(manifest.name);
    const at = this.#now().toISOString();
    const versions = model?.versions ?? [];
    const known = versions.find((v) => v.version === version);
    if (known && model?.deployed_version === version && model.last_error === undefined && (await this.#models.get(manifest.name)).model) return;
    const next: StoredModel = {
      name: manifest.name,
      versions: known ? versions.map((v) => (v.version === version ? { ...v, manifest: manifest.raw } : v)) : [...versions, { version, manifest: manifest.raw, put_at: at }],
      deployed_version: version,
    };
    await this.#models.put(next, revision);
  }

  /** Marks `name` undeployed without acting (what `trellis app undeploy` calls after removing the app). */
  async recordUndeployed(name: string): Promise<void> {
    const { model, revision } = await this.#models.get(name);
    if (!model || model.deployed_version === null) return;
    await this.#models.put({ ...model, deployed_version: null }, revision);
  }
}
