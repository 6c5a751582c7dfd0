/**
 * The interface test/support/bounded-provider.ts serves (shared with test/invocation-bounds.test.ts).
 * @module
 */
import { t, type InterfaceType } from "trellis/provider-sdk";

/** `test:bounds/sink@0.1.0`: `size(data: list<u8>) -> u32`, `timeout() -> u32`. */
export const SINK: InterfaceType = {
  name: "test:bounds/sink@0.1.0",
  resources: [],
  functions: {
    size: t.func([["data", t.list(t.u8)]], t.u32),
    timeout: t.func([], t.u32),
  },
};
