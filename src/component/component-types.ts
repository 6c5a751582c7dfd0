/**
 * Reads the WIT types of a component's imports and exports straight from its binary (Component Model binary
 * format, `design/mvp/Binary.md`): walks the component-level sections and index spaces, following aliases and
 * nested components as wit-component emits them, and returns {@link InterfaceType}s for the invocation codec.
 *
 * It also classifies the file: a core module or a WASI 0.3 (async) component is rejected with a clear error.
 * @module
 */
import type { FuncType, InterfaceType, WitType } from "../../packages/wire/src/invocation/types.ts";
import { Bin, ComponentFormatError, coreType } from "./binary-reader.ts";

export { ComponentFormatError } from "./binary-reader.ts";

/** What a component imports and exports. */
export interface ComponentTypes {
  /** Imported interfaces by full name (`wasi:logging/logging@0.1.0-draft`). */
  imports: Record<string, InterfaceType>;
  /** Exported interfaces by full name (`docs:adder/add@0.1.0`). */
  exports: Record<string, InterfaceType>;
  /** World-level imported functions (not in an interface), by name. */
  importedFunctions: Record<string, FuncType>;
  /** World-level exported functions, by name. */
  exportedFunctions: Record<string, FuncType>;
}

interface Res {
  name: string | undefined;
}
type Entry =
  | { k: "val"; t: WitType }
  | { k: "res"; r: Res }
  | { k: "func"; f: FuncType }
  | { k: "inst"; x: Exports }
  | { k: "comp"; c: CompType }
  | { k: "other" };
type Ext =
  | { s: "func"; f: FuncType }
  | { s: "type"; t: Entry }
  | { s: "inst"; x: Exports }
  | { s: "comp"; c: CompType }
  | { s: "other" };
type Exports = Map<string, Ext>;
interface CompType {
  imports: Exports;
  exports: Exports;
}
interface Scope {
  parent: Scope | undefined;
  types: Entry[];
  funcs: FuncType[];
  instances: Exports[];
  components: CompType[];
}

const PRIM: Record<number, WitType["kind"]> = {
  0x7f: "bool",
  0x7e: "s8",
  0x7d: "u8",
  0x7c: "s16",
  0x7b: "u16",
  0x7a: "s32",
  0x79: "u32",
  0x78: "s64",
  0x77: "u64",
  0x76: "f32",
  0x75: "f64",
  0x74: "char",
  0x73: "string",
};
const PRIM_TYPES = new Map<number, WitType>(Object.entries(PRIM).map(([b, k]) => [Number(b), { kind: k } as WitType]));

const ASYNC = "it uses the WASI 0.3 / async component model, which Trellis does not run (WASI 0.2 components only)";

/** `\0asm` + version + layer: 1 for a component, 0 for a core module. */
export function classifyWasm(bytes: Uint8Array): "component" | "module" | "unknown" {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) return "unknown";
  if (bytes[6] === 1 && bytes[7] === 0) return "component";
  if (bytes[6] === 0 && bytes[7] === 0) return "module";
  return "unknown";
}

/**
 * Reads a component's import and export types.
 * @throws ComponentFormatError (code `COMPONENT_LOAD_FAILED`) for a core module, a non-wasm file, a WASI 0.3 (async)
 *   component, or a malformed binary.
 */
