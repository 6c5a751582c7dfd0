/**
 * Re-export of the wire package's `core/logger.ts` (packages/wire, ADR 0020): the host and the provider SDK share one definition.
 * @module
 */
export * from "../../packages/wire/src/core/logger.ts";
