/**
 * Low-level reading of the Component Model binary format: a section cursor with LEB128 and name decoding, and
 * skipping of core types inside component types (design/mvp/Binary.md).
 * @module
 */
import { ErrorCode, TrellisError } from "../core/errors.ts";

/** Raised for a file that is not a loadable WASI 0.2 component. */
export class ComponentFormatError extends TrellisError {
  constructor(message: string) {
    super(ErrorCode.ComponentLoad, message);
    this.name = "ComponentFormatError";
  }
}

/** A cursor over one section of a component binary. */
export class Bin {
  readonly b: Uint8Array;
  pos: number;
  readonly end: number;
  constructor(b: Uint8Array, pos = 0, end = b.length) {
    this.b = b;
    this.pos = pos;
    this.end = end;
  }
  byte(): number {
    if (this.pos >= this.end) throw new ComponentFormatError("malformed component: unexpected end of section");
    return this.b[this.pos++]!;
  }
  peek(): number {
    if (this.pos >= this.end) throw new ComponentFormatError("malformed component: unexpected end of section");
    return this.b[this.pos]!;
  }
  u32(): number {
    let r = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      const x = this.byte();
      r += (x & 0x7f) * mul;
      if ((x & 0x80) === 0) return r;
      mul *= 128;
    }
    throw new ComponentFormatError("malformed component: LEB128 too long");
  }
  s33(): number {
    let r = 0;
    let mul = 1;
    let x = 0;
    for (let i = 0; i < 5; i++) {
      x = this.byte();
      r += (x & 0x7f) * mul;
      mul *= 128;
      if ((x & 0x80) === 0) break;
    }
    if (x & 0x40) r -= mul;
    return r;
  }
  name(): string {
    const n = this.u32();
    if (this.pos + n > this.end) throw new ComponentFormatError("malformed component: name past end of section");
    const s = new TextDecoder().decode(this.b.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  vec<T>(f: () => T): T[] {
    const n = this.u32();
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(f());
    return out;
  }
}

/** Skips a core type (function type or module type) inside a type declarator. */
export function coreType(s: Bin): void {
  const b = s.byte();
  if (b === 0x60) {
    s.vec(() => coreValType(s));
    s.vec(() => coreValType(s));
  } else if (b === 0x50) {
    s.vec(() => {
      const d = s.byte();
      if (d === 0x00) {
        s.name();
        s.name();
        coreExtern(s);
      } else if (d === 0x01) coreType(s);
      else if (d === 0x02) {
        s.byte();
        s.byte();
        s.u32();
        s.u32();
      } else if (d === 0x03) {
        s.name();
        coreExtern(s);
      } else throw new ComponentFormatError(`malformed component: core module declarator ${d}`);
    });
  } else throw new ComponentFormatError(`unsupported core type 0x${b.toString(16)} in a component type (GC types)`);
}

function coreValType(s: Bin): void {
  const b = s.byte();
  if (b === 0x63 || b === 0x64) s.s33(); // (ref null? ht)
}

function limits(s: Bin): void {
  const f = s.byte();
  s.u32();
  if (f & 0x01) s.u32();
}

function coreExtern(s: Bin): void {
  const k = s.byte();
  if (k === 0x00) s.u32();
  else if (k === 0x01) {
    coreValType(s);
    limits(s);
  } else if (k === 0x02) limits(s);
  else if (k === 0x03) {
    coreValType(s);
    s.byte();
  } else if (k === 0x04) {
    s.byte();
    s.u32();
  } else throw new ComponentFormatError(`malformed component: core extern kind ${k}`);
}
