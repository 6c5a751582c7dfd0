/**
 * Deployed apps in JetStream KV: bucket `TRELLIS_APPS_{lattice}` (built in src/core/subjects.ts), key = app name,
 * value = an {@link AppRecord} as JSON. Writes are revision-checked, so two deploys of one app from two machines
 * cannot overwrite each other unnoticed. docs/apps.md, "Where apps are stored".
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { type KV, KvWatchInclude } from "@nats-io/kv";
import { appsBucket } from "../core/subjects.ts";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { validateId } from "../core/ids.ts";
import { isRevisionConflict, liveValue, openBucket, putAtRevision } from "../lattice/kv.ts";
import type { AppliedState } from "./desired.ts";
import type { ApplyFailure } from "./planner.ts";

/** What is stored per app. Field names are snake_case, as the other lattice data. */
export interface AppRecord {
  name: string;
  /** `metadata.annotations.version`, else `sha256:` and 12 hex digits of the manifest's canonical JSON. */
  version: string;
  /** The manifest document as deployed (plain JSON). */
  manifest: Record<string, unknown>;
  /** RFC 3339: when this version was first deployed. */
  deployed_at: string;
  /** RFC 3339: last write of this record. */
  updated_at: string;
  /** What the app owns on the lattice (src/app/desired.ts). */
  applied: AppliedState;
  /** The last deploy or undeploy that sent requests. */
  last_apply: { at: string; actions: number; failures: ApplyFailure[] };
  /** `undeploying` after an undeploy that failed part-way; re-run `trellis app undeploy`. */
  state?: "deployed" | "undeploying";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The apps bucket of one lattice. */
export class AppStore {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  /**
   * Opens (creating when missing) `TRELLIS_APPS_{lattice}`.
   * @throws TrellisError `LATTICE_ERROR` when JetStream is unavailable.
   */
  static async open(nc: NatsConnection, lattice: string): Promise<AppStore> {
    return new AppStore(await openBucket(nc, appsBucket(validateId("lattice", lattice))));
  }

  /** The record of `name` and its KV revision; undefined when no such app is deployed. */
  async get(name: string): Promise<{ record: AppRecord; revision: number } | undefined> {
    const entry = await this.#kv.get(validateId("app name", name));
    const bytes = liveValue(entry);
    if (!bytes || !entry) return undefined;
    return { record: parseRecord(name, bytes), revision: entry.revision };
  }

  /**
   * The key's last KV revision, counting a delete or purge marker (0 when it was never written): what
   * {@link put} must be given to create an app that was undeployed before.
   */
  async lastRevision(name: string): Promise<number> {
    return (await this.#kv.get(validateId("app name", name)))?.revision ?? 0;
  }

  /**
   * Writes `record` if the key is still at `revision` (0: it must never have been written; after an undeploy use
   * {@link lastRevision}).
   * @returns the new revision.
   * @throws TrellisError `ALREADY_EXISTS` when another client wrote the app in between (re-run the command).
   */
  async put(record: AppRecord, revision: number): Promise<number> {
    try {
      return await putAtRevision(this.#kv, validateId("app name", record.name), encoder.encode(JSON.stringify(record)), revision);
    } catch (err) {
      if (isRevisionConflict(err)) {
        throw new TrellisError(ErrorCode.AlreadyExists, `app ${record.name} was changed by another client during this command; run it again`, {
          details: { app: record.name },
          cause: err,
        });
      }
      throw TrellisError.from(err, ErrorCode.Lattice);
    }
  }

  /**
   * Removes `name` (purge: nothing is kept); with `revision`, only if the key is still at it.
   * @throws TrellisError `ALREADY_EXISTS` when `revision` is given and another client wrote the app in between.
   */
  async delete(name: string, revision?: number): Promise<void> {
    try {
      await this.#kv.purge(validateId("app name", name), revision === undefined ? undefined : { previousSeq: revision });
    } catch (err) {
      if (isRevisionConflict(err)) {
        throw new TrellisError(ErrorCode.AlreadyExists, `app ${name} was changed by another client during this command; run it again`, {
          details: { app: name },
          cause: err,
        });
      }
      throw TrellisError.from(err, ErrorCode.Lattice);
    }
  }

  /**
   * Calls `onChange(name, revision)` for every later write or delete of an app record (not for what is stored now),
   * until the returned function is called.
   */
  async watch(onChange: (name: string, revision: number) => void): Promise<() => void> {
    const iter = await this.#kv.watch({ key: ">", include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const e of iter) onChange(e.key, e.revision);
    })().catch(() => undefined);
    return () => iter.stop();
  }

  /** Every stored app, sorted by name. A malformed entry is skipped. */
  async list(): Promise<AppRecord[]> {
    const names: string[] = [];
    for await (const k of await this.#kv.keys()) names.push(k);
    const out: AppRecord[] = [];
    for (const n of names.sort()) {
      try {
        const r = await this.get(n);
        if (r) out.push(r.record);
      } catch {
        // not an app record
      }
    }
    return out;
  }
}

function parseRecord(name: string, bytes: Uint8Array): AppRecord {
  try {
    const v = JSON.parse(decoder.decode(bytes)) as AppRecord;
    if (typeof v !== "object" || v === null || typeof v.version !== "string" || typeof v.manifest !== "object" || typeof v.applied !== "object") {
      throw new Error("missing fields");
    }
    return v;
  } catch (err) {
    throw new TrellisError(ErrorCode.Internal, `the stored record of app ${name} is malformed: ${(err as Error).message}`, { cause: err });
  }
}
