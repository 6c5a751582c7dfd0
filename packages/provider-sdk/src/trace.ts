/**
 * The conformance trace (docs/protocol.md "Provider contract → Conformance trace"): when the provider's config has
 * `trellis_conformance_trace = stdout`, the provider writes one line per lifecycle callback to stdout,
 * `TRELLIS_TRACE {json}`. The conformance suite (test/conformance) reads these lines from the host's log of the
 * provider's output; nothing else uses them.
 * @module
 */
import type { HostData } from "../../wire/src/provider/host-data.ts";

/** Config key that switches the trace on (value `stdout`). */
export const TRACE_CONFIG_KEY = "trellis_conformance_trace";
/** Prefix of every trace line. */
export const TRACE_PREFIX = "TRELLIS_TRACE ";

/** Writes trace lines when enabled by config. */
export class Tracer {
  #enabled: boolean;

  constructor(hd: HostData) {
    this.#enabled = hd.config[TRACE_CONFIG_KEY] === "stdout";
  }

  /** Follows the provider's config (a config update may switch the trace on or off). */
  configure(config: Readonly<Record<string, string>>): void {
    this.#enabled = config[TRACE_CONFIG_KEY] === "stdout";
  }

  /** Writes `TRELLIS_TRACE {"event": event, ...data, "t": epoch ms}` when enabled. */
  emit(event: string, data: Record<string, unknown>): void {
    if (this.#enabled) process.stdout.write(`${TRACE_PREFIX}${JSON.stringify({ event, ...data, t: performance.timeOrigin + performance.now() })}\n`);
  }

  /** Calls `done` once stdout has flushed what was written. */
  flush(done: () => void): void {
    if (process.stdout.writableLength === 0) done();
    else process.stdout.write("", () => done());
  }
}
