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
import type { ResourceMapper } from "./codec.ts";

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

function show(j: unknown): string {
  if (j === undefined) return "nothing";
  const s = JSON.stringify(j) ?? String(j);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

const INT_RANGE: Partial<Record<string, [number, number]>> = {
  u8: [0, 0xff],
  s8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  s16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  s32: [-0x80000000, 0x7fffffff],
};
const BIG_RANGE = { u64: [0n, 0xffffffffffffffffn], s64: [-0x8000000000000000n, 0x7fffffffffffffffn] } as const;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** No lone surrogates: every code point is a Unicode scalar value. */
function wellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

function isObject(j: unknown): j is Record<string, unknown> {
  return typeof j === "object" && j !== null && !Array.isArray(j);
}

/** Checks that `o` has only the keys in `allowed` (by WIT or camelCase name). */
function onlyKeys(o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  const known = new Set(allowed.flatMap((k) => [k, camelCase(k)]));
  const extra = Object.keys(o).filter((k) => !known.has(k));
  if (extra.length > 0) fail(`unknown ${what} ${extra.map((k) => JSON.stringify(k)).join(", ")}; expected ${allowed.join(", ") || "none"}`);
}

/** `{tag, val?}` with a known tag; `cases` maps tag → whether it carries a payload. */
function tagged(j: unknown, kind: string, cases: readonly { name: string; type?: WitType }[]): { name: string; type?: WitType; val: unknown } {
  const names = cases.map((c) => c.name).join(", ");
  if (!isObject(j) || typeof j.tag !== "string") return fail(`expected ${kind} as {"tag": …, "val"?: …} with tag one of ${names}, got ${show(j)}`);
  onlyKeys(j, ["tag", "val"], `key(s) in ${kind}`);
  const c = cases.find((x) => x.name === j.tag);
  if (!c) return fail(`unknown ${kind} case ${JSON.stringify(j.tag)}; expected one of ${names}`);
  if (c.type && !("val" in j)) return fail(`${kind} case ${JSON.stringify(c.name)} needs a "val"`);
  if (!c.type && "val" in j && j.val !== null) return fail(`${kind} case ${JSON.stringify(c.name)} has no payload, got "val": ${show(j.val)}`);
  return { ...c, val: j.val };
}

function fromJsonInner(ty: WitType, j: unknown, res: ResourceMapper | undefined): unknown {
  switch (ty.kind) {
    case "bool":
      if (typeof j !== "boolean") return fail(`expected bool (true or false), got ${show(j)}`);
      return j;
    case "u8":
    case "s8":
    case "u16":
    case "s16":
    case "u32":
    case "s32": {
      const [min, max] = INT_RANGE[ty.kind]!;
      if (typeof j !== "number" || !Number.isInteger(j) || j < min || j > max) {
        return fail(`expected ${ty.kind} (an integer in [${min}, ${max}]), got ${show(j)}`);
      }
      return j;
    }
    case "u64":
    case "s64": {
      const [min, max] = BIG_RANGE[ty.kind];
      let b: bigint;
      if (typeof j === "number" && Number.isSafeInteger(j)) b = BigInt(j);
      else if (typeof j === "string" && /^-?\d+$/.test(j)) b = BigInt(j);
      else return fail(`expected ${ty.kind} as an integer within ±(2^53−1) or a decimal string, got ${show(j)}`);
      if (b < min || b > max) return fail(`${b} is out of range for ${ty.kind} ([${min}, ${max}])`);
      return b;
    }
    case "f32":
    case "f64":
      if (j === "NaN") return NaN;
      if (j === "Infinity") return Infinity;
      if (j === "-Infinity") return -Infinity;
      if (typeof j !== "number") return fail(`expected ${ty.kind} (a number, "NaN", "Infinity" or "-Infinity"), got ${show(j)}`);
      return j;
    case "char": {
      if (typeof j !== "string") return fail(`expected char (a string of one Unicode scalar value), got ${show(j)}`);
      const cps = [...j];
      if (cps.length !== 1 || !wellFormed(j)) return fail(`expected char (exactly one Unicode scalar value), got ${show(j)}`);
      return j;
    }
    case "string":
      if (typeof j !== "string") return fail(`expected string, got ${show(j)}`);
      if (!wellFormed(j)) return fail("string holds a lone surrogate (not a Unicode scalar value)");
      return j;
    case "list": {
      if (!Array.isArray(j)) return fail(`expected list (an array), got ${show(j)}`);
      if (ty.length !== undefined && j.length !== ty.length) return fail(`expected exactly ${ty.length} element(s), got ${j.length}`);
      const items = j.map((x, i) => at(`[${i}]`, () => fromJsonInner(ty.element, x, res)));
      if (ty.element.kind === "u8") return Uint8Array.from(items as number[]);
      const Ctor = TYPED[ty.element.kind];
      if (Ctor) {
        const out = new Ctor(items.length);
        items.forEach((x, i) => (out[i] = x));
        return out;
      }
      return items;
    }
    case "record": {
      if (!isObject(j)) return fail(`expected record (an object with fields ${ty.fields.map((f) => f.name).join(", ")}), got ${show(j)}`);
      onlyKeys(j, ty.fields.map((f) => f.name), "field(s)");
      const out: Record<string, unknown> = {};
      for (const f of ty.fields) {
        const key = camelCase(f.name);
        const present = f.name in j || key in j;
        if (!present && f.type.kind !== "option") fail(`missing field ${JSON.stringify(f.name)}`);
        out[key] = at(f.name, () => fromJsonInner(f.type, f.name in j ? j[f.name] : key in j ? j[key] : null, res));
      }
      return out;
    }
    case "tuple":
      if (!Array.isArray(j) || j.length !== ty.types.length) return fail(`expected tuple (an array of ${ty.types.length}), got ${show(j)}`);
      return ty.types.map((tt, i) => at(`[${i}]`, () => fromJsonInner(tt, j[i], res)));
    case "variant": {
      if (typeof j === "string") {
        const c = ty.cases.find((x) => x.name === j);
        if (!c) return fail(`unknown variant case ${JSON.stringify(j)}; expected one of ${ty.cases.map((x) => x.name).join(", ")}`);
        if (c.type) return fail(`variant case ${JSON.stringify(j)} needs a payload: {"tag": ${JSON.stringify(j)}, "val": …}`);
        return { tag: j };
      }
      const c = tagged(j, "variant", ty.cases);
      return c.type ? { tag: c.name, val: at(c.name, () => fromJsonInner(c.type!, c.val, res)) } : { tag: c.name };
    }
    case "enum":
      if (typeof j !== "string" || !ty.cases.includes(j)) return fail(`expected enum, one of ${ty.cases.join(", ")}, got ${show(j)}`);
      return j;
    case "flags": {
      const out = Object.fromEntries(ty.flags.map((f) => [camelCase(f), false]));
      const known = new Map(ty.flags.flatMap((f) => [[f, camelCase(f)], [camelCase(f), camelCase(f)]]));
      if (Array.isArray(j)) {
        j.forEach((f, i) => {
          const k = typeof f === "string" ? known.get(f) : undefined;
          if (k === undefined) at(`[${i}]`, () => fail(`unknown flag ${show(f)}; expected one of ${ty.flags.join(", ")}`));
          else out[k] = true;
        });
        return out;
      }
      if (isObject(j)) {
        onlyKeys(j, ty.flags, "flag(s)");
        for (const [k, v] of Object.entries(j)) {
          if (typeof v !== "boolean") at(k, () => fail(`expected bool, got ${show(v)}`));
          out[known.get(k)!] = v as boolean;
        }
        return out;
      }
      return fail(`expected flags (an array of flag names among ${ty.flags.join(", ")}), got ${show(j)}`);
    }
    case "option":
      if (ty.type.kind === "option") {
        if (j === null) return { tag: "none" };
        const c = tagged(j, "option", [{ name: "none" }, { name: "some", type: ty.type }]);
        return c.name === "some" ? { tag: "some", val: at("some", () => fromJsonInner(ty.type, c.val, res)) } : { tag: "none" };
      }
      return j === null ? undefined : at("some", () => fromJsonInner(ty.type, j, res));
    case "result": {
      const cases = [
        ty.ok ? { name: "ok", type: ty.ok } : { name: "ok" },
        ty.err ? { name: "err", type: ty.err } : { name: "err" },
      ];
      const c = tagged(j, "result", cases);
      return { tag: c.name, val: c.type ? at(c.name, () => fromJsonInner(c.type!, c.val, res)) : undefined };
    }
    case "own":
    case "borrow": {
      if (typeof j !== "string" || !BASE64.test(j)) return fail(`expected a ${ty.kind}<${ty.resource}> handle (a base64 string), got ${show(j)}`);
      const bytes = Uint8Array.from(Buffer.from(j, "base64"));
      return res ? res.fromHandle(ty.resource, bytes, ty.kind === "own") : bytes;
    }
    default:
      return fail(`unsupported type ${(ty as { kind: string }).kind}`);
  }
}

function toJsonInner(ty: WitType, v: unknown, res: ResourceMapper | undefined): unknown {
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
      return Array.from(v as ArrayLike<unknown>, (x) => toJsonInner(ty.element, x, res));
    case "record": {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(ty.fields.map((f) => [f.name, toJsonInner(f.type, o[camelCase(f.name)], res)]));
    }
    case "tuple":
      return ty.types.map((tt, i) => toJsonInner(tt, (v as unknown[])[i], res));
    case "variant": {
      const x = v as { tag: string; val?: unknown };
      const c = ty.cases.find((k) => k.name === x.tag);
      return c?.type ? { tag: x.tag, val: toJsonInner(c.type, x.val, res) } : { tag: x.tag };
    }
    case "flags": {
      const o = v as Record<string, boolean>;
      return ty.flags.filter((f) => o[camelCase(f)]);
    }
    case "option":
      if (ty.type.kind === "option") {
        const x = v as { tag: string; val?: unknown };
        return x.tag === "some" ? { tag: "some", val: toJsonInner(ty.type, x.val, res) } : { tag: "none" };
      }
      return v === undefined || v === null ? null : toJsonInner(ty.type, v, res);
    case "result": {
      const x = v as { tag: "ok" | "err"; val?: unknown };
      const inner = x.tag === "ok" ? ty.ok : ty.err;
      return inner ? { tag: x.tag, val: toJsonInner(inner, x.val, res) } : { tag: x.tag };
    }
    case "own":
    case "borrow":
      if (res) return Buffer.from(res.toHandle(ty.resource, v, ty.kind === "own")).toString("base64");
      if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
      throw new TypeError(`a ${ty.kind}<${ty.resource}> value that is not handle bytes cannot be sent in the JSON form without a resource mapper`);
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

/**
 * A JSON value → the JavaScript representation of a `ty` value (docs/protocol.md §6). Every value is checked against
 * its type: integer ranges (u64/s64 too), `char` = one Unicode scalar value, enum cases, flag names, the shapes of
 * option/result/variant, record fields (unknown fields and missing fields are errors; a missing `option` field is
 * `none`), tuple and fixed-list lengths, handles (base64).
 * @param res maps handle bytes to the application's resource values (default: handles stay Uint8Arrays).
 * @throws InvalidArgumentError naming the path of the first bad value (`value.p.x`, `value[2]`).
 */
export function fromJson(ty: WitType, json: unknown, res?: ResourceMapper): unknown {
  return wrap("value", () => fromJsonInner(ty, json, res));
}

/**
 * The JavaScript representation of a `ty` value → a JSON value (u64/s64 beyond 2^53 become decimal strings, handles
 * base64 strings of the bytes `res` maps them to).
 */
export function toJson(ty: WitType, value: unknown, res?: ResourceMapper): unknown {
  return toJsonInner(ty, value, res);
}

/**
 * JSON arguments (an array in parameter order, or an object keyed by parameter name) → call arguments, each checked
 * as {@link fromJson} does.
 * @param res maps handle bytes to resource values, as for the binary codec.
 * @throws InvalidArgumentError when the count or a value does not fit; the path starts with the parameter name
 *   (`p.x`, `items[2]`).
 */
export function argsFromJson(fn: FuncType, json: unknown, res?: ResourceMapper): unknown[] {
  const names = fn.params.map((p) => p.name);
  let list: unknown[];
  if (Array.isArray(json)) list = json;
  else if (json === undefined || json === null) list = [];
  else if (typeof json === "object") {
    const o = json as Record<string, unknown>;
    const known = new Set(names.flatMap((n) => [n, camelCase(n)]));
    const extra = Object.keys(o).filter((k) => !known.has(k));
    if (extra.length > 0) {
      throw new InvalidArgumentError(extra[0]!, `${extra[0]}: unknown parameter(s) ${extra.map((k) => JSON.stringify(k)).join(", ")}; expected ${names.join(", ")}`);
    }
    list = fn.params.map((p) => {
      const v = p.name in o ? o[p.name] : o[camelCase(p.name)];
      if (v === undefined && p.type.kind !== "option") throw new InvalidArgumentError(p.name, `${p.name}: missing parameter ${JSON.stringify(p.name)}`);
      return v ?? null;
    });
  } else list = [json];
  if (list.length !== fn.params.length) {
    throw new InvalidArgumentError(
      "params",
      `expected ${fn.params.length} argument(s) (${names.join(", ")}), got ${list.length}`,
    );
  }
  return fn.params.map((p, i) => wrap(p.name, () => fromJsonInner(p.type, list[i], res)));
}

/** A call's result → JSON (`null` when the function returns nothing); handles through `res` as in {@link toJson}. */
export function resultToJson(fn: FuncType, value: unknown, res?: ResourceMapper): unknown {
  return fn.result === undefined ? null : toJsonInner(fn.result, value, res);
}
