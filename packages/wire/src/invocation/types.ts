/**
 * WIT type trees: the type information that drives the invocation codec (docs/protocol.md, "Value encoding").
 *
 * A {@link WitType} is a plain JSON-serializable object, so type trees can be cached on disk, sent over the wire
 * (introspection) and written by hand with the {@link t} builders. Names are the WIT names (kebab-case).
 * @module
 */

/** Kinds of WIT types without parameters. */
export type PrimitiveKind =
  | "bool"
  | "u8"
  | "u16"
  | "u32"
  | "u64"
  | "s8"
  | "s16"
  | "s32"
  | "s64"
  | "f32"
  | "f64"
  | "char"
  | "string";

/** A WIT value type (Component Model 0.2). */
export type WitType =
  | { kind: PrimitiveKind }
  | { kind: "list"; element: WitType; /** Fixed-size list `list<T, N>`: exactly `length` elements, no count on the wire. */ length?: number }
  | { kind: "record"; name?: string; fields: { name: string; type: WitType }[] }
  | { kind: "tuple"; types: WitType[] }
  | { kind: "variant"; name?: string; cases: { name: string; type?: WitType }[] }
  | { kind: "enum"; name?: string; cases: string[] }
  | { kind: "flags"; name?: string; flags: string[] }
  | { kind: "option"; type: WitType }
  | { kind: "result"; ok?: WitType; err?: WitType }
  | { kind: "own"; resource: string }
  | { kind: "borrow"; resource: string };

/** One named parameter of a function. */
export interface WitParam {
  name: string;
  type: WitType;
}

/** A function type: named parameters and at most one result (Component Model 0.2). */
export interface FuncType {
  params: WitParam[];
  /** The result type; absent when the function returns nothing. */
  result?: WitType;
}

/**
 * The functions of one interface, keyed by their WIT function names as they appear in a component:
 * plain functions (`get`), resource methods (`[method]bucket.get`), static functions (`[static]bucket.open`) and
 * constructors (`[constructor]bucket`).
 */
export interface InterfaceType {
  /** Fully qualified interface name, `namespace:package/interface` with an optional `@version`. */
  name: string;
  functions: Record<string, FuncType>;
  /** Resource types the interface defines (WIT names). */
  resources: string[];
}

/** Builders for {@link WitType} trees, for code that declares the interfaces it serves or calls. */
export const t = {
  bool: { kind: "bool" } as WitType,
  u8: { kind: "u8" } as WitType,
  u16: { kind: "u16" } as WitType,
  u32: { kind: "u32" } as WitType,
  u64: { kind: "u64" } as WitType,
  s8: { kind: "s8" } as WitType,
  s16: { kind: "s16" } as WitType,
  s32: { kind: "s32" } as WitType,
  s64: { kind: "s64" } as WitType,
  f32: { kind: "f32" } as WitType,
  f64: { kind: "f64" } as WitType,
  char: { kind: "char" } as WitType,
  string: { kind: "string" } as WitType,
  /** `list<T>`, or `list<T, N>` when `length` is given. */
  list: (element: WitType, length?: number): WitType =>
    length === undefined ? { kind: "list", element } : { kind: "list", element, length },
  /** `record { a: T, … }`; fields in declaration order. */
  record: (fields: Record<string, WitType> | [string, WitType][], name?: string): WitType => ({
    kind: "record",
    ...(name === undefined ? {} : { name }),
    fields: (Array.isArray(fields) ? fields : Object.entries(fields)).map(([n, ty]) => ({ name: n, type: ty })),
  }),
  tuple: (...types: WitType[]): WitType => ({ kind: "tuple", types }),
  /** `variant { a(T), b, … }`; `undefined` for a case without payload. */
  variant: (cases: Record<string, WitType | undefined> | [string, WitType | undefined][], name?: string): WitType => ({
    kind: "variant",
    ...(name === undefined ? {} : { name }),
    cases: (Array.isArray(cases) ? cases : Object.entries(cases)).map(([n, ty]) =>
      ty === undefined ? { name: n } : { name: n, type: ty },
    ),
  }),
  enum: (cases: string[], name?: string): WitType => ({ kind: "enum", ...(name === undefined ? {} : { name }), cases }),
  flags: (flags: string[], name?: string): WitType => ({ kind: "flags", ...(name === undefined ? {} : { name }), flags }),
  option: (type: WitType): WitType => ({ kind: "option", type }),
  result: (ok?: WitType, err?: WitType): WitType => ({
    kind: "result",
    ...(ok === undefined ? {} : { ok }),
    ...(err === undefined ? {} : { err }),
  }),
  own: (resource: string): WitType => ({ kind: "own", resource }),
  borrow: (resource: string): WitType => ({ kind: "borrow", resource }),
  /** A function type from `[name, type]` pairs (order matters) and an optional result. */
  func: (params: [string, WitType][] = [], result?: WitType): FuncType =>
    result === undefined
      ? { params: params.map(([name, type]) => ({ name, type })) }
      : { params: params.map(([name, type]) => ({ name, type })), result },
} as const;

/** `kebab-case` → `camelCase`, as jco names record fields and flags in JavaScript (`path-with-query` → `pathWithQuery`). */
export function camelCase(name: string): string {
  return name.replace(/-([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** Prints a WIT type in WIT syntax (anonymous records/variants are printed structurally), e.g. `list<tuple<string, u8>>`. */
export function formatType(ty: WitType): string {
  switch (ty.kind) {
    case "list":
      return ty.length === undefined ? `list<${formatType(ty.element)}>` : `list<${formatType(ty.element)}, ${ty.length}>`;
    case "record":
      return ty.name ?? `record { ${ty.fields.map((f) => `${f.name}: ${formatType(f.type)}`).join(", ")} }`;
    case "tuple":
      return `tuple<${ty.types.map(formatType).join(", ")}>`;
    case "variant":
      return ty.name ?? `variant { ${ty.cases.map((c) => (c.type ? `${c.name}(${formatType(c.type)})` : c.name)).join(", ")} }`;
    case "enum":
      return ty.name ?? `enum { ${ty.cases.join(", ")} }`;
    case "flags":
      return ty.name ?? `flags { ${ty.flags.join(", ")} }`;
    case "option":
      return `option<${formatType(ty.type)}>`;
    case "result":
      if (!ty.ok && !ty.err) return "result";
      if (!ty.err) return `result<${formatType(ty.ok!)}>`;
      return `result<${ty.ok ? formatType(ty.ok) : "_"}, ${formatType(ty.err)}>`;
    case "own":
      return ty.resource;
    case "borrow":
      return `borrow<${ty.resource}>`;
    default:
      return ty.kind;
  }
}

/** Prints a function signature in WIT syntax, e.g. `func(x: u32, y: u32) -> u32`. */
export function formatFunc(fn: FuncType): string {
  const params = fn.params.map((p) => `${p.name}: ${formatType(p.type)}`).join(", ");
  return fn.result === undefined ? `func(${params})` : `func(${params}) -> ${formatType(fn.result)}`;
}
