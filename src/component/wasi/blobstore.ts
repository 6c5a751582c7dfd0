/**
 * `wasi:blobstore/types` kept local to the component (docs/protocol.md §8, "value resources"): `outgoing-value` and
 * `incoming-value` wrap bytes and their wasi:io streams, and cross the lattice as their content — the handle bytes
 * of an `outgoing-value` passed to `container.write-data` are what the guest wrote; an `incoming-value` returned by
 * `container.get-data` is rebuilt here from its handle bytes. (Contract of the blobstore-fs provider, ADR 0007.)
 * @module
 */
import { BufferSink, InputStream, OutputStream } from "./io.ts";

/** `wasi:blobstore/types.outgoing-value`: collects what the guest writes. */
export class OutgoingValue {
  readonly sink = new BufferSink();
  #stream: OutputStream | undefined;
  static newOutgoingValue(): OutgoingValue {
    return new OutgoingValue();
  }
  outgoingValueWriteBody(): OutputStream {
    if (this.#stream) throw undefined;
    this.#stream = new OutputStream(this.sink);
    return this.#stream;
  }
  static finish(v: OutgoingValue): void {
    if (v.#stream) v.#stream.closed = true;
  }
}

/** `wasi:blobstore/types.incoming-value`: bytes received from a blobstore target. */
export class IncomingValue {
  readonly data: Uint8Array;
  constructor(data: Uint8Array) {
    this.data = data;
  }
  static incomingValueConsumeSync(v: IncomingValue): Uint8Array {
    return v.data;
  }
  static incomingValueConsumeAsync(v: IncomingValue): InputStream {
    return new InputStream(v.data);
  }
  size(): bigint {
    return BigInt(this.data.length);
  }
}

/** The `wasi:blobstore/types` import object. */
export function blobstoreTypes(): Record<string, unknown> {
  return { OutgoingValue, IncomingValue };
}

/**
 * Resources of local interfaces that cross the lattice as their content, by `namespace:package#resource`.
 * `toBytes` returns undefined for a value of another class.
 */
export const VALUE_RESOURCES: Record<string, { toBytes(v: unknown): Uint8Array | undefined; fromBytes(b: Uint8Array): unknown }> = {
  "wasi:blobstore#outgoing-value": {
    toBytes: (v) => (v instanceof OutgoingValue ? v.sink.bytes() : undefined),
    fromBytes: (b) => {
      const v = new OutgoingValue();
      v.sink.write(b);
      return v;
    },
  },
  "wasi:blobstore#incoming-value": {
    toBytes: (v) => (v instanceof IncomingValue ? v.data : undefined),
    fromBytes: (b) => new IncomingValue(b),
  },
};
