/**
 * The shared-memory table through which the main thread watches a worker's in-flight calls (issue 3 §3,
 * docs/adr/0002): the worker writes a heartbeat, the call it is running guest code for, and for every in-flight call
 * its component, deadline and reply subject. When the worker's event loop is stuck (an infinite loop in a guest)
 * past a call's deadline, the main thread terminates the worker and answers every recorded call itself.
 *
 * Layout (bytes): 0 heartbeat (f64, ms since epoch) · 8 running slot (i32, −1 none) · from 64: {@link SLOTS} slots of
 * {@link SLOT_BYTES}: state (i32, 0 free / 1 busy) · component index (i32) · deadline (f64) · reply length (i32) ·
 * reply subject (UTF-8, at most {@link MAX_REPLY} bytes).
 * @module
 */

/** Number of call slots per worker. */
export const SLOTS = 512;
/** Bytes per slot. */
export const SLOT_BYTES = 256;
const HEADER = 64;
const REPLY_OFF = 24;
/** Longest reply subject recorded (longer ones are not answered by the watchdog; the caller times out instead). */
export const MAX_REPLY = SLOT_BYTES - REPLY_OFF;

/** Creates the shared buffer of one worker. */
export function createWatchdogBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER + SLOTS * SLOT_BYTES);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Worker side: records calls. */
export class WatchdogWriter {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  readonly #free: number[] = [];

  constructor(sab: SharedArrayBuffer) {
    this.#view = new DataView(sab);
    this.#bytes = new Uint8Array(sab);
    for (let i = SLOTS - 1; i >= 0; i--) this.#free.push(i);
    this.#view.setInt32(8, -1, true);
  }

  heartbeat(): void {
    this.#view.setFloat64(0, Date.now(), true);
  }

  /** Records a call; returns its slot, or −1 when the table is full. */
  begin(componentIndex: number, deadline: number, replySubject: string | undefined): number {
    const slot = this.#free.pop();
    if (slot === undefined) return -1;
    const base = HEADER + slot * SLOT_BYTES;
    this.#view.setInt32(base + 4, componentIndex, true);
    this.#view.setFloat64(base + 8, deadline, true);
    let len = 0;
    if (replySubject) {
      const r = enc.encodeInto(replySubject, this.#bytes.subarray(base + REPLY_OFF, base + SLOT_BYTES));
      len = r.read === replySubject.length ? r.written : 0;
    }
    this.#view.setInt32(base + 16, len, true);
    this.#view.setInt32(base, 1, true);
    return slot;
  }

  end(slot: number): void {
    if (slot < 0) return;
    const base = HEADER + slot * SLOT_BYTES;
    this.#view.setInt32(base, 0, true);
    if (this.#view.getInt32(8, true) === slot) this.#view.setInt32(8, -1, true);
    this.#free.push(slot);
  }

  /** Marks guest code of `slot` as running (−1: none). */
  running(slot: number): void {
    this.#view.setInt32(8, slot, true);
  }
}

/** One recorded in-flight call. */
export interface WatchedCall {
  slot: number;
  componentIndex: number;
  deadline: number;
  replySubject: string | undefined;
}

/** Main-thread side: reads a worker's table. */
export class WatchdogReader {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  constructor(sab: SharedArrayBuffer) {
    this.#view = new DataView(sab);
    this.#bytes = new Uint8Array(sab);
  }
  heartbeat(): number {
    return this.#view.getFloat64(0, true);
  }
  runningSlot(): number {
    return this.#view.getInt32(8, true);
  }
  /** Every busy slot. */
  calls(): WatchedCall[] {
    const out: WatchedCall[] = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      const base = HEADER + slot * SLOT_BYTES;
      if (this.#view.getInt32(base, true) !== 1) continue;
      const len = this.#view.getInt32(base + 16, true);
      out.push({
        slot,
        componentIndex: this.#view.getInt32(base + 4, true),
        deadline: this.#view.getFloat64(base + 8, true),
        replySubject: len > 0 ? dec.decode(this.#bytes.slice(base + REPLY_OFF, base + REPLY_OFF + len)) : undefined,
      });
    }
    return out;
  }
}
