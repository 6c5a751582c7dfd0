#!/usr/bin/env node
/**
 * A provider built on the SDK for test/invocation-bounds.test.ts, run as its own process so that the test can read
 * its memory from /proc. Remote mode (`--provider-id`, `--lattice`, `--nats-url`); its invocation limits come from
 * the JSON in `BOUNDS_LIMITS` (e.g. `{"maxCallTimeoutMs":1500}`). Exports `test:bounds/sink@0.1.0`:
 * `size(data: list<u8>) -> u32` (the length received) and `timeout() -> u32` (the `timeoutMs` the handler saw, 0 when
 * none). Prints `READY` on stdout once serving.
 * @module
 */
import { runProvider, type CallContext, type InvocationLimits } from "trellis/provider-sdk";
import { SINK } from "./bounded-sink.ts";

const limits = JSON.parse(process.env.BOUNDS_LIMITS ?? "{}") as InvocationLimits;
await runProvider(
  {
    name: "bounded",
    exports: [
      {
        type: SINK,
        requireLink: false,
        handlers: {
          size: (data: Uint8Array) => data.length,
          timeout: (call: CallContext) => call.request.timeoutMs ?? 0,
        },
      },
    ],
  },
  { invocationLimits: limits },
);
process.stdout.write("READY\n");
