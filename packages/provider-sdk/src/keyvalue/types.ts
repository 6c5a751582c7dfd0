/**
 * WIT types of `wasi:keyvalue/store` and `wasi:keyvalue/atomics` @0.2.0-draft (the version wasmCloud 1.x providers
 * and components use), for providers that serve them and for callers.
 * @module
 */
import { t, type FuncType, type InterfaceType, type WitType } from "../../../wire/src/invocation/index.ts";

/** `variant error { no-such-store, access-denied, other(string) }`. */
export const KV_ERROR: WitType = t.variant([["no-such-store", undefined], ["access-denied", undefined], ["other", t.string]], "error");
/** `record key-response { keys: list<string>, cursor: option<u64> }`. */
export const KEY_RESPONSE: WitType = t.record([["keys", t.list(t.string)], ["cursor", t.option(t.u64)]], "key-response");

const self: [string, WitType] = ["self", t.borrow("bucket")];
const fn = (params: [string, WitType][], result: WitType): FuncType => t.func(params, result);

/** `wasi:keyvalue/store@0.2.0-draft`. */
export const KEYVALUE_STORE: InterfaceType = {
  name: "wasi:keyvalue/store@0.2.0-draft",
  resources: ["bucket"],
  functions: {
    open: fn([["identifier", t.string]], t.result(t.own("bucket"), KV_ERROR)),
    "[method]bucket.get": fn([self, ["key", t.string]], t.result(t.option(t.list(t.u8)), KV_ERROR)),
    "[method]bucket.set": fn([self, ["key", t.string], ["value", t.list(t.u8)]], t.result(undefined, KV_ERROR)),
    "[method]bucket.delete": fn([self, ["key", t.string]], t.result(undefined, KV_ERROR)),
    "[method]bucket.exists": fn([self, ["key", t.string]], t.result(t.bool, KV_ERROR)),
    "[method]bucket.list-keys": fn([self, ["cursor", t.option(t.u64)]], t.result(KEY_RESPONSE, KV_ERROR)),
  },
};

/** `wasi:keyvalue/atomics@0.2.0-draft`. */
export const KEYVALUE_ATOMICS: InterfaceType = {
  name: "wasi:keyvalue/atomics@0.2.0-draft",
  resources: [],
  functions: {
    increment: fn([["bucket", t.borrow("bucket")], ["key", t.string], ["delta", t.u64]], t.result(t.u64, KV_ERROR)),
  },
};

/** The `error` value `other(message)`. */
export function kvOther(message: string): { tag: "other"; val: string } {
  return { tag: "other", val: message };
}
