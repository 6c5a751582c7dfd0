/**
 * Byte buffers of the invocation value encoding (docs/protocol.md §5): a growable {@link Writer} and a bounds-checked
 * {@link Reader} with LEB128, IEEE 754 and UTF-8 primitives.
 * @module
 */

/** A growable output buffer. */
export class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  /** @param initial initial capacity in bytes (default 256). */
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  /** Unsigned LEB128 of a non-negative integer below 2^53. */
  uleb(v: number): void {
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  /** Unsigned LEB128 of a bigint in [0, 2^64). */
  ulebBig(v: bigint): void {
    if (v < 0x20000000000000n) return this.uleb(Number(v));
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  /** Signed LEB128 of an integer with |v| < 2^53. */
  sleb(v: number): void {
    this.ensure(8);
    for (;;) {
      const byte = ((v % 0x80) + 0x80) % 0x80;
      v = Math.floor(v / 0x80);
      const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
      this.buf[this.pos++] = done ? byte : byte | 0x80;
      if (done) return;
    }
  }

  /** Signed LEB128 of a bigint in [-2^63, 2^63). */
  slebBig(v: bigint): void {
    if (v > -0x20000000000000n && v < 0x20000000000000n) return this.sleb(Number(v));
    this.ensure(10);
    for (;;) {
      const byte = Number(v & 0x7fn);
      v >>= 7n;
      const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0);
      this.buf[this.pos++] = done ? byte : byte | 0x80;
      if (done) return;
    }
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  f32(v: number): void {
    this.ensure(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
  }

  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /** LEB128 byte length, then the UTF-8 bytes. */
  string(s: string): void {
    if (s.length < 43) {
      // at most 3 bytes per UTF-16 unit, so the length fits one LEB byte (< 128)
      this.ensure(1 + s.length * 3);
      const start = this.pos + 1;
      const { written } = encoder.encodeInto(s, this.buf.subarray(start));
      this.buf[this.pos] = written;
      this.pos = start + written;
      return;
    }
    const n = utf8Length(s);
    this.uleb(n);
    this.ensure(n);
    encoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
  }

  /** The bytes written so far (a view, not a copy). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** A cursor over received bytes. Every read checks bounds. */
export class Reader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) fail(`truncated value: needed ${n} more byte(s) at offset ${this.pos}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  /** Unsigned LEB128 up to `maxBits` bits (≤ 53), as a number. */
  uleb(maxBits: number): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) break;
      mul *= 0x80;
      if (i >= 8) fail("LEB128 integer too long");
    }
    if (result >= 2 ** maxBits) fail(`integer ${result} out of range for ${maxBits} bits`);
    return result;
  }

  /** Unsigned LEB128 of a u64, as a bigint. */
  ulebBig(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; ; i++) {
      const b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
      if (i >= 9) fail("LEB128 integer too long");
    }
    if (result > 0xffffffffffffffffn) fail("integer out of range for u64");
    return result;
  }

  /** Signed LEB128 up to `bits` bits (≤ 32), as a number. */
  sleb(bits: number): number {
    let result = 0;
    let mul = 1;
    let b = 0;
    for (let i = 0; ; i++) {
      b = this.u8();
      result += (b & 0x7f) * mul;
      mul *= 0x80;
      if ((b & 0x80) === 0) break;
      if (i >= 5) fail("LEB128 integer too long");
    }
    if (b & 0x40) result -= mul;
    const lim = 2 ** (bits - 1);
    if (result < -lim || result >= lim) fail(`integer ${result} out of range for s${bits}`);
    return result;
  }

  /** Signed LEB128 of an s64, as a bigint. */
  slebBig(): bigint {
    let result = 0n;
    let shift = 0n;
    let b = 0;
    for (let i = 0; ; i++) {
      b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) break;
      if (i >= 9) fail("LEB128 integer too long");
    }
    if (b & 0x40) result -= 1n << shift;
    if (result < -0x8000000000000000n || result > 0x7fffffffffffffffn) fail("integer out of range for s64");
    return result;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    // a copy, and a plain Uint8Array even when the input is a Node Buffer
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  string(): string {
    const n = this.uleb(32);
    this.need(n);
    const s = decoder.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
}

export const encoder = new TextEncoder();
export const decoder = new TextDecoder("utf-8", { fatal: true });

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3; // BMP, or a lone surrogate (encoded as U+FFFD, 3 bytes)
  }
  return n;
}

/** Thrown inside the codec; carries the path to the bad value, innermost last. */
export class CodecFailure extends Error {
  path: string[] = [];
}

export function fail(message: string): never {
  throw new CodecFailure(message);
}

