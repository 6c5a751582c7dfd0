/**
 * The reconciler lease: one active reconciler per lattice (ADR 0012). A single JetStream KV key
 * (`TRELLIS_RECONCILER_{lattice}` / `lease`, names in src/core/subjects.ts) written only with revision-checked
 * create/update, so two contenders can never both win the same revision.
 *
 * nats-server 2.9.10 has no per-key TTL, so expiry is by observation, not by the server:
 * - the **holder** renews (revision-checked update) every `renewIntervalMs`; it counts itself the holder only until
 *   `ttlMs × 0.8` after it *sent* its last successful renewal, and steps down as soon as a renewal is refused
 *   (someone else wrote the key) or that time passes without a successful one;
 * - a **contender** polls the key every `checkIntervalMs` and notes, on its own monotonic clock, when it last saw the
 *   revision change; once the revision has stood still for `ttlMs`, it takes the lease over with an update at the
 *   revision it saw (term + 1). Only one contender's update at that revision can succeed.
 *
 * Clock offsets between machines do not matter (each side measures intervals on its own monotonic clock); the
 * holder's margin (20 % of the TTL plus the contender's poll delay) covers scheduling delays. The `renewed_at`
 * timestamp in the value is for people and for {@link readLease}, never used to decide.
 *
 * A holder that stops gracefully deletes the key at its revision: contenders take over at their next poll.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { InvalidArgumentError } from "../../core/errors.ts";
import { validateId } from "../../core/ids.ts";
import { type Logger, silentLogger } from "../../core/logger.ts";
import { RECONCILER_LEASE_KEY, reconcilerBucket } from "../../core/subjects.ts";
import { isRevisionConflict, liveValue, openBucket, putAtRevision } from "../../lattice/kv.ts";

/** Default lease time-to-live: 3 s. A dead holder is replaced 3–4 s after its last renewal. */
export const DEFAULT_LEASE_TTL_MS = 3_000;

/** The lease value (JSON in KV). */
export interface LeaseRecord {
  /** Id of the holding host (`N…`) or, for tests, any contender id. */
  holder: string;
  /** Incremented by every acquisition; a renewal keeps it. */
  term: number;
  /** RFC 3339: when this term began. */
  acquired_at: string;
  /** RFC 3339: the holder's last renewal (informative only). */
  renewed_at: string;
  /** The holder's TTL, in milliseconds. */
  ttl_ms: number;
}

