/**
 * Small helpers over JetStream KV (`@nats-io/kv` v3): open-or-create, and revision-checked writes.
 * @module
 */
import type { NatsConnection, ServerInfo } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StoredMsg, jetstream } from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import { ErrorCode, InvalidArgumentError, JetStreamUnavailableError, TimeoutError, TrellisError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";

/** Default bound of each JetStream request made through {@link openBucket}'s handle, in ms: below the control client's 2000. */
export const DEFAULT_KV_TIMEOUT_MS = 1_500;

/** Options of {@link openBucket}. */
export interface OpenBucketOptions {
  /**
   * Replica count of a bucket this call creates (1–5). An existing bucket keeps its own count: it is bound as it is,
   * never updated (docs/nats-cluster.md). @default {@link defaultKvReplicas} of the connection
   */
  replicas?: number;
  /** Bound of each JetStream request (get, put, stream info…) through the returned handle, in ms. @default 1500 */
  timeoutMs?: number;
  /** Told when a default replica count of 3 had to fall back to 1. */
  logger?: Logger;
  /**
   * JetStream domain whose JetStream holds the bucket (API prefix `$JS.{domain}.API`), for a host on a leaf node
   * reaching the hub's JetStream (docs/nats-cluster.md, "Across sites"). @default the server's own JetStream
   */
  domain?: string;
}

/**
 * What the connected server says about its cluster (from its `INFO`, measured on nats-server 2.9.10): the cluster
 * name and the number of servers in it (`connect_urls` lists every member's client URL, itself included; a server
 * outside a cluster sends neither field).
 */
export function clusterOf(nc: NatsConnection): { name: string | undefined; servers: number; jetstream: boolean } {
  const info = nc.info as (ServerInfo & { cluster?: string; connect_urls?: string[] }) | undefined;
  const name = info?.cluster;
  const urls = info?.connect_urls ?? [];
  return { name, servers: name === undefined ? 1 : Math.max(1, urls.length), jetstream: info?.jetstream === true };
}

/**
 * The default replica count of a lattice bucket (docs/adr/0015-kv-replicas-and-jetstream-unavailable.md): 3 when the
 * connected server is in a cluster of 3 or more servers, else 1. (A JetStream account info, `$JS.API.INFO`, says
 * nothing about the cluster on 2.9.10; the server `INFO` does.)
 */
export function defaultKvReplicas(nc: NatsConnection): number {
  return clusterOf(nc).servers >= 3 ? 3 : 1;
}

/**
 * Checks a replica count: an integer 1–5 (JetStream's limit).
 * @throws InvalidArgumentError (`field`) otherwise.
 */
export function validateKvReplicas(value: unknown, field = "kvReplicas"): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 5) {
    throw new InvalidArgumentError(field, `${field} must be an integer from 1 to 5, got ${String(value)}`);
  }
  return value;
}

/**
 * Opens a KV bucket, creating it (history 1, file storage, `replicas`) when it does not exist. An existing bucket is
 * bound with the configuration it has (its replica count is honoured, not changed). When the replica count was the
 * default (not given) and the cluster cannot place 3 replicas (`insufficient resources`: fewer JetStream servers than
 * servers), the bucket is created with 1 replica and `logger` is warned.
 * @throws TrellisError `LATTICE_ERROR` when JetStream is not enabled or the bucket cannot be created;
 *   InvalidArgumentError for a bad `replicas`.
 */
