/**
 * WIT types of `wasi:blobstore` `blobstore` and `container` @0.2.0-draft, as the blobstore-fs provider serves them
 * on the invocation protocol (docs/adr/0007-first-party-providers.md, "blobstore-fs").
 *
 * Resource handles on the wire (docs/protocol.md §8):
 * - `container`: the UTF-8 container name (valid at every instance);
 * - `stream-object-names`: an opaque id of a listing kept by the provider instance that made it;
 * - `outgoing-value`, `incoming-value` are **value resources**: their handle bytes are the object's content. The
 *   caller's host keeps `wasi:blobstore/types` (these two resources and their streams) local to the component and
 *   sends the bytes a guest wrote as the `outgoing-value` handle of `write-data`; it turns the `incoming-value` handle
 *   that `get-data` returns back into a local value the guest reads with `incoming-value-consume-sync|async`.
 * @module
 */
import { t, type FuncType, type InterfaceType, type WitType } from "trellis/provider-sdk";

const fn = (params: [string, WitType][], result?: WitType): FuncType => t.func(params, result);
const err = t.string;
const res = (ok?: WitType) => t.result(ok, err);

/** `record container-metadata { name: container-name, created-at: timestamp }` (timestamp: u64 seconds since the epoch). */
export const CONTAINER_METADATA: WitType = t.record([["name", t.string], ["created-at", t.u64]], "container-metadata");
/** `record object-metadata { name, container, created-at, size }`. */
export const OBJECT_METADATA: WitType = t.record(
  [["name", t.string], ["container", t.string], ["created-at", t.u64], ["size", t.u64]],
  "object-metadata",
);
/** `record object-id { container: container-name, object: object-name }`. */
export const OBJECT_ID: WitType = t.record([["container", t.string], ["object", t.string]], "object-id");

/** `wasi:blobstore/blobstore@0.2.0-draft`. */
export const BLOBSTORE: InterfaceType = {
  name: "wasi:blobstore/blobstore@0.2.0-draft",
  resources: ["container"],
  functions: {
    "create-container": fn([["name", t.string]], res(t.own("container"))),
    "get-container": fn([["name", t.string]], res(t.own("container"))),
    "delete-container": fn([["name", t.string]], res()),
    "container-exists": fn([["name", t.string]], res(t.bool)),
    "copy-object": fn([["src", OBJECT_ID], ["dest", OBJECT_ID]], res()),
    "move-object": fn([["src", OBJECT_ID], ["dest", OBJECT_ID]], res()),
  },
};

const self: [string, WitType] = ["self", t.borrow("container")];
const names: [string, WitType] = ["self", t.borrow("stream-object-names")];

/** `wasi:blobstore/container@0.2.0-draft`. */
export const CONTAINER: InterfaceType = {
  name: "wasi:blobstore/container@0.2.0-draft",
  resources: ["container", "stream-object-names", "incoming-value", "outgoing-value"],
  functions: {
    "[method]container.name": fn([self], res(t.string)),
    "[method]container.info": fn([self], res(CONTAINER_METADATA)),
    "[method]container.get-data": fn([self, ["name", t.string], ["start", t.u64], ["end", t.u64]], res(t.own("incoming-value"))),
    "[method]container.write-data": fn([self, ["name", t.string], ["data", t.borrow("outgoing-value")]], res()),
    "[method]container.list-objects": fn([self], res(t.own("stream-object-names"))),
    "[method]container.delete-object": fn([self, ["name", t.string]], res()),
    "[method]container.delete-objects": fn([self, ["names", t.list(t.string)]], res()),
    "[method]container.has-object": fn([self, ["name", t.string]], res(t.bool)),
    "[method]container.object-info": fn([self, ["name", t.string]], res(OBJECT_METADATA)),
    "[method]container.clear": fn([self], res()),
    "[method]stream-object-names.read-stream-object-names": fn([names, ["len", t.u64]], res(t.tuple(t.list(t.string), t.bool))),
    "[method]stream-object-names.skip-stream-object-names": fn([names, ["num", t.u64]], res(t.tuple(t.u64, t.bool))),
  },
};
