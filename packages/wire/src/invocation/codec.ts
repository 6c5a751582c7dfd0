/**
 * The value encoding of the Trellis invocation protocol v1 (docs/protocol.md, "Value encoding"): a compact,
 * type-directed binary encoding of WIT values, close to the Component Model value-definition encoding used by wRPC.
 *
 * JavaScript representation (the one jco uses, so values pass to and from components unchanged):
 * `bool` boolean · `u8`…`u32`, `s8`…`s32`, `f32`, `f64` number · `u64`, `s64` bigint (a safe-integer number is
 * accepted when encoding) · `char` one-code-point string · `string` string · `list<u8>` Uint8Array (an ArrayBuffer or
 * array of numbers is accepted) · lists of other fixed-width numbers: the matching typed array (Int8Array,
 * Uint16Array, …, BigUint64Array, Float64Array; arrays accepted when encoding) · other lists and tuples: arrays ·
 * `record` object with camelCase field names · `flags` object of camelCase flag names → boolean · `variant`
 * `{ tag: "case-name", val? }` · `enum` `"case-name"` · `option<T>` `T | undefined` (`null` accepted), but
 * `{ tag: "none" } | { tag: "some", val }` when `T` is itself an option · `result` `{ tag: "ok" | "err", val? }` ·
 * `own`/`borrow` whatever the {@link ResourceMapper} maps handles to (default: the handle's Uint8Array).
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { camelCase, type FuncType, type WitType } from "./types.ts";
import { CodecFailure, decoder, encoder, fail, Reader, Writer } from "./buffers.ts";

export { Reader, Writer } from "./buffers.ts";

/** Maps resource values to and from the opaque handle bytes that travel on the wire. */
export interface ResourceMapper {
  /**
   * The handle bytes for a resource value being sent.
   * @param resource the WIT resource name; @param own true for `own<R>`, false for `borrow<R>`.
   */
  toHandle(resource: string, value: unknown, own: boolean): Uint8Array;
  /** The value to hand to application code for received handle bytes. */
  fromHandle(resource: string, handle: Uint8Array, own: boolean): unknown;
}

function at<T>(segment: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CodecFailure) e.path.unshift(segment);
    throw e;
  }
}

/** Encodes one JS value onto a Writer. */
export type Encoder = (w: Writer, v: unknown, res: ResourceMapper | undefined) => void;
/** Decodes one value from a Reader. */
export type Decoder = (r: Reader, res: ResourceMapper | undefined) => unknown;

const encoders = new WeakMap<WitType, Encoder>();
const decoders = new WeakMap<WitType, Decoder>();

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v === "string" ? `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}` : `${typeof v} ${String(v)}`;
}

function intEnc(kind: string, min: number, max: number): Encoder {
  const signed = min < 0;
  return (w, v) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      fail(`expected ${kind} (an integer in [${min}, ${max}]), got ${describe(v)}`);
    }
    if (kind === "u8" || kind === "s8") w.u8(v & 0xff);
    else if (signed) w.sleb(v);
    else w.uleb(v);
  };
}

function bigEnc(kind: "u64" | "s64"): Encoder {
  const min = kind === "u64" ? 0n : -0x8000000000000000n;
  const max = kind === "u64" ? 0xffffffffffffffffn : 0x7fffffffffffffffn;
  return (w, v) => {
    let b: bigint;
    if (typeof v === "bigint") b = v;
    else if (typeof v === "number" && Number.isSafeInteger(v)) b = BigInt(v);
    else fail(`expected ${kind} (a bigint), got ${describe(v)}`);
    if (b < min || b > max) fail(`${b} is out of range for ${kind}`);
    if (kind === "u64") w.ulebBig(b);
    else w.slebBig(b);
  };
}

const TYPED: Partial<Record<string, { ctor: any; bytes: number }>> = {
  s8: { ctor: Int8Array, bytes: 1 },
  u16: { ctor: Uint16Array, bytes: 2 },
  s16: { ctor: Int16Array, bytes: 2 },
  u32: { ctor: Uint32Array, bytes: 4 },
  s32: { ctor: Int32Array, bytes: 4 },
  u64: { ctor: BigUint64Array, bytes: 8 },
  s64: { ctor: BigInt64Array, bytes: 8 },
  f32: { ctor: Float32Array, bytes: 4 },
  f64: { ctor: Float64Array, bytes: 8 },
};

