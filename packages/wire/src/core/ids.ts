/**
 * Validation of identifiers that become NATS subject tokens or JetStream KV keys.
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";

/** Longest identifier accepted, in characters. */
export const MAX_ID_LENGTH = 256;

/**
 * Characters allowed in ids that travel as one NATS subject token and as part of a KV key
 * (component ids, provider ids, host ids, link names, config names, WIT names, lattice names).
 */
const TOKEN_RE = /^[A-Za-z0-9_\-]+$/;

/**
 * Checks that `value` is a non-empty string of at most {@link MAX_ID_LENGTH} characters from `[A-Za-z0-9_-]`.
 * @param field the name reported in the error (e.g. `source_id`).
 * @returns the value, unchanged.
 * @throws InvalidArgumentError naming `field` when the value is missing, empty, too long, or holds a character unsafe in
 *   a NATS subject or KV key (`.`, `*`, `>`, whitespace, …).
 */
export function validateId(field: string, value: unknown): string {
  if (typeof value !== "string") {
    throw new InvalidArgumentError(field, `${field} must be a string, got ${value === null ? "null" : typeof value}`);
  }
  if (value.length === 0) throw new InvalidArgumentError(field, `${field} must not be empty`);
  if (value.length > MAX_ID_LENGTH) {
    throw new InvalidArgumentError(field, `${field} is too long (${value.length} > ${MAX_ID_LENGTH} characters)`);
  }
  if (!TOKEN_RE.test(value)) {
    const bad = [...value].find((c) => !/[A-Za-z0-9_\-]/.test(c)) ?? "?";
    throw new InvalidArgumentError(
      field,
      `${field} ${JSON.stringify(value)} has a character unsafe in a NATS subject or KV key (${JSON.stringify(bad)}); ` +
        "use letters, digits, '_' and '-'",
    );
  }
  return value;
}

/** True when `value` would pass {@link validateId}. */
export function isValidId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_ID_LENGTH && TOKEN_RE.test(value);
}

/** Characters allowed in a label key: those of ids plus `.` and `/` (as in `hostcore.arch`, `app.example.com/tier`). */
const LABEL_KEY_RE = /^[A-Za-z0-9_\-./]+$/;
/** Control characters (C0, DEL, C1), refused in label values: they would travel into logs, events and inventories. */
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Checks a host label (`label.put` on the control interface, `--label k=v` / `TRELLIS_LABEL_k=v` at start): the key
 * is 1 to {@link MAX_ID_LENGTH} characters from `[A-Za-z0-9_-./]`; the value a string of at most
 * {@link MAX_ID_LENGTH} characters without control characters (it may be empty).
 * @param field the name reported in the error (e.g. `key`, `labels`).
 * @returns the key and value, unchanged.
 * @throws InvalidArgumentError naming `field` and the label when either is bad.
 */
export function validateLabel(field: string, key: unknown, value: unknown): [string, string] {
  const shown = typeof key === "string" ? JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key) : String(key);
  if (typeof key !== "string" || key.length === 0) throw new InvalidArgumentError(field, "label keys must be non-empty strings");
  if (key.length > MAX_ID_LENGTH) {
    throw new InvalidArgumentError(field, `label key ${shown} is too long (${key.length} > ${MAX_ID_LENGTH} characters)`);
  }
  if (!LABEL_KEY_RE.test(key)) {
    const bad = [...key].find((c) => !/[A-Za-z0-9_\-./]/.test(c)) ?? "?";
    throw new InvalidArgumentError(
      field,
      `label key ${shown} has a character not allowed in label keys (${JSON.stringify(bad)}); use letters, digits, '_', '-', '.' and '/'`,
    );
  }
  if (typeof value !== "string") {
    throw new InvalidArgumentError(field, `label ${shown} must have a string value, got ${value === null ? "null" : typeof value}`);
  }
  if (value.length > MAX_ID_LENGTH) {
    throw new InvalidArgumentError(field, `value of label ${shown} is too long (${value.length} > ${MAX_ID_LENGTH} characters)`);
  }
  if (CONTROL_RE.test(value)) throw new InvalidArgumentError(field, `value of label ${shown} holds a control character`);
  return [key, value];
}