export function readComponentTypes(bytes: Uint8Array): ComponentTypes {
  const kind = classifyWasm(bytes);
  if (kind === "module") {
    throw new ComponentFormatError("this is a core WebAssembly module, not a component; build a component (e.g. wasm-tools component new)");
  }
  if (kind === "unknown") throw new ComponentFormatError("not a WebAssembly component (bad magic number or layer)");
  const named = new Map<WitType, Res>();
  const top = parseComponent(new Bin(bytes, 8), undefined, named);
  const result: ComponentTypes = { imports: {}, exports: {}, importedFunctions: {}, exportedFunctions: {} };
  const canonical = new Set<Res>();
  for (const [name, ext] of top.imports) {
    if (ext.s === "inst") result.imports[name] = toInterface(name, ext.x, canonical);
    else if (ext.s === "func") result.importedFunctions[name] = ext.f;
  }
  for (const [name, ext] of top.exports) {
    if (ext.s === "inst") result.exports[name] = toInterface(name, ext.x, canonical);
    else if (ext.s === "func") result.exportedFunctions[name] = ext.f;
  }
  for (const [t, r] of named) (t as { resource: string }).resource = r.name ?? "resource";
  for (const name of [...Object.keys(result.imports), ...Object.keys(result.exports)]) {
    if (/^wasi:[a-z-]+\/[a-z-]+@0\.3\./.test(name)) throw new ComponentFormatError(`the component uses ${name}: ${ASYNC}`);
  }
  return result;
}

/** `canonical`: resources already named by an interface (the first name wins: `type headers = fields` stays `fields`). */
function toInterface(name: string, x: Exports, canonical: Set<Res>): InterfaceType {
  const functions: Record<string, FuncType> = {};
  const resources: string[] = [];
  for (const [n, e] of x) {
    if (e.s === "func") functions[n] = e.f;
    else if (e.s === "type" && e.t.k === "res") {
      if (!canonical.has(e.t.r)) {
        e.t.r.name = n;
        canonical.add(e.t.r);
      }
      resources.push(n);
    } else if (e.s === "type" && e.t.k === "val") {
      const t = e.t.t as { name?: string; kind: string };
      if ((t.kind === "record" || t.kind === "variant" || t.kind === "enum" || t.kind === "flags") && t.name === undefined) t.name = n;
    }
  }
  return { name, functions, resources };
}

function newScope(parent: Scope | undefined): Scope {
  return { parent, types: [], funcs: [], instances: [], components: [] };
}

function outer(scope: Scope, count: number): Scope {
  let s: Scope | undefined = scope;
  for (let i = 0; i < count; i++) s = s?.parent;
  if (!s) throw new ComponentFormatError("malformed component: outer alias beyond the outermost scope");
  return s;
}

function entry(scope: Scope, i: number): Entry {
  const e = scope.types[i];
  if (!e) throw new ComponentFormatError(`malformed component: type index ${i} out of range`);
  return e;
}

function parseComponent(r: Bin, parent: Scope | undefined, named: Map<WitType, Res>): CompType {
  const scope = newScope(parent);
  const imports: Exports = new Map();
  const exports: Exports = new Map();
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (end > r.end) throw new ComponentFormatError("malformed component: section past end of file");
    const s = new Bin(r.b, r.pos, end);
    switch (id) {
      case 4: {
        // nested component: preamble then sections
        s.pos += 8;
        scope.components.push(parseComponent(s, scope, named));
        break;
      }
      case 5:
        s.vec(() => {
          const kind = s.byte();
          if (kind === 0x00) {
            const c = s.u32();
            s.vec(() => (s.name(), sortIdx(s)));
            const comp = scope.components[c];
            if (!comp) throw new ComponentFormatError(`malformed component: component index ${c} out of range`);
            scope.instances.push(comp.exports);
          } else if (kind === 0x01) {
            const x: Exports = new Map();
            s.vec(() => {
              const n = nameAttributes(s);
              x.set(n, lookup(scope, sortIdx(s)));
            });
            scope.instances.push(x);
          } else throw new ComponentFormatError(`malformed component: instance kind ${kind}`);
        });
        break;
      case 6:
        s.vec(() => alias(s, scope));
        break;
      case 7:
        s.vec(() => scope.types.push(defType(s, scope, named)));
        break;
      case 8:
        s.vec(() => canon(s, scope));
        break;
      case 10:
        s.vec(() => {
          const n = nameAttributes(s);
          const ext = externType(s, scope);
          imports.set(n, ext);
          push(scope, ext, n);
        });
        break;
      case 11:
        s.vec(() => {
          const n = nameAttributes(s);
          const si = sortIdx(s);
          let ext = lookup(scope, si);
          if (s.byte() === 0x01) {
            const ascribed = externType(s, scope);
            if (ascribed.s === "func") ext = ascribed;
          }
          exports.set(n, ext);
          push(scope, ext, n);
        });
        break;
      case 0: // custom
      case 1: // core module
      case 2: // core instance
      case 3: // core type
      case 9: // start
      case 12: // value
        break;
      default:
        throw new ComponentFormatError(`malformed component: unknown section id ${id}`);
    }
    r.pos = end;
  }
  return { imports, exports };
}

