/**
 * The `--metrics-listen` address (ADR 0026).
 * @module
 */
import { ErrorCode, TrellisError } from "../core/errors.ts";

/**
 * Parses `HOST:PORT` (`[::1]:9090`, `:9090` for all interfaces).
 * @throws TrellisError `INVALID_ARGUMENT` naming `field`.
 */
export function parseListenAddress(field: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new TrellisError(ErrorCode.InvalidArgument, `${field} must be HOST:PORT, got ${JSON.stringify(value)}`, { details: { field } });
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}
