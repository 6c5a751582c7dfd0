/**
 * Bounds of a target under hostile callers (docs/protocol.md §7.1, docs/adr/0011-bounded-targets.md): how many
 * chunked uploads a target holds at once, how many bytes it buffers for them in total (allocated as data arrives,
 * never as declared), and the longest `trellis-timeout-ms` it honours.
 * @module
 */
import { ErrorCode, InvalidArgumentError, TrellisError } from "../core/errors.ts";

/** Default most chunked uploads one target process holds at once. */
export const DEFAULT_MAX_UPLOADS = 16;
/** Default most bytes buffered for chunked uploads at once, across all of them: 128 MiB (two 64 MiB bodies). */
export const DEFAULT_MAX_UPLOAD_BYTES = 128 * 1024 * 1024;
/** Default cap on a caller's `trellis-timeout-ms`, in milliseconds: 60 s. */
export const DEFAULT_MAX_CALL_TIMEOUT_MS = 60_000;
/** How long an upload or a chunked result may sit idle when the caller sent no `trellis-timeout-ms`: 30 s (capped). */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** Smallest growth step of an upload's buffer, in bytes (a buffer never grows past the declared total). */
const MIN_GROWTH = 64 * 1024;

/**
 * Limits a target applies to its callers. Every field is optional; a host sets them with `--max-uploads`,
 * `--max-upload-bytes`, `--max-call-timeout-ms` (`TRELLIS_MAX_UPLOADS`, `TRELLIS_MAX_UPLOAD_BYTES`,
 * `TRELLIS_MAX_CALL_TIMEOUT_MS`); a provider with `RunOptions.invocationLimits` of the provider SDK.
 */
export interface InvocationLimits {
  /** Most chunked uploads held at once; one more is refused at once with `TOO_MANY_UPLOADS`. 0 refuses every chunked request. @default 16 */
  maxUploads?: number;
  /**
   * Most bytes buffered for chunked uploads at once, in bytes, counted as they arrive. A chunk that would pass it
   * drops its upload with `UPLOAD_BUFFER_FULL`; a declared body longer than it is refused at once with
   * `PAYLOAD_TOO_LARGE`. @default 134217728 (128 MiB)
   */
  maxUploadBytes?: number;
  /**
   * Longest `trellis-timeout-ms` honoured, in milliseconds: larger values are cut to it. It bounds how long an upload
   * (from its first chunk), a chunked result and the `timeoutMs` a handler sees last. @default 60000
   */
  maxCallTimeoutMs?: number;
}

/** {@link InvocationLimits} with defaults filled and values checked. */
export interface ResolvedInvocationLimits {
  readonly maxUploads: number;
  readonly maxUploadBytes: number;
  readonly maxCallTimeoutMs: number;
}

/** Longest delay Node's timers take (2^31 − 1 ms, about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function int(field: string, value: number | undefined, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return dflt;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(field, `${field} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

/**
 * Fills defaults and checks values.
 * @param prefix prefix of the field names in errors (e.g. `invocationLimits.`).
 * @throws InvalidArgumentError naming the bad field (negative, fractional, zero bytes or timeout, a timeout over
 *   2^31 − 1 ms, which Node's timers cannot hold).
 */
export function resolveInvocationLimits(limits: InvocationLimits = {}, prefix = ""): ResolvedInvocationLimits {
  return Object.freeze({
    maxUploads: int(`${prefix}maxUploads`, limits.maxUploads, DEFAULT_MAX_UPLOADS, 0),
    maxUploadBytes: int(`${prefix}maxUploadBytes`, limits.maxUploadBytes, DEFAULT_MAX_UPLOAD_BYTES, 1),
    maxCallTimeoutMs: int(`${prefix}maxCallTimeoutMs`, limits.maxCallTimeoutMs, DEFAULT_MAX_CALL_TIMEOUT_MS, 1, MAX_TIMER_MS),
  });
}

/**
 * The upload slots and buffer bytes of one target process, shared by all the invocation servers it runs (pass one
 * budget to several `serveInvocations` calls through `ServeOptions.budget`).
 */
export class UploadBudget {
  readonly limits: ResolvedInvocationLimits;
  #uploads = 0;
  #bytes = 0;

  /** @throws InvalidArgumentError for bad limits (see {@link resolveInvocationLimits}). */
  constructor(limits: InvocationLimits = {}) {
    this.limits = resolveInvocationLimits(limits);
  }