type SortIdx = { sort: number; core: boolean; idx: number };

function sortIdx(s: Bin): SortIdx {
  const sort = s.byte();
  if (sort === 0x00) {
    s.byte();
    return { sort: 0, core: true, idx: s.u32() };
  }
  return { sort, core: false, idx: s.u32() };
}

function nameAttributes(s: Bin): string {
  const kind = s.byte();
  const n = s.name();
  if (kind === 0x02) {
    s.vec(() => {
      const a = s.byte();
      if (a === 0x00 || a === 0x01 || a === 0x02) s.name();
      else throw new ComponentFormatError(`malformed component: name attribute ${a}`);
    });
  } else if (kind !== 0x00 && kind !== 0x01) throw new ComponentFormatError(`malformed component: name kind ${kind}`);
  return n;
}

function lookup(scope: Scope, si: SortIdx): Ext {
  if (si.core) return { s: "other" };
  switch (si.sort) {
    case 0x01: {
      const f = scope.funcs[si.idx];
      if (!f) throw new ComponentFormatError(`malformed component: func index ${si.idx} out of range`);
      return { s: "func", f };
    }
    case 0x03:
      return { s: "type", t: entry(scope, si.idx) };
    case 0x04: {
      const c = scope.components[si.idx];
      if (!c) throw new ComponentFormatError(`malformed component: component index ${si.idx} out of range`);
      return { s: "comp", c };
    }
    case 0x05: {
      const x = scope.instances[si.idx];
      if (!x) throw new ComponentFormatError(`malformed component: instance index ${si.idx} out of range`);
      return { s: "inst", x };
    }
    default:
      return { s: "other" };
  }
}

/** Adds an imported/exported/aliased item to the index space of its sort. */
function push(scope: Scope, ext: Ext, name: string): void {
  switch (ext.s) {
    case "func":
      scope.funcs.push(ext.f);
      break;
    case "type":
      if (ext.t.k === "res" && ext.t.r.name === undefined) ext.t.r.name = name.replace(/^import-type-/, "");
      scope.types.push(ext.t);
      break;
    case "inst":
      scope.instances.push(ext.x);
      break;
    case "comp":
      scope.components.push(ext.c);
      break;
  }
}

function alias(s: Bin, scope: Scope): void {
  const sort = s.byte();
  if (sort === 0x00) s.byte(); // core sort
  const target = s.byte();
  if (target === 0x00) {
    const inst = scope.instances[s.u32()];
    const n = s.name();
    if (sort === 0x00) return;
    if (!inst) throw new ComponentFormatError("malformed component: alias of an unknown instance");
    const ext = inst.get(n);
    if (!ext) throw new ComponentFormatError(`malformed component: instance has no export ${JSON.stringify(n)}`);
    push(scope, ext, n);
  } else if (target === 0x01) {
    s.u32();
    s.name();
  } else if (target === 0x02) {
    const ct = s.u32();
    const idx = s.u32();
    if (sort === 0x03) scope.types.push(entry(outer(scope, ct), idx));
    else if (sort === 0x04) {
      const c = outer(scope, ct).components[idx];
      if (!c) throw new ComponentFormatError("malformed component: outer alias of an unknown component");
      scope.components.push(c);
    }
  } else throw new ComponentFormatError(`malformed component: alias target ${target}`);
}