export async function openBucket(nc: NatsConnection, name: string, opts: OpenBucketOptions = {}): Promise<KV> {
  const explicit = opts.replicas !== undefined;
  const replicas = explicit ? validateKvReplicas(opts.replicas, "replicas") : defaultKvReplicas(nc);
  const kvm = new Kvm(
    jetstream(nc, { timeout: opts.timeoutMs ?? DEFAULT_KV_TIMEOUT_MS, ...(opts.domain ? { domain: opts.domain } : {}) }),
  );
  const create = async (r: number): Promise<KV> => {
    try {
      return await kvm.create(name, { history: 1, replicas: r });
    } catch (err) {
      // Two hosts creating the bucket at once: the loser's add fails ("already in use", or on nats-server 2.9
      // "subjects overlap with an existing stream"); the bucket exists now, so bind it (after a moment, once).
      if (/already in use|subjects overlap/i.test(String((err as Error).message))) {
        await new Promise((res) => setTimeout(res, 50));
        return kvm.create(name, { history: 1, replicas: r });
      }
      throw err;
    }
  };
  try {
    try {
      return await create(replicas);
    } catch (err) {
      if (explicit || replicas === 1 || !/insufficient resources/i.test(String((err as Error).message))) throw err;
      opts.logger?.warn("cannot place a KV bucket on 3 JetStream servers; creating it with 1 replica", {
        bucket: name,
        error: String((err as Error).message),
      });
      return await create(1);
    }
  } catch (err) {
    throw new TrellisError(
      ErrorCode.Lattice,
      `cannot open or create JetStream KV bucket ${name} (replicas ${replicas}): ${(err as Error).message} (is JetStream enabled on the NATS server? start it with -js)`,
      { cause: err },
    );
  }
}

/** The replica count of an open bucket, as JetStream reports it. */
export async function bucketReplicas(kv: KV): Promise<number> {
  return (await kv.status()).replicas;
}

/** True when `err` is JetStream's "wrong last sequence" answer to a revision-checked write. */
export function isRevisionConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** A live entry's value, or undefined for a missing, deleted or purged key. */
export function liveValue(entry: KvEntry | null): Uint8Array | undefined {
  if (entry === null || entry.operation !== "PUT") return undefined;
  return entry.value;
}

/**
 * Writes `value` at `key` only if the key's last revision is still `revision` (0: the key has never been
 * written). Returns the new revision.
 * @throws JetStreamApiError with a wrong-last-sequence code on a conflict (see {@link isRevisionConflict}).
 */
export async function putAtRevision(kv: KV, key: string, value: Uint8Array, revision: number): Promise<number> {
  return kv.put(key, value, { previousSeq: revision });
}

/** The bucket's last stream sequence: every entry up to it has been written. */
export async function lastRevision(kv: KV): Promise<number> {
  const status = await kv.status();
  return status.streamInfo.state.last_seq;
}

/** A running watch of a whole bucket; see {@link watchBucket}. */
export interface BucketWatch {
  /** The highest revision this watch has applied. */
  seen(): number;
  /**
   * Waits until the watch has applied every write made to the bucket before this call. When the watch stalls (its
   * consumer was lost with a NATS node), the missing entries are read with JetStream direct gets, which any replica
   * answers without a stream leader, and the watch is started again in the background from the next revision it
   * needs. Without a stream leader, "every write" means every write the reachable replicas hold.
   * @param timeoutMs how long to wait. @default 2000
   * @throws TimeoutError when it does not catch up in time; JetStreamUnavailableError when the bucket's last revision
   *   cannot be read.
   */
  sync(timeoutMs?: number): Promise<void>;
  stop(): void;
}

/** Options of {@link watchBucket}. */
export interface WatchBucketOptions {
  /** A `sync` that has waited this long without the watch catching up restarts the watch, in ms. @default 400 */
  stallMs?: number;
  /** Told when the watch is restarted. */
  logger?: Logger;
}

/**
 * Watches every key of `kv` (last values first, then every change) and calls `onEntry` for each, in order, once per
 * revision (entries seen again after a restart are skipped). Resolves once every entry that existed at the call has
 * been applied.
 */
