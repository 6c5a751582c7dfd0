/**
 * Small helpers over JetStream KV (`@nats-io/kv` v3): open-or-create, and revision-checked writes.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import { ErrorCode, TimeoutError, TrellisError } from "../core/errors.ts";

/**
 * Opens a KV bucket, creating it (history 1, file storage) when it does not exist.
 * @throws TrellisError `LATTICE_ERROR` when JetStream is not enabled or the bucket cannot be created.
 */
export async function openBucket(nc: NatsConnection, name: string): Promise<KV> {
  try {
    return await new Kvm(nc).create(name, { history: 1 });
  } catch (err) {
    throw new TrellisError(
      ErrorCode.Lattice,
      `cannot open or create JetStream KV bucket ${name}: ${(err as Error).message} (is JetStream enabled on the NATS server? start it with -js)`,
      { cause: err },
    );
  }
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
   * Waits until the watch has applied every write made to the bucket before this call.
   * @param timeoutMs how long to wait. @default 2000
   * @throws TimeoutError when it does not catch up in time.
   */
  sync(timeoutMs?: number): Promise<void>;
  stop(): void;
}

/**
 * Watches every key of `kv` (last values first, then every change) and calls `onEntry` for each, in order.
 * Resolves once every entry that existed at the call has been applied.
 */
export async function watchBucket(kv: KV, onEntry: (e: KvEntry) => void, onEnd: (err: unknown) => void): Promise<BucketWatch> {
  let seen = 0;
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
  const initial = await lastRevision(kv);
  const iter = await kv.watch({ key: ">" });
  void (async () => {
    for await (const e of iter) {
      onEntry(e);
      mark(e.revision);
    }
  })().then(
    () => onEnd(undefined),
    (err: unknown) => onEnd(err),
  );
  await waitFor(initial, 30_000);
  return {
    seen: () => seen,
    sync: async (timeoutMs = 2000) => waitFor(await lastRevision(kv), timeoutMs),
    stop: () => iter.stop(),
  };
}
