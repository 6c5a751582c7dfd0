/**
 * The export side of a component inside a worker thread (issue 3 §5): which export an invocation names (an interface
 * function, a world-level function, or `wasi:http/incoming-handler.handle`), its arguments and answer in wire or JSON
 * form, the call into an instance with the watchdog told that guest code runs, the HTTP export path (an
 * {@link IncomingRequest} in, the collected response out), failures explained as `COMPONENT_TRAP`, and the
 * `trellis:runtime/introspect` answers.
 * @module
 */
import { ErrorCode, NotFoundError, TrellisError } from "../core/errors.ts";
import { stripVersion } from "../core/subjects.ts";
import { decodeParams, encodeResult } from "../../packages/wire/src/invocation/codec.ts";
import { HTTP_HANDLE_TYPE, INCOMING_HANDLER, type HttpRequest, type HttpResponse } from "../../packages/wire/src/invocation/http.ts";
import { argsFromJson, resultToJson } from "../../packages/wire/src/invocation/json.ts";
import { INTROSPECT_TYPE, parseJsonParams, WORLD_IFACE, type InvocationRequest, type WorldDescription } from "../../packages/wire/src/invocation/server.ts";
import type { FuncType, InterfaceType } from "../../packages/wire/src/invocation/types.ts";
import type { CompiledMeta } from "./compile.ts";
import type { GuestSpec, Instance } from "./guest-types.ts";
import { jsName } from "./names.ts";
import type { WatchdogWriter } from "./watchdog.ts";
import { WASM_PAGE } from "./wasm-patch.ts";
import { collectResponse, IncomingRequest, ResponseOutparam } from "./wasi/http.ts";

const enc = new TextEncoder();

/** The export an invocation calls (what {@link resolveExport} finds). */
export interface ExportTarget {
  /** Full (versioned) name of the exported interface; `""` for a world-level export (served under `world`). */
  fullName: string;
  /** The function's type (`wasi:http/incoming-handler.handle` has {@link HTTP_HANDLE_TYPE}). */
  fnType: FuncType;
  /** True for `wasi:http/incoming-handler.handle`: called through {@link callHttp}. */
  http: boolean;
}

/**
 * Finds the export `req` calls (`req.iface`, unversioned, or `world` for a world-level export; `req.fn`).
 * @param exportNames full export interface names by unversioned name.
 * @throws NotFoundError when the component does not export it; TrellisError `INVALID_ARGUMENT` for a resource
 *   constructor, method or static function (exported resources are not served over the lattice).
 */
export function resolveExport(spec: Pick<GuestSpec, "componentId" | "meta">, exportNames: ReadonlyMap<string, string>, req: Pick<InvocationRequest, "iface" | "fn">): ExportTarget {
  // world-level exports (`export add: func(…)`) are served under the interface token `world`; fullName "" marks them
  const world = req.iface === WORLD_IFACE;
  const fullName = world ? "" : exportNames.get(req.iface);
  const ifaceType = fullName ? spec.meta.types.exports[fullName] : undefined;
  const http = req.iface === INCOMING_HANDLER && req.fn === "handle";
  const fnType: FuncType | undefined = http
    ? HTTP_HANDLE_TYPE
    : world
      ? Object.hasOwn(spec.meta.types.exportedFunctions, req.fn) ? spec.meta.types.exportedFunctions[req.fn] : undefined
      : ifaceType?.functions[req.fn];
  if (fullName === undefined || !fnType) {
    throw new NotFoundError(`component ${spec.componentId} does not export ${req.iface}.${req.fn}`, {
      componentId: spec.componentId,
      iface: req.iface,
      fn: req.fn,
    });
  }
  if (/^\[(method|constructor|static)\]/.test(req.fn)) {
    throw new TrellisError(ErrorCode.InvalidArgument, `calling resources exported by component ${spec.componentId} over the lattice is not supported`);
  }
  return { fullName, fnType, http };
}

/**
 * The arguments of `req` for a function of type `fnType`: from JSON params (an array; empty text is no arguments)
 * when `req.json`, else from the wire encoding.
 * @throws TrellisError `INVALID_ARGUMENT` for params that are not valid JSON; the codec's errors for bad params.
 */
export function decodeArgs(fnType: FuncType, req: Pick<InvocationRequest, "json" | "params">): unknown[] {
  return req.json ? argsFromJson(fnType, parseJsonParams(req.params)) : decodeParams(fnType, req.params);
}

/** The answer to a call of type `fnType` that returned `value`: JSON text (UTF-8) when `json`, else the wire encoding. */
export function encodeAnswer(fnType: FuncType, value: unknown, json: boolean): Uint8Array {
  if (json) return enc.encode(JSON.stringify(resultToJson(fnType, value)) ?? "null");
  return encodeResult(fnType, value);
}

/** Runs `f` (which enters guest code) with the watchdog told that guest code of the call in `slot` runs. */
async function runGuest<T>(wd: WatchdogWriter, slot: number, f: () => Promise<T>): Promise<T> {
  wd.running(slot);
  let p: Promise<T>;
  try {
    p = f();
  } finally {
    wd.running(-1);
  }
  try {
    return await p;
  } finally {
    wd.running(-1);
  }
}