export async function watchBucket(
  kv: KV,
  onEntry: (e: KvEntry) => void,
  onEnd: (err: unknown) => void,
  opts: WatchBucketOptions = {},
): Promise<BucketWatch> {
  const stallMs = opts.stallMs ?? 400;
  let seen = 0;
  let stopped = false;
  let generation = 0;
  let iter: { stop(): void } | undefined;
  let restarting: Promise<void> | undefined;
  let waiters: { revision: number; resolve(): void }[] = [];
  const mark = (revision: number) => {
    if (revision <= seen) return;
    seen = revision;
    if (waiters.length === 0) return;
    const still: typeof waiters = [];
    for (const w of waiters) {
      if (w.revision <= revision) w.resolve();
      else still.push(w);
    }
    waiters = still;
  };
  const waitFor = (revision: number, timeoutMs: number) =>
    revision <= seen
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const waiter = {
            revision,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          };
          const timer = setTimeout(() => {
            waiters = waiters.filter((w) => w !== waiter);
            reject(
              new TimeoutError(`the KV watch did not reach revision ${revision} in ${timeoutMs} ms`, timeoutMs),
            );
          }, timeoutMs);
          waiters.push(waiter);
        });
  const start = async (): Promise<void> => {
    const gen = ++generation;
    const from = seen + 1;
    const it = await kv.watch(seen > 0 ? { key: ">", resumeFromRevision: from } : { key: ">" });
    if (stopped || gen !== generation) {
      it.stop();
      return;
    }
    iter?.stop();
    iter = it;
    void (async () => {
      for await (const e of it) {
        if (gen !== generation) break;
        if (e.revision <= seen) continue;
        onEntry(e);
        mark(e.revision);
      }
    })().then(
      () => {
        if (gen === generation && !stopped) onEnd(undefined);
      },
      (err: unknown) => {
        if (gen === generation && !stopped) onEnd(err);
      },
    );
  };
  const restart = (): Promise<void> => {
    restarting ??= start()
      .then(
        () => opts.logger?.info("KV watch restarted", { bucket: bucketName(kv), from_revision: seen + 1 }),
        (err: unknown) => opts.logger?.warn("cannot restart KV watch", { error: String(err) }),
      )
      .finally(() => (restarting = undefined));
    return restarting;
  };
  /**
   * Applies the entries after `seen` read with JetStream direct gets (any replica answers them), up to `target` (or,
   * when undefined, up to the last one the replicas hold). A replica behind `target` is asked again until `deadline`.
   */
  const catchUpDirect = async (target: number | undefined, deadline: number, timeoutMs: number): Promise<void> => {
    const toEntry = (kv as unknown as { smToEntry?: (sm: StoredMsg) => KvEntry }).smToEntry;
    if (typeof toEntry !== "function") throw new TrellisError(ErrorCode.Internal, "the KV handle cannot decode stored messages");
    while (target === undefined || seen < target) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new TimeoutError(`the KV watch did not reach revision ${target ?? "(last on the replicas)"} in ${timeoutMs} ms`, timeoutMs);
      }
      let sm: StoredMsg | null;
      try {
        sm = await withTimeout(directGetAfter(kv, seen + 1), Math.max(1, Math.min(LEADER_READ_MS, left)));
      } catch (err) {
        throw kvFailure(`cannot read KV bucket ${bucketName(kv)} from a replica`, err);
      }
      if (sm === null) {
        if (target === undefined) return;
        await new Promise((r) => setTimeout(r, 25));
        continue;
      }
      const e = toEntry.call(kv, sm);
      if (e.revision > seen) {
        onEntry(e);
        mark(e.revision);
      }
    }
  };
  const initial = await lastRevision(kv);
  await start();
  await waitFor(initial, 30_000);
  return {
    seen: () => seen,
    sync: async (timeoutMs = 2000) => {
      const deadline = Date.now() + timeoutMs;
      let target: number | undefined;
      try {
        target = await withTimeout(lastRevision(kv), Math.min(LEADER_READ_MS, timeoutMs));
      } catch (err) {
        if (!isJetStreamUnavailable(err)) throw kvFailure(`cannot read the last revision of KV bucket ${bucketName(kv)}`, err);
        // No stream leader (an election in progress): a replica tells whether anything after `seen` exists. It may
        // lag the old leader by the writes in flight when it died; new writes cannot complete until a leader exists.
        let next: number | undefined;
        try {
          next = await withTimeout(directNextRevision(kv, seen + 1), Math.max(1, Math.min(LEADER_READ_MS, deadline - Date.now())));
        } catch (e) {
          throw kvFailure(`cannot read the last revision of KV bucket ${bucketName(kv)}`, e);
        }
        if (next === undefined) return;
        target = undefined; // read up to whatever the replicas hold
      }
      if (target !== undefined && target <= seen) return;
      if (target !== undefined) {
        const first = Math.min(stallMs, Math.max(0, deadline - Date.now()));
        try {
          await waitFor(target, first);
          return;
        } catch (err) {
          if (Date.now() >= deadline) throw err;
        }
      }
      // The watch stalls: its consumer was lost with a NATS node, and a new one needs a stream leader, which an
      // election may not have yet. Read the missing entries with direct gets, which any replica answers, and start
      // the watch again in the background from the next revision it needs.
      void restart();
      await catchUpDirect(target, deadline, timeoutMs);
    },
    stop: () => {
      stopped = true;
      iter?.stop();
    },
  };
}

