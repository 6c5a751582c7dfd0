/**
 * The JavaScript names jco gives WIT items (kept apart from compile.ts so that worker threads do not load jco).
 * @module
 */
import { camelCase } from "../../packages/wire/src/invocation/types.ts";

/** The JavaScript name jco gives a WIT function or resource method (`get-keys` → `getKeys`). */
export function jsName(witName: string): string {
  return camelCase(witName);
}

/** The class name jco gives a WIT resource (`incoming-request` → `IncomingRequest`). */
export function className(resource: string): string {
  const c = camelCase(resource);
  return c.charAt(0).toUpperCase() + c.slice(1);
}