function canon(s: Bin, scope: Scope): void {
  const op = s.byte();
  switch (op) {
    case 0x00: {
      s.byte();
      s.u32();
      canonOpts(s);
      const e = entry(scope, s.u32());
      if (e.k !== "func") throw new ComponentFormatError("malformed component: canon lift of a non-function type");
      scope.funcs.push(e.f);
      return;
    }
    case 0x01:
      s.byte();
      s.u32();
      canonOpts(s);
      return;
    case 0x02:
    case 0x03:
    case 0x04:
      s.u32();
      return;
    default:
      throw new ComponentFormatError(`the component uses canonical built-in 0x${op.toString(16)}: ${ASYNC}`);
  }
}

function canonOpts(s: Bin): void {
  s.vec(() => {
    const o = s.byte();
    if (o === 0x03 || o === 0x04 || o === 0x05) s.u32();
    else if (o === 0x06 || o === 0x07) throw new ComponentFormatError(`the component lifts or lowers a function with the async ABI: ${ASYNC}`);
    else if (o > 0x02) throw new ComponentFormatError(`malformed component: canonical option ${o}`);
  });
}

function valType(s: Bin, scope: Scope, named: Map<WitType, Res>): WitType {
  const b = s.peek();
  const prim = PRIM_TYPES.get(b);
  if (prim) {
    s.pos++;
    return prim;
  }
  if (b === 0x64) throw new ComponentFormatError(`the component uses error-context: ${ASYNC}`);
  const e = entry(scope, s.s33());
  if (e.k === "val") return e.t;
  void named;
  throw new ComponentFormatError("malformed component: value type refers to a non-value type");
}

function resOf(scope: Scope, idx: number): Res {
  const e = entry(scope, idx);
  if (e.k !== "res") throw new ComponentFormatError("malformed component: handle of a non-resource type");
  return e.r;
}

function opt<T>(s: Bin, f: () => T): T | undefined {
  const b = s.byte();
  if (b === 0x00) return undefined;
  if (b === 0x01) return f();
  throw new ComponentFormatError(`malformed component: option byte ${b}`);
}