/** The encoder of a type (compiled once per type object and cached). */
export function encoderFor(ty: WitType): Encoder {
  let e = encoders.get(ty);
  if (!e) {
    e = buildEncoder(ty);
    encoders.set(ty, e);
  }
  return e;
}

/** The decoder of a type (compiled once per type object and cached). */
export function decoderFor(ty: WitType): Decoder {
  let d = decoders.get(ty);
  if (!d) {
    d = buildDecoder(ty);
    decoders.set(ty, d);
  }
  return d;
}

function buildEncoder(ty: WitType): Encoder {
  switch (ty.kind) {
    case "bool":
      return (w, v) => {
        if (typeof v !== "boolean") fail(`expected bool, got ${describe(v)}`);
        w.u8(v ? 1 : 0);
      };
    case "u8":
      return intEnc("u8", 0, 255);
    case "s8":
      return intEnc("s8", -128, 127);
    case "u16":
      return intEnc("u16", 0, 0xffff);
    case "s16":
      return intEnc("s16", -0x8000, 0x7fff);
    case "u32":
      return intEnc("u32", 0, 0xffffffff);
    case "s32":
      return intEnc("s32", -0x80000000, 0x7fffffff);
    case "u64":
    case "s64":
      return bigEnc(ty.kind);
    case "f32":
      return (w, v) => {
        if (typeof v !== "number") fail(`expected f32, got ${describe(v)}`);
        w.f32(v);
      };
    case "f64":
      return (w, v) => {
        if (typeof v !== "number") fail(`expected f64, got ${describe(v)}`);
        w.f64(v);
      };
    case "char":
      return (w, v) => {
        if (typeof v !== "string" || v.length === 0 || v.length > 2) fail(`expected char, got ${describe(v)}`);
        const cp = v.codePointAt(0)!;
        if ((cp >= 0xd800 && cp <= 0xdfff) || String.fromCodePoint(cp) !== v) fail(`expected one Unicode scalar value, got ${describe(v)}`);
        w.ensure(4);
        w.pos += encoder.encodeInto(v, w.buf.subarray(w.pos, w.pos + 4)).written;
      };
    case "string":
      return (w, v) => {
        if (typeof v !== "string") fail(`expected string, got ${describe(v)}`);
        w.string(v);
      };
    case "list":
      return listEncoder(ty.element, ty.length);
    case "record": {
      const fields = ty.fields.map((f) => ({ key: camelCase(f.name), name: f.name, enc: encoderFor(f.type) }));
      return (w, v, res) => {
        if (typeof v !== "object" || v === null || Array.isArray(v)) fail(`expected record (an object), got ${describe(v)}`);
        const o = v as Record<string, unknown>;
        for (const f of fields) {
          const fv = f.key in o ? o[f.key] : o[f.name];
          at(f.key, () => f.enc(w, fv, res));
        }
      };
    }
    case "tuple": {
      const encs = ty.types.map(encoderFor);
      return (w, v, res) => {
        if (!Array.isArray(v) || v.length !== encs.length) fail(`expected tuple of ${encs.length}, got ${describe(v)}`);
        for (let i = 0; i < encs.length; i++) at(`[${i}]`, () => encs[i]!(w, v[i], res));
      };
    }
    case "variant": {
      const index = new Map(ty.cases.map((c, i) => [c.name, { i, enc: c.type ? encoderFor(c.type) : undefined }]));
      return (w, v, res) => {
        if (typeof v !== "object" || v === null || typeof (v as { tag?: unknown }).tag !== "string") {
          fail(`expected variant { tag, val? }, got ${describe(v)}`);
        }
        const { tag, val } = v as { tag: string; val?: unknown };
        const c = index.get(tag);
        if (!c) fail(`unknown variant case ${JSON.stringify(tag)}; expected one of ${[...index.keys()].join(", ")}`);
        w.uleb(c.i);
        if (c.enc) at(tag, () => c.enc!(w, val, res));
      };
    }
    case "enum": {
      const index = new Map(ty.cases.map((c, i) => [c, i]));
      return (w, v) => {
        const i = typeof v === "string" ? index.get(v) : undefined;
        if (i === undefined) fail(`expected one of ${ty.cases.join(", ")}, got ${describe(v)}`);
        w.uleb(i);
      };
    }
    case "flags": {
      const keys = ty.flags.map((f) => ({ key: camelCase(f), name: f }));
      const n = Math.ceil(keys.length / 8);
      return (w, v) => {
        if (v !== undefined && v !== null && (typeof v !== "object" || Array.isArray(v))) fail(`expected flags (an object), got ${describe(v)}`);
        const o = (v ?? {}) as Record<string, unknown>;
        w.ensure(n);
        for (let b = 0; b < n; b++) w.buf[w.pos + b] = 0;
        keys.forEach((k, i) => {
          if (o[k.key] ?? o[k.name]) w.buf[w.pos + (i >> 3)]! |= 1 << (i & 7);
        });
        w.pos += n;
      };
    }
    case "option": {
      const inner = encoderFor(ty.type);
      if (ty.type.kind === "option") {
        return (w, v, res) => {
          const tag = (v as { tag?: unknown } | null)?.tag;
          if (tag === "none") return w.u8(0);
          if (tag !== "some") fail(`expected { tag: "none" } or { tag: "some", val }, got ${describe(v)}`);
          w.u8(1);
          at("some", () => inner(w, (v as { val?: unknown }).val, res));
        };
      }
      return (w, v, res) => {
        if (v === undefined || v === null) return w.u8(0);
        w.u8(1);
        at("some", () => inner(w, v, res));
      };
    }
    case "result": {
      const ok = ty.ok ? encoderFor(ty.ok) : undefined;
      const err = ty.err ? encoderFor(ty.err) : undefined;
      return (w, v, res) => {
        const tag = (v as { tag?: unknown } | null)?.tag;
        const val = (v as { val?: unknown } | null)?.val;
        if (tag === "ok") {
          w.u8(0);
          if (ok) at("ok", () => ok(w, val, res));
        } else if (tag === "err") {
          w.u8(1);
          if (err) at("err", () => err(w, val, res));
        } else fail(`expected result { tag: "ok" | "err", val? }, got ${describe(v)}`);
      };
    }
    case "own":
    case "borrow": {
      const own = ty.kind === "own";
      const name = ty.resource;
      return (w, v, res) => {
        const h = res ? res.toHandle(name, v, own) : v;
        if (!(h instanceof Uint8Array)) fail(`expected a handle (Uint8Array) for resource ${name}, got ${describe(h)}`);
        w.uleb(h.length);
        w.bytes(h);
      };
    }
  }
}

