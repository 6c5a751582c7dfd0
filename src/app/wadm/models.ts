/**
 * The version history of applications, as wadm keeps it (wadm `crates/wadm/src/model/mod.rs` `StoredManifest`:
 * versions in put order, the last one "current", at most one "deployed"), in JetStream KV bucket
 * `TRELLIS_APP_VERSIONS_{lattice}` (src/core/subjects.ts), key = app name. The app record of src/app/store.ts
 * (`TRELLIS_APPS_{lattice}`: what is deployed and what it owns) is left as it is; an app that only has an app record
 * (deployed by an older `trellis app deploy`) reads as one deployed version ({@link fromAppRecord}).
 * ADR 0013.
 * @module
 */
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { ErrorCode, TrellisError } from "../../core/errors.ts";
import { validateId } from "../../core/ids.ts";
import { appVersionsBucket } from "../../core/subjects.ts";
import { isRevisionConflict, liveValue, openBucket, putAtRevision } from "../../lattice/kv.ts";
import type { AppRecord } from "../store.ts";

/** One stored version of an application. */
export interface ModelVersion {
  /** `metadata.annotations.version` (a ULID is put there when a manifest came without one, as wadm does). */
  version: string;
  /** The manifest document, version annotation included. */
  manifest: Record<string, unknown>;
  /** RFC 3339: when this version was put. */
  put_at: string;
}

/** What is stored per application in `TRELLIS_APP_VERSIONS_{lattice}`. */
export interface StoredModel {
  name: string;
  /** Oldest first; the last one is the current version. */
  versions: ModelVersion[];
  /** The version the lattice should run, or null (put but not deployed, or undeployed). */
  deployed_version: string | null;
  /** Why the last deploy or undeploy request could not be applied; cleared by the next one. */
  last_error?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * A ULID (26 Crockford base-32 characters: 48-bit time in ms, 80 random bits), the version wadm gives a manifest
 * put without one. Lexically sorted by time.
 */
export function ulid(now = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(16);
  let rest = "";
  for (let i = 0; i < 16; i++) rest += CROCKFORD[rnd[i]! % 32]!;
  return time + rest;
}

/** The current (last put) version of a model. */
export function currentVersion(m: StoredModel): ModelVersion {
  const v = m.versions[m.versions.length - 1];
  if (!v) throw new TrellisError(ErrorCode.Internal, `application ${m.name} has no stored version`);
  return v;
}

/** A model for an app that only has an app record: its one version, deployed unless the undeploy is unfinished. */
export function fromAppRecord(r: AppRecord): StoredModel {
  return {
    name: r.name,
    versions: [{ version: r.version, manifest: r.manifest, put_at: r.deployed_at }],
    deployed_version: r.state === "undeploying" ? null : r.version,
  };
}

/** The versions bucket of one lattice. Writes are revision-checked. */
export class ModelStore {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  /**
   * Opens (creating when missing) `TRELLIS_APP_VERSIONS_{lattice}`.
   * @throws TrellisError `LATTICE_ERROR` when JetStream is unavailable; InvalidArgumentError for a bad lattice name.
   */
  static async open(nc: NatsConnection, lattice: string): Promise<ModelStore> {
    return new ModelStore(await openBucket(nc, appVersionsBucket(validateId("lattice", lattice))));
  }

  /**
   * The model of `name` and its KV revision; `model` undefined when none is stored (then `revision` is the key's
   * last revision counting delete markers, what {@link put} needs to create it).
   * @throws TrellisError `INTERNAL` when the stored value is malformed.
   */
  async get(name: string): Promise<{ model: StoredModel | undefined; revision: number }> {
    const entry = await this.#kv.get(validateId("app name", name));
    const bytes = liveValue(entry);
    if (!bytes || !entry) return { model: undefined, revision: entry?.revision ?? 0 };
    return { model: parseModel(name, bytes), revision: entry.revision };
  }

  /**
   * Writes `model` if its key is still at `revision`.
   * @returns the new revision.
   * @throws TrellisError `ALREADY_EXISTS` when another request changed the application in between.
   */
  async put(model: StoredModel, revision: number): Promise<number> {
    try {
      return await putAtRevision(this.#kv, validateId("app name", model.name), encoder.encode(JSON.stringify(model)), revision);
    } catch (err) {
      if (isRevisionConflict(err)) {
        throw new TrellisError(ErrorCode.AlreadyExists, `application ${model.name} was changed by another request meanwhile; retry`, {
          details: { app: model.name },
          cause: err,
        });
      }
      throw TrellisError.from(err, ErrorCode.Lattice);
    }
  }

  /** Removes every version of `name`. */
  async delete(name: string): Promise<void> {
    await this.#kv.purge(validateId("app name", name));
  }

  /** Every stored model, sorted by name; malformed entries are skipped. */
  async list(): Promise<StoredModel[]> {
    const names: string[] = [];
    for await (const k of await this.#kv.keys()) names.push(k);
    const out: StoredModel[] = [];
    for (const n of names.sort()) {
      try {
        const { model } = await this.get(n);
        if (model) out.push(model);
      } catch {
        // not a model
      }
    }
    return out;
  }
}

function parseModel(name: string, bytes: Uint8Array): StoredModel {
  try {
    const v = JSON.parse(decoder.decode(bytes)) as StoredModel;
    if (typeof v !== "object" || v === null || !Array.isArray(v.versions) || v.versions.length === 0) throw new Error("missing versions");
    return v;
  } catch (err) {
    throw new TrellisError(ErrorCode.Internal, `the stored versions of application ${name} are malformed: ${(err as Error).message}`, { cause: err });
  }
}