  /** Uploads held now. */
  get uploads(): number {
    return this.#uploads;
  }

  /** Bytes buffered now (allocated capacity of the uploads held). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * A caller's `trellis-timeout-ms` header value, cut to `maxCallTimeoutMs`.
   * @returns undefined when absent or not a number; otherwise an integer in [1, maxCallTimeoutMs].
   */
  capTimeout(header: string | undefined | null): number | undefined {
    if (!header) return undefined;
    const v = Number(header);
    if (Number.isNaN(v)) return undefined;
    return Math.min(this.limits.maxCallTimeoutMs, Math.max(1, Math.floor(v)));
  }

  /**
   * Opens an upload of `total` declared bytes: checks the declaration and takes a slot. Nothing is allocated yet.
   * @throws TrellisError `PAYLOAD_TOO_LARGE` when `total` exceeds `maxUploadBytes` or `maxBody`,
   *   `TOO_MANY_UPLOADS` when every slot is taken.
   */
  open(total: number, maxBody: number): UploadBuffer {
    const limit = Math.min(maxBody, this.limits.maxUploadBytes);
    if (total > limit) {
      throw new TrellisError(ErrorCode.PayloadTooLarge, `request body of ${total} bytes exceeds this target's limit of ${limit} bytes`, {
        details: { bodyLength: total, limit },
      });
    }
    if (this.#uploads >= this.limits.maxUploads) {
      throw new TrellisError(
        ErrorCode.TooManyUploads,
        `this target already holds ${this.#uploads} chunked uploads (limit ${this.limits.maxUploads}); retry later`,
        { details: { limit: this.limits.maxUploads } },
      );
    }
    this.#uploads++;
    return new UploadBuffer(total, this);
  }

  /** @internal Reserves `n` more buffer bytes; false when that would pass `maxUploadBytes`. */
  reserve(n: number): boolean {
    if (this.#bytes + n > this.limits.maxUploadBytes) return false;
    this.#bytes += n;
    return true;
  }

  /** @internal Returns an upload's slot and `bytes`. */
  release(bytes: number): void {
    this.#uploads--;
    this.#bytes -= bytes;
  }
}

/**
 * The body of one chunked request, grown as chunks arrive (doubling, never past the declared total) and charged to
 * its {@link UploadBudget}. Get one with {@link UploadBudget.open}; end it with {@link take} or {@link drop}.
 */
export class UploadBuffer {
  /** Declared total length, in bytes. */
  readonly total: number;
  readonly #budget: UploadBudget;
  #buf = new Uint8Array(0);
  #len = 0;
  #open = true;

  /** @internal use {@link UploadBudget.open}. */
  constructor(total: number, budget: UploadBudget) {
    this.total = total;
    this.#budget = budget;
  }

  /** Bytes received so far. */
  get length(): number {
    return this.#len;
  }

  /** True once `total` bytes have arrived. */
  get complete(): boolean {
    return this.#len >= this.total;
  }

  /**
   * Appends a chunk (bytes past the declared total are ignored).
   * @throws TrellisError `UPLOAD_BUFFER_FULL` when the budget cannot hold it; the upload is then dropped.
   */
  append(data: Uint8Array): void {
    if (!this.#open) throw new TrellisError(ErrorCode.IllegalState, "upload already ended");
    const n = Math.min(data.length, this.total - this.#len);
    if (n <= 0) return;
    const need = this.#len + n;
    if (need > this.#buf.length) {
      const cap = Math.min(this.total, Math.max(need, this.#buf.length * 2, MIN_GROWTH));
      if (!this.#budget.reserve(cap - this.#buf.length)) {
        const limit = this.#budget.limits.maxUploadBytes;
        this.drop();
        throw new TrellisError(ErrorCode.UploadBufferFull, `this target's upload buffer is full (limit ${limit} bytes); upload dropped, retry later`, {
          details: { limit },
        });
      }
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(data.subarray(0, n), this.#len);
    this.#len = need;
  }

  /** Ends the upload and hands over the body (its bytes no longer count against the budget). */
  take(): Uint8Array {
    const body = this.#buf.subarray(0, this.#len);
    this.drop();
    return body;
  }

  /** Ends the upload, freeing its slot and bytes. Idempotent. */
  drop(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#budget.release(this.#buf.length);
    this.#buf = new Uint8Array(0);
  }
}