function listEncoder(element: WitType, fixed: number | undefined): Encoder {
  const writeCount = (w: Writer, n: number) => {
    if (fixed === undefined) w.uleb(n);
    else if (n !== fixed) fail(`expected exactly ${fixed} elements, got ${n}`);
  };
  if (element.kind === "u8") {
    return (w, v) => {
      let b: Uint8Array;
      if (v instanceof Uint8Array) b = v;
      else if (v instanceof ArrayBuffer) b = new Uint8Array(v);
      else if (Array.isArray(v)) {
        b = Uint8Array.from(v as number[]);
        (v as unknown[]).forEach((x, i) => {
          if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > 255) fail(`[${i}]: expected u8, got ${describe(x)}`);
        });
      } else fail(`expected list<u8> (a Uint8Array), got ${describe(v)}`);
      writeCount(w, b.length);
      w.bytes(b);
    };
  }
  const enc = encoderFor(element);
  return (w, v, res) => {
    if (!Array.isArray(v) && !ArrayBuffer.isView(v)) fail(`expected list (an array), got ${describe(v)}`);
    const a = v as ArrayLike<unknown>;
    writeCount(w, a.length);
    for (let i = 0; i < a.length; i++) {
      try {
        enc(w, a[i], res);
      } catch (e) {
        if (e instanceof CodecFailure) e.path.unshift(`[${i}]`);
        throw e;
      }
    }
  };
}