/** Options of {@link Lease.open}. */
export interface LeaseOptions {
  /** Who contends: the host id. A subject token. */
  holderId: string;
  /** Time-to-live, in milliseconds (≥ 100). @default 3000 */
  ttlMs?: number;
  /** Renewal interval of the holder, in milliseconds. @default ttlMs / 3 */
  renewIntervalMs?: number;
  /** Poll interval of a contender, in milliseconds. @default ttlMs / 4 */
  checkIntervalMs?: number;
  /** Called when this contender becomes the holder. */
  onAcquired?: (lease: LeaseRecord) => void;
  /** Called when this contender stops being the holder (`reason`: `taken over`, `renewal failed`, `released`). */
  onLost?: (reason: string) => void;
  logger?: Logger;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parseLease(bytes: Uint8Array | undefined): LeaseRecord | undefined {
  if (!bytes) return undefined;
  try {
    const v = JSON.parse(decoder.decode(bytes)) as LeaseRecord;
    return typeof v.holder === "string" && typeof v.term === "number" ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Monotonic milliseconds. */
const mono = () => performance.now();

/**
 * A contender for the lattice's reconciler lease. {@link Lease.open} binds the bucket; {@link start} contends until
 * {@link stop}. {@link held} says whether this contender may act now.
 */
export class Lease {
  readonly #kv: KV;
  readonly #id: string;
  readonly #ttl: number;
  readonly #renewEvery: number;
  readonly #checkEvery: number;
  readonly #opts: LeaseOptions;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #busy = false;
  /** Last revision seen and when (monotonic) it was first seen. */
  #seenRev = -1;
  #seenAt = 0;
  #seen: LeaseRecord | undefined;
  /** While holding: our revision, term, and until when (monotonic) we may act. */
  #heldRev = 0;
  #heldTerm = 0;
  #heldSince = "";
  #validUntil = 0;

  private constructor(kv: KV, opts: LeaseOptions) {
    this.#kv = kv;
    this.#opts = opts;
    this.#id = validateId("holderId", opts.holderId);
    this.#ttl = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    if (!Number.isInteger(this.#ttl) || this.#ttl < 100) throw new InvalidArgumentError("ttlMs", `lease ttlMs must be an integer ≥ 100, got ${String(this.#ttl)}`);
    this.#renewEvery = opts.renewIntervalMs ?? Math.floor(this.#ttl / 3);
    this.#checkEvery = opts.checkIntervalMs ?? Math.floor(this.#ttl / 4);
    if (this.#renewEvery <= 0 || this.#renewEvery >= this.#ttl * 0.8) {
      throw new InvalidArgumentError("renewIntervalMs", `renewIntervalMs must be > 0 and < 80 % of ttlMs (${this.#ttl}), got ${this.#renewEvery}`);
    }
    this.#log = (opts.logger ?? silentLogger).child({ component: "reconciler-lease" });
  }

  /**
   * Opens (creating when missing) `TRELLIS_RECONCILER_{lattice}`.
   * @throws TrellisError `LATTICE_ERROR` when JetStream is unavailable; InvalidArgumentError for bad options.
   */
  static async open(nc: NatsConnection, lattice: string, opts: LeaseOptions): Promise<Lease> {
    return new Lease(await openBucket(nc, reconcilerBucket(validateId("lattice", lattice))), opts);
  }

  /** True while this contender holds the lease and its last renewal is recent enough to act on. */
  get held(): boolean {
    return this.#heldRev > 0 && mono() < this.#validUntil;
  }

  /** The lease as last read or written by this contender (undefined: none seen yet, or released). */
  get current(): LeaseRecord | undefined {
    return this.#seen;
  }

  /**
   * Starts contending (and renewing once held). Resolves once the first attempt is over — the lease is then held by
   * this contender if it was free — so that a host that is up can already be seen holding it. Idempotent.
   */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await this.#tick();
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => void this.#tick(), ms);
  }

  async #tick(): Promise<void> {
    if (this.#busy || !this.#running) return;
    this.#busy = true;
    try {
      if (this.#heldRev > 0) await this.#renew();
      else await this.#contend();
    } catch (err) {
      this.#log.debug("lease check failed", { error: (err as Error).message });
    } finally {
      this.#busy = false;
      this.#schedule(this.#heldRev > 0 ? this.#renewEvery : this.#checkEvery);
    }
  }

  async #contend(): Promise<void> {
    const entry = await this.#kv.get(RECONCILER_LEASE_KEY);
    const rev = entry?.revision ?? 0;
    if (rev !== this.#seenRev) {
      this.#seenRev = rev;
      this.#seenAt = mono();
    }
    const value = parseLease(liveValue(entry));
    this.#seen = value;
    if (value && value.holder !== this.#id && mono() - this.#seenAt < this.#ttl) return;
    // Free, released, malformed, ours from an earlier life, or unchanged for a whole TTL: take it at that revision.
    await this.#acquire(rev, (value?.term ?? 0) + 1, value);
  }

  async #acquire(rev: number, term: number, previous: LeaseRecord | undefined): Promise<void> {
    const now = new Date().toISOString();
    const record: LeaseRecord = { holder: this.#id, term, acquired_at: now, renewed_at: now, ttl_ms: this.#ttl };
    const sentAt = mono();
    try {
      this.#heldRev = await putAtRevision(this.#kv, RECONCILER_LEASE_KEY, encoder.encode(JSON.stringify(record)), rev);
    } catch (err) {
      if (isRevisionConflict(err)) return; // another contender won this revision
      throw err;
    }
    this.#validUntil = sentAt + this.#ttl * 0.8;
    this.#heldTerm = term;
    this.#heldSince = now;
    this.#seen = record;
    this.#log.info("reconciler lease acquired", { term, previous_holder: previous?.holder ?? null });
    this.#opts.onAcquired?.(record);
  }

  async #renew(): Promise<void> {
    const now = new Date().toISOString();
    const record: LeaseRecord = { holder: this.#id, term: this.#heldTerm, acquired_at: this.#heldSince, renewed_at: now, ttl_ms: this.#ttl };
    const sentAt = mono();
    try {
      this.#heldRev = await putAtRevision(this.#kv, RECONCILER_LEASE_KEY, encoder.encode(JSON.stringify(record)), this.#heldRev);
      this.#validUntil = sentAt + this.#ttl * 0.8;
      this.#seen = record;
    } catch (err) {
      if (isRevisionConflict(err)) return this.#lose("taken over");
      if (mono() >= this.#validUntil) return this.#lose("renewal failed");
      throw err;
    }
    if (mono() >= this.#validUntil) this.#lose("renewal failed");
  }

  #lose(reason: string): void {
    if (this.#heldRev === 0) return;
    this.#heldRev = 0;
    this.#validUntil = 0;
    this.#seenRev = -1;
    this.#log.info("reconciler lease lost", { reason, term: this.#heldTerm });
    this.#opts.onLost?.(reason);
  }

  /**
   * Stops contending; a holder deletes the key at its revision, so that another contender takes over at once.
   * Idempotent.
   */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    while (this.#busy) await new Promise((r) => setTimeout(r, 5));
    if (this.#heldRev === 0) return;
    const rev = this.#heldRev;
    this.#lose("released");
    try {
      await this.#kv.delete(RECONCILER_LEASE_KEY, { previousSeq: rev });
    } catch (err) {
      this.#log.debug("cannot release the reconciler lease", { error: (err as Error).message });
    }
  }
}

/**
 * Reads the lattice's lease: the record when a live one exists, else undefined. Read-only (the bucket is created when
 * missing).
 * @throws TrellisError `LATTICE_ERROR` when JetStream is unavailable.
 */
export async function readLease(nc: NatsConnection, lattice: string): Promise<LeaseRecord | undefined> {
  const kv = await openBucket(nc, reconcilerBucket(validateId("lattice", lattice)));
  return parseLease(liveValue(await kv.get(RECONCILER_LEASE_KEY)));
}
