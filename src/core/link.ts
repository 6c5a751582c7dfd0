/**
 * Re-export of the wire package's `core/link.ts` (packages/wire, ADR 0020): the host and the provider SDK share one definition.
 * @module
 */
export * from "../../packages/wire/src/core/link.ts";