function defType(s: Bin, scope: Scope, named: Map<WitType, Res>): Entry {
  const b = s.byte();
  const vt = () => valType(s, scope, named);
  const prim = PRIM_TYPES.get(b);
  if (prim) return { k: "val", t: prim };
  switch (b) {
    case 0x72:
      return { k: "val", t: { kind: "record", fields: s.vec(() => ({ name: s.name(), type: vt() })) } };
    case 0x71:
      return {
        k: "val",
        t: {
          kind: "variant",
          cases: s.vec(() => {
            const name = s.name();
            const type = opt(s, vt);
            s.byte(); // legacy "refines" = 0x00
            return type === undefined ? { name } : { name, type };
          }),
        },
      };
    case 0x70:
      return { k: "val", t: { kind: "list", element: vt() } };
    case 0x67: {
      const element = vt();
      return { k: "val", t: { kind: "list", element, length: s.u32() } };
    }
    case 0x6f:
      return { k: "val", t: { kind: "tuple", types: s.vec(vt) } };
    case 0x6e:
      return { k: "val", t: { kind: "flags", flags: s.vec(() => s.name()) } };
    case 0x6d:
      return { k: "val", t: { kind: "enum", cases: s.vec(() => s.name()) } };
    case 0x6b:
      return { k: "val", t: { kind: "option", type: vt() } };
    case 0x6a: {
      const ok = opt(s, vt);
      const err = opt(s, vt);
      return { k: "val", t: { kind: "result", ...(ok ? { ok } : {}), ...(err ? { err } : {}) } };
    }
    case 0x69:
    case 0x68: {
      const r = resOf(scope, s.u32());
      const t: WitType = { kind: b === 0x69 ? "own" : "borrow", resource: r.name ?? "resource" };
      named.set(t, r);
      return { k: "val", t };
    }
    case 0x66:
    case 0x65:
      throw new ComponentFormatError(`the component uses ${b === 0x66 ? "stream" : "future"} types: ${ASYNC}`);
    case 0x63:
      throw new ComponentFormatError("the component uses map types, which Trellis does not support");
    case 0x40:
    case 0x43: {
      if (b === 0x43) throw new ComponentFormatError(`the component has async function types: ${ASYNC}`);
      const params = s.vec(() => ({ name: s.name(), type: vt() }));
      const rk = s.byte();
      let result: WitType | undefined;
      if (rk === 0x00) result = vt();
      else if (rk === 0x01) {
        const named2 = s.vec(() => ({ name: s.name(), type: vt() }));
        if (named2.length === 1) result = named2[0]!.type;
        else if (named2.length > 1) result = { kind: "tuple", types: named2.map((n) => n.type) };
      } else throw new ComponentFormatError(`malformed component: result list kind ${rk}`);
      return { k: "func", f: result === undefined ? { params } : { params, result } };
    }
    case 0x41: {
      const inner = newScope(scope);
      const imports: Exports = new Map();
      const exports: Exports = new Map();
      s.vec(() => {
        const d = s.byte();
        if (d === 0x03) {
          const n = nameAttributes(s);
          const ext = externType(s, inner);
          imports.set(n, ext);
          push(inner, ext, n);
        } else instanceDecl(d, s, inner, exports, named);
      });
      return { k: "comp", c: { imports, exports } };
    }
    case 0x42: {
      const inner = newScope(scope);
      const exports: Exports = new Map();
      s.vec(() => instanceDecl(s.byte(), s, inner, exports, named));
      return { k: "inst", x: exports };
    }
    case 0x3f: {
      s.byte(); // rep: core valtype (i32)
      opt(s, () => s.u32());
      return { k: "res", r: { name: undefined } };
    }
    case 0x3e:
      throw new ComponentFormatError(`the component has an async resource destructor: ${ASYNC}`);
    default:
      throw new ComponentFormatError(`malformed component: unknown type opcode 0x${b.toString(16)}`);
  }
}

function instanceDecl(d: number, s: Bin, scope: Scope, exports: Exports, named: Map<WitType, Res>): void {
  switch (d) {
    case 0x00:
      coreType(s);
      return;
    case 0x01:
      scope.types.push(defType(s, scope, named));
      return;
    case 0x02:
      alias(s, scope);
      return;
    case 0x04: {
      const n = nameAttributes(s);
      const ext = externType(s, scope);
      exports.set(n, ext);
      push(scope, ext, n);
      return;
    }
    default:
      throw new ComponentFormatError(`malformed component: declarator ${d}`);
  }
}

function externType(s: Bin, scope: Scope): Ext {
  const k = s.byte();
  switch (k) {
    case 0x00:
      s.byte();
      s.u32();
      return { s: "other" };
    case 0x01: {
      const e = entry(scope, s.u32());
      if (e.k !== "func") throw new ComponentFormatError("malformed component: func import of a non-function type");
      return { s: "func", f: e.f };
    }
    case 0x02:
      if (s.byte() === 0x00) s.u32();
      else valType(s, scope, new Map());
      return { s: "other" };
    case 0x03: {
      const bound = s.byte();
      if (bound === 0x00) return { s: "type", t: entry(scope, s.u32()) };
      if (bound === 0x01) return { s: "type", t: { k: "res", r: { name: undefined } } };
      throw new ComponentFormatError(`malformed component: type bound ${bound}`);
    }
    case 0x04: {
      const e = entry(scope, s.u32());
      if (e.k !== "comp") throw new ComponentFormatError("malformed component: component import of a non-component type");
      return { s: "comp", c: e.c };
    }
    case 0x05: {
      const e = entry(scope, s.u32());
      if (e.k !== "inst") throw new ComponentFormatError("malformed component: instance import of a non-instance type");
      return { s: "inst", x: e.x };
    }
    default:
      throw new ComponentFormatError(`malformed component: extern type ${k}`);
  }
}
