/**
 * The control interface reply envelope `{ success, message, response? }` (reference §1.3).
 * @module
 */
import { TrellisError } from "./errors.ts";

/** Every control interface reply. `response` is omitted when there is no payload (reference §1.3). */
export interface CtlResponse<T = unknown> {
  success: boolean;
  message: string;
  response?: T;
  /** Trellis extension: the stable error code when `success` is false (docs/protocol.md, "Errors"). */
  error?: { code: string; details?: Record<string, unknown> };
}

/** A success envelope; `response` is included only when given. */
export function ok<T>(message: string, response?: T): CtlResponse<T> {
  return response === undefined ? { success: true, message } : { success: true, message, response };
}

/** A failure envelope carrying the error's message and, as a Trellis extension, its code. */
export function fail(err: unknown): CtlResponse<never> {
  const e = TrellisError.from(err);
  const error = e.details === undefined ? { code: e.code } : { code: e.code, details: e.details };
  return { success: false, message: e.message, error };
}