function buildDecoder(ty: WitType): Decoder {
  switch (ty.kind) {
    case "bool":
      return (r) => {
        const b = r.u8();
        if (b > 1) fail(`invalid bool byte ${b}`);
        return b === 1;
      };
    case "u8":
      return (r) => r.u8();
    case "s8":
      return (r) => (r.u8() << 24) >> 24;
    case "u16":
      return (r) => r.uleb(16);
    case "u32":
      return (r) => r.uleb(32);
    case "s16":
      return (r) => r.sleb(16);
    case "s32":
      return (r) => r.sleb(32);
    case "u64":
      return (r) => r.ulebBig();
    case "s64":
      return (r) => r.slebBig();
    case "f32":
      return (r) => {
        r.need(4);
        const v = r.view.getFloat32(r.pos, true);
        r.pos += 4;
        return v;
      };
    case "f64":
      return (r) => {
        r.need(8);
        const v = r.view.getFloat64(r.pos, true);
        r.pos += 8;
        return v;
      };
    case "char":
      return (r) => {
        const b = r.buf[r.pos];
        const n = b === undefined ? 1 : b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
        r.need(n);
        let s: string;
        try {
          s = decoder.decode(r.buf.subarray(r.pos, r.pos + n));
        } catch {
          fail("invalid UTF-8 in char");
        }
        if ([...s].length !== 1) fail("invalid char");
        r.pos += n;
        return s;
      };
    case "string":
      return (r) => {
        try {
          return r.string();
        } catch (e) {
          if (e instanceof CodecFailure) throw e;
          fail("invalid UTF-8 in string");
        }
      };
    case "list":
      return listDecoder(ty.element, ty.length);
    case "record": {
      const fields = ty.fields.map((f) => ({ key: camelCase(f.name), dec: decoderFor(f.type) }));
      return (r, res) => {
        const o: Record<string, unknown> = {};
        for (const f of fields) o[f.key] = f.dec(r, res);
        return o;
      };
    }
    case "tuple": {
      const decs = ty.types.map(decoderFor);
      return (r, res) => decs.map((d) => d(r, res));
    }
    case "variant": {
      const cases = ty.cases.map((c) => ({ tag: c.name, dec: c.type ? decoderFor(c.type) : undefined }));
      return (r, res) => {
        const i = r.uleb(32);
        const c = cases[i];
        if (!c) fail(`variant case index ${i} out of range (${cases.length} cases)`);
        return c.dec ? { tag: c.tag, val: c.dec(r, res) } : { tag: c.tag };
      };
    }
    case "enum":
      return (r) => {
        const i = r.uleb(32);
        const c = ty.cases[i];
        if (c === undefined) fail(`enum case index ${i} out of range (${ty.cases.length} cases)`);
        return c;
      };
    case "flags": {
      const keys = ty.flags.map(camelCase);
      const n = Math.ceil(keys.length / 8);
      return (r) => {
        r.need(n);
        const o: Record<string, boolean> = {};
        keys.forEach((k, i) => (o[k] = (r.buf[r.pos + (i >> 3)]! & (1 << (i & 7))) !== 0));
        for (let i = keys.length; i < n * 8; i++) {
          if (r.buf[r.pos + (i >> 3)]! & (1 << (i & 7))) fail("flags have bits set beyond the declared flags");
        }
        r.pos += n;
        return o;
      };
    }
    case "option": {
      const inner = decoderFor(ty.type);
      const nested = ty.type.kind === "option";
      return (r, res) => {
        const b = r.u8();
        if (b === 0) return nested ? { tag: "none" } : undefined;
        if (b !== 1) fail(`invalid option byte ${b}`);
        const v = inner(r, res);
        return nested ? { tag: "some", val: v } : v;
      };
    }
    case "result": {
      const ok = ty.ok ? decoderFor(ty.ok) : undefined;
      const err = ty.err ? decoderFor(ty.err) : undefined;
      return (r, res) => {
        const b = r.u8();
        if (b === 0) return ok ? { tag: "ok", val: ok(r, res) } : { tag: "ok", val: undefined };
        if (b === 1) return err ? { tag: "err", val: err(r, res) } : { tag: "err", val: undefined };
        fail(`invalid result byte ${b}`);
      };
    }
    case "own":
    case "borrow": {
      const own = ty.kind === "own";
      const name = ty.resource;
      return (r, res) => {
        const h = r.bytes(r.uleb(32));
        return res ? res.fromHandle(name, h, own) : h;
      };
    }
  }
}