/** How long a read that needs the stream leader may take before a leaderless fallback is tried, in ms. */
const LEADER_READ_MS = 600;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new JetStreamUnavailableError(`no answer from JetStream within ${ms} ms`, { timeoutMs: ms })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The revision of the first entry at or after `from` (any key), read with a JetStream direct get, which any replica
 * of the bucket's stream answers without a leader; undefined when there is none.
 */
export async function directNextRevision(kv: KV, from: number): Promise<number | undefined> {
  const m = await directGetAfter(kv, from);
  return m === null ? undefined : m.seq;
}

/** The first stored entry at or after revision `from` (any key), by JetStream direct get; null when there is none. */
async function directGetAfter(kv: KV, from: number): Promise<StoredMsg | null> {
  const jsm = (kv as unknown as { jsm?: JetStreamManager }).jsm;
  if (jsm === undefined) throw new TrellisError(ErrorCode.Internal, "the KV handle has no JetStream manager");
  const name = bucketName(kv);
  return jsm.direct.getMessage(`KV_${name}`, { seq: from, next_by_subj: `$KV.${name}.>` });
}

/** True when `err` says JetStream did not answer or is unavailable (timeout, no responders, no quorum, 503). */
export function isJetStreamUnavailable(err: unknown): boolean {
  if (err instanceof JetStreamUnavailableError) return true;
  if (err instanceof TrellisError) return err.code === ErrorCode.Timeout;
  if (err instanceof JetStreamApiError) {
    const code = err.code as number;
    return code === 10008 || code === 10023 || err.status === 503 || /unavailable|leader|quorum/i.test(err.message);
  }
  const msg = err instanceof Error ? `${err.name} ${err.message}` : String(err);
  // "jetstream is not enabled" is what nats.js says to a publish no stream leader answers (503 no responders)
  return /timeout|timed out|no responders|503|unavailable|no quorum|leader|disconnect|connection closed|reconnect|not enabled/i.test(msg);
}

/**
 * A KV failure as a Trellis error: {@link JetStreamUnavailableError} when JetStream is unavailable, else
 * TrellisError `LATTICE_ERROR`. Trellis errors of other codes pass through.
 */
export function kvFailure(what: string, err: unknown): TrellisError {
  if (err instanceof TrellisError && err.code !== ErrorCode.Timeout) return err;
  const text = err instanceof Error ? err.message : String(err);
  return isJetStreamUnavailable(err)
    ? new JetStreamUnavailableError(`${what}: JetStream is unavailable (${text}); retry shortly`, undefined, { cause: err })
    : new TrellisError(ErrorCode.Lattice, `${what}: ${text}`, { cause: err });
}

/**
 * Runs `fn` with a deadline: the control reply for an operation on lattice data goes out before the client gives up
 * (ADR 0015). A failure that means JetStream is unavailable, or the deadline passing, becomes a
 * {@link JetStreamUnavailableError}; other errors pass through.
 * @param timeoutMs the deadline, in ms.
 */
export async function withKvDeadline<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new JetStreamUnavailableError(
            `${what}: JetStream did not answer within ${timeoutMs} ms (leader election or no quorum?); the operation may or may not have been applied, retry shortly`,
            { timeoutMs },
          ),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([fn(), deadline]);
  } catch (err) {
    if (err instanceof JetStreamUnavailableError) throw err;
    if (err instanceof TrellisError && err.code !== ErrorCode.Timeout && err.code !== ErrorCode.Lattice) throw err;
    if (isJetStreamUnavailable(err) || isJetStreamUnavailable((err as { cause?: unknown })?.cause)) throw kvFailure(what, (err as { cause?: unknown }).cause ?? err);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function bucketName(kv: KV): string {
  const b = (kv as unknown as { bucket?: unknown }).bucket;
  return typeof b === "string" ? b : "";
}
