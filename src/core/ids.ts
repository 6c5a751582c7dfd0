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
