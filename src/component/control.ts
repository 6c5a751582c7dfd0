/**
 * Parsing of the component control requests `component.scale.{host}` and `component.update.{host}`
 * (reference §1.4; issue 3 §7). Malformed requests throw {@link InvalidArgumentError} naming the field.
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { validateId } from "../core/ids.ts";
import { parsePreopens, type Preopen } from "./preopens.ts";

/** A validated `component.scale` request. */
export interface ScaleRequest {
  componentId: string;
  /** Image reference; `""` when omitted (allowed only to scale a running component). */
  componentRef: string;
  /** Max instances; 0 stops the component. Read from `count`, or `max_instances` (what the washboard sends). */
  count: number;
  annotations: Record<string, string>;
  /** Named configs, merged left to right. */
  config: string[];
  /** `component_limits` (e.g. `max_linear_memory` bytes, `max_execution_time` ms). */
  limits: Record<string, string>;
  allowUpdate: boolean;
  hostId: string | undefined;
  /** Host directories given to the component (Trellis extension `preopens`; ./preopens.ts). */
  preopens?: Preopen[];
}

/** A validated `component.update` request. */
export interface UpdateRequest {
  componentId: string;
  newComponentRef: string;
  annotations: Record<string, string> | undefined;
  hostId: string | undefined;
}

function parseObject(payload: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(payload));
  } catch (err) {
    throw new InvalidArgumentError("request", `${what} request is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new InvalidArgumentError("request", `${what} request must be a JSON object`);
  }
  return v as Record<string, unknown>;
}

function stringMap(field: string, v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new InvalidArgumentError(field, `${field} must be an object of strings`);
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== "string") throw new InvalidArgumentError(`${field}.${k}`, `${field}.${k} must be a string`);
  }
  return v as Record<string, string>;
}

function optString(field: string, v: unknown): string | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw new InvalidArgumentError(field, `${field} must be a string`);
  return v;
}

/**
 * Parses `component.scale` (reference §1.4): `component_id` (required), `component_ref`, `count` or `max_instances`
 * (u32; missing means 0 = stop), `annotations`, `config`, `component_limits`, `allow_update`, `host_id`.
 * @throws InvalidArgumentError naming the field.
 */
export function parseScaleRequest(payload: Uint8Array): ScaleRequest {
  const v = parseObject(payload, "component.scale");
  const componentId = validateId("component_id", v.component_id);
  const rawCount = v.count ?? v.max_instances ?? 0;
  const field = v.count !== undefined ? "count" : "max_instances";
  if (typeof rawCount !== "number" || !Number.isInteger(rawCount) || rawCount < 0 || rawCount > 0xffffffff) {
    throw new InvalidArgumentError(field, `${field} must be an integer from 0 to 4294967295, got ${JSON.stringify(rawCount)}`);
  }
  let config: string[] = [];
  if (v.config !== undefined && v.config !== null) {
    if (!Array.isArray(v.config)) throw new InvalidArgumentError("config", "config must be an array of config names");
    config = v.config.map((c, i) => validateId(`config[${i}]`, c));
  }
  if (v.allow_update !== undefined && typeof v.allow_update !== "boolean") {
    throw new InvalidArgumentError("allow_update", "allow_update must be a boolean");
  }
  return {
    componentId,
    componentRef: optString("component_ref", v.component_ref) ?? "",
    count: rawCount,
    annotations: stringMap("annotations", v.annotations),
    config,
    limits: stringMap("component_limits", v.component_limits),
    allowUpdate: v.allow_update === true,
    hostId: optString("host_id", v.host_id),
    preopens: parsePreopens(v.preopens),
  };
}

/**
 * Parses `component.update` (reference §1.4): `component_id`, `new_component_ref` (both required), `annotations`,
 * `host_id`.
 * @throws InvalidArgumentError naming the field.
 */
export function parseUpdateRequest(payload: Uint8Array): UpdateRequest {
  const v = parseObject(payload, "component.update");
  const componentId = validateId("component_id", v.component_id);
  const newComponentRef = optString("new_component_ref", v.new_component_ref);
  if (!newComponentRef) throw new InvalidArgumentError("new_component_ref", "new_component_ref is required");
  return {
    componentId,
    newComponentRef,
    annotations: v.annotations === undefined || v.annotations === null ? undefined : stringMap("annotations", v.annotations),
    hostId: optString("host_id", v.host_id),
  };
}