/**
 * Calls export `fn` of interface `fullName` (`""`: a world-level export) on `inst`, which serves a call
 * (`inst.call` set). For a function returning `result`, the guest's return is `{ tag: "ok", val }` and an error it
 * throws with a `payload` is `{ tag: "err", val: payload }`.
 * @throws NotFoundError when the instance lacks the export; whatever else the guest throws (a trap, an exit).
 */
export async function callExport(
  inst: Instance,
  wd: WatchdogWriter,
  componentId: string,
  fullName: string,
  fn: string,
  type: FuncType,
  args: unknown[],
): Promise<unknown> {
  // a world-level export is a function of the instance's exports itself
  const f = fullName === "" ? (inst.exports as unknown as Record<string, ((...a: unknown[]) => Promise<unknown>) | undefined>)[jsName(fn)] : inst.exports[fullName]?.[jsName(fn)];
  if (!f) throw new NotFoundError(`component ${componentId} does not export ${fullName}.${fn}`);
  try {
    const ret = await runGuest(wd, inst.call!.slot, () => f(...args));
    return type.result?.kind === "result" ? { tag: "ok", val: ret } : ret;
  } catch (err) {
    if (type.result?.kind === "result" && err instanceof Error && Object.prototype.hasOwnProperty.call(err, "payload")) {
      return { tag: "err", val: (err as unknown as { payload: unknown }).payload };
    }
    throw err;
  }
}

/**
 * Calls `wasi:http/incoming-handler.handle` (interface `fullName`) on `inst`, which serves a call (`inst.call` set),
 * with `request` and collects the response the guest sets.
 * @throws NotFoundError when the instance lacks the export; TrellisError `APPLICATION` when the guest answers with an
 *   error (its `error-code` tag in the details); whatever else the guest throws.
 */
export async function callHttp(inst: Instance, wd: WatchdogWriter, componentId: string, fullName: string, request: HttpRequest): Promise<HttpResponse> {
  const handle = inst.exports[fullName]?.["handle"];
  if (!handle) throw new NotFoundError(`component ${componentId} does not export ${fullName}.handle`);
  const out = new ResponseOutparam();
  await runGuest(wd, inst.call!.slot, () => handle(new IncomingRequest(request), out));
  const res = collectResponse(out);
  if ("error" in res) {
    throw new TrellisError(ErrorCode.Application, `component ${componentId}: ${res.error}`, {
      details: { componentId, ...(res.errorCode ? { error_code: res.errorCode.tag } : {}) },
    });
  }
  return res;
}

/**
 * A failed call's error as a TrellisError: kept when it is one; a trap (`WebAssembly.RuntimeError`, `RangeError`) is
 * `COMPONENT_TRAP`, saying "ran out of memory" when `inst`'s memory is within 16 pages of `spec.maxMemoryBytes`;
 * anything else is `COMPONENT_TRAP` "failed".
 */
export function explainFailure(err: unknown, inst: Instance | undefined, spec: Pick<GuestSpec, "componentId" | "maxMemoryBytes">): TrellisError {
  if (err instanceof TrellisError) return err;
  if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
    const e = err as Error;
    const mem = inst?.memory();
    const nearCap = mem && mem.buffer.byteLength + 16 * WASM_PAGE > spec.maxMemoryBytes;
    const msg = nearCap
      ? `component ${spec.componentId} ran out of memory (limit ${Math.round(spec.maxMemoryBytes / 1048576)} MiB) and trapped: ${e.message}`
      : `component ${spec.componentId} trapped: ${e.message}`;
    return new TrellisError(ErrorCode.ComponentTrap, msg, { details: { componentId: spec.componentId }, cause: err });
  }
  return new TrellisError(ErrorCode.ComponentTrap, `component ${spec.componentId} failed: ${(err as Error)?.message ?? String(err)}`, {
    details: { componentId: spec.componentId },
    cause: err,
  });
}

/**
 * `trellis:runtime/introspect.world`: the component's imports and exports ({@link WorldDescription}) as JSON text,
 * returned JSON-encoded when `json`, else wire-encoded as {@link INTROSPECT_TYPE}.
 */
export function introspectWorld(types: CompiledMeta["types"], json: boolean): Uint8Array {
  const { imports, exports, importedFunctions, exportedFunctions } = types;
  const text = JSON.stringify({ imports, exports, importedFunctions, exportedFunctions } satisfies WorldDescription);
  return json ? enc.encode(JSON.stringify(text)) : encodeResult(INTROSPECT_TYPE, text);
}

/**
 * `trellis:runtime/introspect` (the exports): the exported interfaces as served over the lattice (the HTTP handler
 * with its wire `handle` type; world-level functions under `world`), as JSON text, returned as
 * {@link introspectWorld} does.
 */
export function introspectExports(types: CompiledMeta["types"], json: boolean): Uint8Array {
  const ifaces: InterfaceType[] = Object.values(types.exports).map((i) =>
    stripVersion(i.name) === INCOMING_HANDLER ? { name: i.name, resources: [], functions: { handle: HTTP_HANDLE_TYPE } } : i,
  );
  const worldFns = types.exportedFunctions;
  if (Object.keys(worldFns).length > 0) ifaces.push({ name: WORLD_IFACE, resources: [], functions: worldFns });
  const text = JSON.stringify(ifaces);
  return json ? enc.encode(JSON.stringify(text)) : encodeResult(INTROSPECT_TYPE, text);
}