function listDecoder(element: WitType, fixed: number | undefined): Decoder {
  const count = (r: Reader) => (fixed === undefined ? r.uleb(32) : fixed);
  if (element.kind === "u8") return (r) => r.bytes(count(r));
  const typed = TYPED[element.kind];
  const dec = decoderFor(element);
  if (typed) {
    return (r, res) => {
      const n = count(r);
      // every element takes at least one byte: refuse counts the remaining input cannot hold
      if (n > r.buf.length - r.pos) fail(`list count ${n} exceeds the remaining ${r.buf.length - r.pos} bytes`);
      const out = new typed.ctor(n);
      for (let i = 0; i < n; i++) out[i] = dec(r, res);
      return out;
    };
  }
  return (r, res) => {
    const n = count(r);
    if (n > r.buf.length - r.pos && !zeroSized(element)) fail(`list count ${n} exceeds the remaining ${r.buf.length - r.pos} bytes`);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = dec(r, res);
    return out;
  };
}

function zeroSized(ty: WitType): boolean {
  if (ty.kind === "record") return ty.fields.every((f) => zeroSized(f.type));
  if (ty.kind === "tuple") return ty.types.every(zeroSized);
  if (ty.kind === "flags") return ty.flags.length === 0;
  if (ty.kind === "list") return ty.length === 0;
  return false;
}

function rethrow(e: unknown, root: string): never {
  if (e instanceof CodecFailure) {
    const path = [root, ...e.path].reduce((acc, s) => (s.startsWith("[") ? acc + s : `${acc}.${s}`));
    throw new InvalidArgumentError(path, `${path}: ${e.message}`);
  }
  throw e;
}

/** Encodes one value of type `ty`. @throws InvalidArgumentError naming the path of a value that does not fit. */
export function encodeValue(ty: WitType, value: unknown, res?: ResourceMapper): Uint8Array {
  const w = new Writer();
  try {
    encoderFor(ty)(w, value, res);
  } catch (e) {
    rethrow(e, "value");
  }
  return w.finish();
}

/** Decodes exactly one value of type `ty` (trailing bytes are an error). @throws InvalidArgumentError. */
export function decodeValue(ty: WitType, bytes: Uint8Array, res?: ResourceMapper): unknown {
  const r = new Reader(bytes);
  try {
    const v = decoderFor(ty)(r, res);
    if (r.pos !== bytes.length) fail(`${bytes.length - r.pos} trailing byte(s)`);
    return v;
  } catch (e) {
    rethrow(e, "value");
  }
}

/** Encodes a call's arguments: the parameters in order, concatenated (a tuple). @throws InvalidArgumentError. */
export function encodeParams(fn: FuncType, args: readonly unknown[], res?: ResourceMapper, w = new Writer()): Uint8Array {
  if (args.length !== fn.params.length) {
    throw new InvalidArgumentError("params", `expected ${fn.params.length} argument(s), got ${args.length}`);
  }
  for (let i = 0; i < args.length; i++) {
    const p = fn.params[i]!;
    try {
      encoderFor(p.type)(w, args[i], res);
    } catch (e) {
      rethrow(e, p.name);
    }
  }
  return w.finish();
}

/** Decodes a call's arguments. @throws InvalidArgumentError on malformed or trailing bytes. */
export function decodeParams(fn: FuncType, bytes: Uint8Array, res?: ResourceMapper): unknown[] {
  const r = new Reader(bytes);
  const out = new Array<unknown>(fn.params.length);
  let name = "params";
  try {
    for (let i = 0; i < fn.params.length; i++) {
      const p = fn.params[i]!;
      name = p.name;
      out[i] = decoderFor(p.type)(r, res);
    }
    name = "params";
    if (r.pos !== bytes.length) fail(`${bytes.length - r.pos} trailing byte(s)`);
  } catch (e) {
    rethrow(e, name);
  }
  return out;
}

/** Encodes a function's result (empty bytes when the function has none). @throws InvalidArgumentError. */
export function encodeResult(fn: FuncType, value: unknown, res?: ResourceMapper, w = new Writer()): Uint8Array {
  if (fn.result === undefined) return w.finish();
  try {
    encoderFor(fn.result)(w, value, res);
  } catch (e) {
    rethrow(e, "result");
  }
  return w.finish();
}

/** Decodes a function's result (`undefined` when it has none). @throws InvalidArgumentError. */
export function decodeResult(fn: FuncType, bytes: Uint8Array, res?: ResourceMapper): unknown {
  if (fn.result === undefined) {
    if (bytes.length !== 0) throw new InvalidArgumentError("result", `result: expected no bytes, got ${bytes.length}`);
    return undefined;
  }
  return decodeValue(fn.result, bytes, res);
}
