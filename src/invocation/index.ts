/**
 * Re-export of the invocation protocol (packages/wire/src/invocation, ADR 0020), kept so that host modules and tests import `src/invocation/index.ts` as before. Other modules of the protocol are imported from packages/wire/src/invocation/ directly.
 * @module
 */
export * from "../../packages/wire/src/invocation/index.ts";
