/**
 * The JSON form of WIT values (docs/protocol.md, "JSON form"), used by `content-type: application/json`
 * invocations (`trellis call`) and for printing results.
 *
 * Conversion goes between JSON values and the JavaScript representation of {@link ./codec.ts}; the JSON form uses
 * WIT (kebab-case) names for record fields, and accepts camelCase too.
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { camelCase, type FuncType, type WitType } from "./types.ts";

class JsonFailure extends Error {
  path: string[] = [];
}
function fail(message: string): never {
  throw new JsonFailure(message);
}
function at<T>(seg: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof JsonFailure) e.path.unshift(seg);
    throw e;
  }
}

const TYPED: Partial<Record<string, new (n: number) => ArrayLike<unknown> & Record<number, unknown>>> = {
  s8: Int8Array,
  u16: Uint16Array,
  s16: Int16Array,
  u32: Uint32Array,
  s32: Int32Array,
  u64: BigUint64Array as never,
  s64: BigInt64Array as never,
  f32: Float32Array,
  f64: Float64Array,
};

function fromJsonInner(ty: WitType, j: unknown): unknown {
  switch (ty.kind) {
    case "u64":
    case "s64": {
      if (typeof j === "number" && Number.isSafeInteger(j)) return BigInt(j);
      if (typeof j === "string" && /^-?\d+$/.test(j)) return BigInt(j);
      return fail(`expected ${ty.kind} as an integer or a decimal string, got ${JSON.stringify(j)}`);
    }
    case "f32":
    case "f64":
      if (j === "NaN") return NaN;
      if (j === "Infinity") return Infinity;
      if (j === "-Infinity") return -Infinity;
      return j;
    case "list": {
      if (!Array.isArray(j)) return fail(`expected an array, got ${JSON.stringify(j)}`);
      if (ty.element.kind === "u8") return Uint8Array.from(j as number[]);
      const items = j.map((x, i) => at(`[${i}]`, () => fromJsonInner(ty.element, x)));
      const Ctor = TYPED[ty.element.kind];
      if (Ctor) {
        const out = new Ctor(items.length);
        items.forEach((x, i) => (out[i] = x));
        return out;
      }
      return items;
    }
    case "record": {
      if (typeof j !== "object" || j === null || Array.isArray(j)) return fail(`expected an object, got ${JSON.stringify(j)}`);
      const o = j as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const f of ty.fields) {
        const key = camelCase(f.name);
        out[key] = at(f.name, () => fromJsonInner(f.type, f.name in o ? o[f.name] : o[key]));
      }
      return out;
    }
    case "tuple":
      if (!Array.isArray(j)) return fail(`expected an array, got ${JSON.stringify(j)}`);
      return ty.types.map((tt, i) => at(`[${i}]`, () => fromJsonInner(tt, j[i])));
    case "variant": {
      if (typeof j === "string") return { tag: j };
      const v = j as { tag?: string; val?: unknown } | null;
      const c = ty.cases.find((x) => x.name === v?.tag);
      if (!c) return j; // let the codec report the bad case
      return c.type ? { tag: c.name, val: at(c.name, () => fromJsonInner(c.type!, v!.val)) } : { tag: c.name };
    }
    case "flags": {
      if (Array.isArray(j)) return Object.fromEntries(j.map((f) => [camelCase(String(f)), true]));
      if (typeof j === "object" && j !== null) {
        return Object.fromEntries(Object.entries(j).map(([k, v]) => [camelCase(k), Boolean(v)]));
      }
      return j;
    }
    case "option":
      if (ty.type.kind === "option") {
        const v = j as { tag?: string; val?: unknown } | null;
        if (v?.tag === "some") return { tag: "some", val: at("some", () => fromJsonInner(ty.type, v.val)) };
        return v?.tag === "none" || v === null ? { tag: "none" } : j;
      }
      return j === null || j === undefined ? undefined : at("some", () => fromJsonInner(ty.type, j));
    case "result": {
      const v = j as { tag?: string; val?: unknown } | null;
      if (v?.tag === "ok") return { tag: "ok", val: ty.ok ? at("ok", () => fromJsonInner(ty.ok!, v.val)) : undefined };
      if (v?.tag === "err") return { tag: "err", val: ty.err ? at("err", () => fromJsonInner(ty.err!, v.val)) : undefined };
      return j;
    }
    case "own":
    case "borrow":
      if (typeof j === "string") return Uint8Array.from(Buffer.from(j, "base64"));
      return j;
    default:
      return j;
  }
}

function toJsonInner(ty: WitType, v: unknown): unknown {
  switch (ty.kind) {
    case "u64":
    case "s64": {
      const b = v as bigint;
      return b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : b.toString();
    }
    case "f32":
    case "f64":
      return Number.isFinite(v) ? v : String(v);
    case "list":
      return Array.from(v as ArrayLike<unknown>, (x) => toJsonInner(ty.element, x));
    case "record": {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(ty.fields.map((f) => [f.name, toJsonInner(f.type, o[camelCase(f.name)])]));
    }
    case "tuple":
      return ty.types.map((tt, i) => toJsonInner(tt, (v as unknown[])[i]));
    case "variant": {
      const x = v as { tag: string; val?: unknown };
      const c = ty.cases.find((k) => k.name === x.tag);
      return c?.type ? { tag: x.tag, val: toJsonInner(c.type, x.val) } : { tag: x.tag };
    }
    case "flags": {
      const o = v as Record<string, boolean>;
      return ty.flags.filter((f) => o[camelCase(f)]);
    }
    case "option":
      if (ty.type.kind === "option") {
        const x = v as { tag: string; val?: unknown };
        return x.tag === "some" ? { tag: "some", val: toJsonInner(ty.type, x.val) } : { tag: "none" };
      }
      return v === undefined || v === null ? null : toJsonInner(ty.type, v);
    case "result": {
      const x = v as { tag: "ok" | "err"; val?: unknown };
      const inner = x.tag === "ok" ? ty.ok : ty.err;
      return inner ? { tag: x.tag, val: toJsonInner(inner, x.val) } : { tag: x.tag };
    }
    case "own":
    case "borrow":
      return v instanceof Uint8Array ? Buffer.from(v).toString("base64") : null;
    default:
      return v;
  }
}

function wrap<T>(root: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof JsonFailure) {
      const path = [root, ...e.path].reduce((acc, s) => (s.startsWith("[") ? acc + s : `${acc}.${s}`));
      throw new InvalidArgumentError(path, `${path}: ${e.message}`);
    }
    throw e;
  }
}

/** A JSON value → the JavaScript representation of a `ty` value. @throws InvalidArgumentError naming the path. */
export function fromJson(ty: WitType, json: unknown): unknown {
  return wrap("value", () => fromJsonInner(ty, json));
}

/** The JavaScript representation of a `ty` value → a JSON value (u64/s64 beyond 2^53 become decimal strings). */
export function toJson(ty: WitType, value: unknown): unknown {
  return toJsonInner(ty, value);
}

/**
 * JSON arguments (an array in parameter order, or an object keyed by parameter name) → call arguments.
 * @throws InvalidArgumentError when the count or a value does not fit.
 */
export function argsFromJson(fn: FuncType, json: unknown): unknown[] {
  let list: unknown[];
  if (Array.isArray(json)) list = json;
  else if (json === undefined || json === null) list = [];
  else if (typeof json === "object") list = fn.params.map((p) => (json as Record<string, unknown>)[p.name]);
  else list = [json];
  if (list.length !== fn.params.length) {
    throw new InvalidArgumentError(
      "params",
      `expected ${fn.params.length} argument(s) (${fn.params.map((p) => p.name).join(", ")}), got ${list.length}`,
    );
  }
  return fn.params.map((p, i) => wrap(p.name, () => fromJsonInner(p.type, list[i])));
}

/** A call's result → JSON (`null` when the function returns nothing). */
export function resultToJson(fn: FuncType, value: unknown): unknown {
  return fn.result === undefined ? null : toJsonInner(fn.result, value);
}
