/**
 * Re-export of the wire package's `provider/host-data.ts` (packages/wire, ADR 0020): the host encodes host data, the SDK decodes it.
 * @module
 */
export * from "../../packages/wire/src/provider/host-data.ts";
