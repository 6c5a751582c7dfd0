/**
 * The component runtime (issue 3): loading, compiling with an on-disk cache, worker isolation with a JSPI bridge,
 * link-routed imports, lattice-served exports, and the `component.scale` / `component.update` control handlers.
 *
 * The host constructs one {@link ComponentRuntime} with {@link ComponentRuntime.create} and calls
 * `handleScale`, `handleUpdate`, `inventory` and `close`. Design: docs/adr/0002-component-isolation-and-bridging.md.
 * @module
 */
export { ComponentRuntime, componentRuntime } from "./runtime.ts";
export type { ComponentRuntimeOptions, ComponentPolicy } from "./runtime.ts";
export { defaultComponentWorkers } from "./runtime.ts";
export type { ShardStats } from "./spread.ts";
export { parseScaleRequest, parseUpdateRequest } from "./control.ts";
export type { ScaleRequest, UpdateRequest } from "./control.ts";
export { loadComponentBytes, resolveRef, ComponentLoadError, DEFAULT_MAX_COMPONENT_BYTES } from "./loader.ts";
export type { LoadOptions } from "./loader.ts";
export { compileComponent, sha256, COMPILER_TAG } from "./compile.ts";
export type { CompiledComponent, CompiledMeta } from "./compile.ts";
export { readComponentTypes, classifyWasm, ComponentFormatError } from "./component-types.ts";
export type { ComponentTypes } from "./component-types.ts";
export { buildLinkTable, resolveTarget, isLocalInterface, LinkNotFoundError } from "./routing.ts";
export type { LinkTable } from "./routing.ts";
