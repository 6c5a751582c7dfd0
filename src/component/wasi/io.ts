/**
 * `wasi:io` 0.2 (error, streams, poll) for guests, in memory and per instance: streams are backed by byte arrays
 * or sinks the host supplies; `poll` and `pollable.block` are JSPI-suspending imports that await promises.
 * @module
 */

/** `wasi:io/error.error`. */
export class IoError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
  toDebugString(): string {
    return this.message;
  }
}

/** What a pollable waits for: a readiness check and a promise that settles when ready. */
export interface PollSource {
  ready(): boolean;
  wait(): Promise<void>;
}

const READY: PollSource = { ready: () => true, wait: () => Promise.resolve() };

/** `wasi:io/poll.pollable`. */
export class Pollable {
  #src: PollSource;
  constructor(src: PollSource = READY) {
    this.#src = src;
  }
  /** A pollable that becomes ready when `promise` settles. */
  static fromPromise(promise: Promise<unknown>): Pollable {
    let done = false;
    const wait = promise.then(
      () => void (done = true),
      () => void (done = true),
    );
    return new Pollable({ ready: () => done, wait: () => wait });
  }
  ready(): boolean {
    return this.#src.ready();
  }
  /** Suspends the guest (JSPI) until ready. */
  block(): Promise<void> | undefined {
    return this.#src.ready() ? undefined : this.#src.wait();
  }
}

/** `wasi:io/poll.poll`: resolves with the indexes of the ready pollables once at least one is ready. */
export function poll(list: Pollable[]): Uint32Array | Promise<Uint32Array> {
  if (list.length === 0) throw new Error("wasi:io/poll.poll called with an empty list");
  const ready = () => Uint32Array.from(list.flatMap((p, i) => (p.ready() ? [i] : [])));
  const now = ready();
  if (now.length > 0) return now;
  return Promise.race(list.map((p) => p.block() ?? Promise.resolve())).then(ready);
}

const CLOSED = { tag: "closed" } as const;

/** `wasi:io/streams.input-stream` over bytes that are all available (request and response bodies, stdin). */
export class InputStream {
  #data: Uint8Array;
  #pos = 0;
  constructor(data: Uint8Array = new Uint8Array(0)) {
    this.#data = data;
  }
  read(len: bigint): Uint8Array {
    if (this.#pos >= this.#data.length) {
      if (len === 0n) return new Uint8Array(0);
      throw CLOSED;
    }
    const n = Math.min(Number(len), this.#data.length - this.#pos);
    const out = this.#data.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }
  blockingRead(len: bigint): Uint8Array {
    return this.read(len);
  }
  skip(len: bigint): bigint {
    return BigInt(this.read(len).length);
  }
  blockingSkip(len: bigint): bigint {
    return this.skip(len);
  }
  subscribe(): Pollable {
    return new Pollable();
  }
}

/** Where an output stream's bytes go. */
export interface Sink {
  write(bytes: Uint8Array): void;
  /** Largest write accepted at once, in bytes. @default 1 MiB */
  permit?: number;
}

/** `wasi:io/streams.output-stream` writing to a {@link Sink}. */
export class OutputStream {
  #sink: Sink;
  closed = false;
  constructor(sink: Sink) {
    this.#sink = sink;
  }
  checkWrite(): bigint {
    if (this.closed) throw CLOSED;
    return BigInt(this.#sink.permit ?? 1024 * 1024);
  }
  write(buf: Uint8Array): void {
    if (this.closed) throw CLOSED;
    // jco hands over a copy of the guest's bytes (memory.buffer.slice), so keeping `buf` is safe
    this.#sink.write(buf);
  }
  blockingWriteAndFlush(buf: Uint8Array): void {
    this.write(buf);
  }
  flush(): void {
    if (this.closed) throw CLOSED;
  }
  blockingFlush(): void {
    this.flush();
  }
  writeZeroes(len: bigint): void {
    this.write(new Uint8Array(Number(len)));
  }
  blockingWriteZeroesAndFlush(len: bigint): void {
    this.writeZeroes(len);
  }
  splice(src: InputStream, len: bigint): bigint {
    const bytes = src.read(len);
    this.write(bytes);
    return BigInt(bytes.length);
  }
  blockingSplice(src: InputStream, len: bigint): bigint {
    return this.splice(src, len);
  }
  subscribe(): Pollable {
    return new Pollable();
  }
}

/** A sink collecting bytes in memory, with a size limit. */
export class BufferSink implements Sink {
  readonly parts: Uint8Array[] = [];
  size = 0;
  readonly limit: number;
  constructor(limit = 64 * 1024 * 1024) {
    this.limit = limit;
  }
  write(bytes: Uint8Array): void {
    this.size += bytes.length;
    if (this.size > this.limit) throw { tag: "last-operation-failed", val: new IoError(`body larger than ${this.limit} bytes`) };
    this.parts.push(bytes);
  }
  bytes(): Uint8Array {
    if (this.parts.length === 1) return this.parts[0]!;
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** A sink that splits text into lines and hands each complete line to `emit` (for stdout/stderr). */
export class LineSink implements Sink {
  #pending = "";
  readonly #emit: (line: string) => void;
  readonly #decoder = new TextDecoder();
  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }
  write(bytes: Uint8Array): void {
    this.#pending += this.#decoder.decode(bytes, { stream: true });
    let nl = this.#pending.indexOf("\n");
    while (nl >= 0) {
      this.#emit(this.#pending.slice(0, nl));
      this.#pending = this.#pending.slice(nl + 1);
      nl = this.#pending.indexOf("\n");
    }
    if (this.#pending.length > 8192) {
      this.#emit(this.#pending);
      this.#pending = "";
    }
  }
  /** Emits a trailing partial line. */
  flushLine(): void {
    if (this.#pending) this.#emit(this.#pending);
    this.#pending = "";
  }
}
