/**
 * Prints what a component imports and exports as WIT text (`trellis inspect`): a `world` listing the imported and
 * exported interfaces and world-level functions, then each interface with its named types, resources and functions.
 *
 * The output reads as WIT; interface blocks carry their full names (`interface wasi:keyvalue/store@0.2.0-draft { … }`)
 * so that one file can hold interfaces of several packages, which a WIT parser would want split into packages.
 * @module
 */
import { formatType, type FuncType, type InterfaceType, type WitType } from "./types.ts";
import type { WorldDescription } from "./server.ts";

/** Named types (records, variants, enums, flags) used by a type, in first-use order, inner types first. */
function collectNamed(ty: WitType, out: Map<string, WitType>): void {
  const visit = (x: WitType): void => collectNamed(x, out);
  switch (ty.kind) {
    case "list":
      return visit(ty.element);
    case "option":
      return visit(ty.type);
    case "tuple":
      return ty.types.forEach(visit);
    case "result":
      if (ty.ok) visit(ty.ok);
      if (ty.err) visit(ty.err);
      return;
    case "record":
      ty.fields.forEach((f) => visit(f.type));
      break;
    case "variant":
      ty.cases.forEach((c) => c.type && visit(c.type));
      break;
    case "enum":
    case "flags":
      break;
    default:
      return;
  }
  if (ty.name !== undefined && !out.has(ty.name)) out.set(ty.name, ty);
}

function typeDefinition(ty: WitType): string {
  switch (ty.kind) {
    case "record":
      return `record ${ty.name} {\n${ty.fields.map((f) => `    ${f.name}: ${formatType(f.type)},`).join("\n")}\n  }`;
    case "variant":
      return `variant ${ty.name} {\n${ty.cases.map((c) => `    ${c.type ? `${c.name}(${formatType(c.type)})` : c.name},`).join("\n")}\n  }`;
    case "enum":
      return `enum ${ty.name} {\n${ty.cases.map((c) => `    ${c},`).join("\n")}\n  }`;
    case "flags":
      return `flags ${ty.name} {\n${ty.flags.map((f) => `    ${f},`).join("\n")}\n  }`;
    default:
      return `type ${formatType(ty)};`;
  }
}

function params(fn: FuncType, skipSelf: boolean): string {
  return (skipSelf ? fn.params.slice(1) : fn.params).map((p) => `${p.name}: ${formatType(p.type)}`).join(", ");
}
function signature(fn: FuncType, skipSelf = false): string {
  return `func(${params(fn, skipSelf)})${fn.result === undefined ? "" : ` -> ${formatType(fn.result)}`}`;
}

/** One interface as a WIT `interface` block (full name as the block name). */
export function formatInterface(iface: InterfaceType): string {
  const named = new Map<string, WitType>();
  for (const f of Object.values(iface.functions)) {
    f.params.forEach((p) => collectNamed(p.type, named));
    if (f.result) collectNamed(f.result, named);
  }
  const lines: string[] = [];
  for (const ty of named.values()) lines.push(`  ${typeDefinition(ty)}`);
  const byResource = new Map<string, string[]>(iface.resources.map((r) => [r, []]));
  const plain: string[] = [];
  for (const [name, fn] of Object.entries(iface.functions)) {
    const m = /^\[(method|static|constructor)\]([^.]+)(?:\.(.+))?$/.exec(name);
    if (!m) {
      plain.push(`  ${name}: ${signature(fn)};`);
      continue;
    }
    const [, kind, resource, member] = m as unknown as [string, string, string, string | undefined];
    const list = byResource.get(resource) ?? byResource.set(resource, []).get(resource)!;
    if (kind === "constructor") list.push(`    constructor(${params(fn, false)});`);
    else if (kind === "static") list.push(`    ${member}: static ${signature(fn)};`);
    else list.push(`    ${member}: ${signature(fn, true)};`);
  }
  for (const [r, members] of byResource) lines.push(members.length === 0 ? `  resource ${r};` : `  resource ${r} {\n${members.join("\n")}\n  }`);
  lines.push(...plain);
  return `interface ${iface.name} {\n${lines.join("\n")}\n}`;
}

/**
 * A component's world as WIT text: `world NAME { import …; export …; }` followed by every interface's definition
 * (imports first, then exports), in name order.
 * @param name the world name to print (e.g. the file's base name or the component id).
 */
export function formatWorld(name: string, world: WorldDescription): string {
  const sorted = (o: Record<string, unknown>) => Object.keys(o).sort();
  const worldName = name.replace(/[^a-z0-9-]+/gi, "-").replace(/^-+|-+$/g, "").toLowerCase() || "component";
  const body = [
    ...sorted(world.imports).map((n) => `  import ${n};`),
    ...sorted(world.importedFunctions).map((n) => `  import ${n}: ${signature(world.importedFunctions[n]!)};`),
    ...sorted(world.exports).map((n) => `  export ${n};`),
    ...sorted(world.exportedFunctions).map((n) => `  export ${n}: ${signature(world.exportedFunctions[n]!)};`),
  ];
  const parts = [`world ${worldName} {\n${body.join("\n")}\n}`];
  for (const n of sorted(world.imports)) parts.push(`// imported\n${formatInterface(world.imports[n]!)}`);
  for (const n of sorted(world.exports)) parts.push(`// exported\n${formatInterface(world.exports[n]!)}`);
  return parts.join("\n\n");
}
