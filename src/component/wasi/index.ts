/**
 * The interfaces a host implements for its guests (issue 3 §4), per instance and under host policy:
 * WASI 0.2 (io, cli, clocks, random from preview2-shim, filesystem and sockets denied), `wasi:http` (carried form),
 * `wasi:logging/logging`, `wasi:config/store` + `wasi:config/runtime`, `wasmcloud:bus/lattice`, `wasi:blobstore/types`,
 * `wasmcloud:secrets/store` + `wasmcloud:secrets/reveal` (the component's secrets, docs/adr/0017-secrets.md)
 * (value resources, see ./blobstore.ts).
 * Keys are the unversioned interface names jco's glue reads (`imports["wasi:cli/stdout"]`).
 * @module
 */
import { insecure, insecureSeed, random } from "@bytecodealliance/preview2-shim/random";
import { ErrorCode, TrellisError } from "../../core/errors.ts";
import { blobstoreTypes } from "./blobstore.ts";
import { httpTypes, outgoingHandle, type OutgoingRequest, type OutgoingSender, type RequestOptions } from "./http.ts";
import { InputStream, IoError, LineSink, OutputStream, Pollable, poll } from "./io.ts";
import type { SecretValue } from "../../secrets/types.ts";
import { filesystemImports, type Preopen } from "./filesystem.ts";

/** Levels of `wasi:logging/logging`. */
export type GuestLogLevel = "trace" | "debug" | "info" | "warn" | "error" | "critical";

/** What the local interfaces need from the instance that imports them. */
export interface GuestContext {
  /** Environment variables the guest sees (policy; empty by default). */
  env: [string, string][];
  /** Arguments the guest sees. */
  args: string[];
  /**
   * Raw standard streams (`trellis run`): bytes the guest writes to stdout/stderr go here unsplit, and `stdin` is what
   * it reads. Absent: stdout/stderr become log lines ({@link output}) and stdin is empty.
   */
  stdio?: { stdout(bytes: Uint8Array): void; stderr(bytes: Uint8Array): void; stdin: Uint8Array };
  /** Host directories the guest sees through `wasi:filesystem` (none: every filesystem call fails with `access`). */
  preopens?: readonly Preopen[];
  /** A complete line the guest wrote to stdout or stderr. */
  output(stream: "stdout" | "stderr", line: string): void;
  /** A `wasi:logging/logging.log` call. */
  log(level: GuestLogLevel, context: string, message: string): void;
  /** The component's merged named config as of now. */
  config(): Record<string, string>;
  /** A secret of the component by name (`wasmcloud:secrets/store.get`); undefined when it has none by that name. */
  secret(key: string): SecretValue | undefined;
  /**
   * `wasmcloud:bus/lattice.set-link-name`: use `name` for these interfaces (`ns:pkg/iface`) from now on in this call.
   * @returns an error message when no link with that name exists for one of them, else undefined.
   */
  setLinkName(name: string, interfaces: string[]): string | undefined;
  /** Sends an outgoing HTTP request over the lattice (routed by the component's links). */
  sendHttp: OutgoingSender;
  /** True when the component's `set-link-name` returns `result` (wasmcloud:bus 2.x). */
  setLinkNameReturnsResult: boolean;
}

/** Thrown by `wasi:cli/exit`: ends the current call (never the host). */
export class GuestExitError extends TrellisError {
  constructor(status: number) {
    super(ErrorCode.ComponentTrap, `the component called wasi:cli/exit with status ${status}`, { details: { status } });
    this.name = "GuestExitError";
  }
}

class Descriptor {}
class DirectoryEntryStream {}
class Network {}
class TcpSocket {}
class UdpSocket {}
class IncomingDatagramStream {}
class OutgoingDatagramStream {}
class ResolveAddressStream {}
class TerminalInput {}
class TerminalOutput {}

function deniedFs(): never {
  throw "access";
}
function deniedNet(): never {
  throw "access-denied";
}

const deny = new Proxy(
  {},
  {
    // every method of a denied resource fails with `access`; symbols (e.g. Symbol.dispose on drop) are absent
    get: (_target, key) => (typeof key === "symbol" ? undefined : deniedFs),
  },
);
Object.setPrototypeOf(Descriptor.prototype, deny);
Object.setPrototypeOf(DirectoryEntryStream.prototype, deny);

function sleeper(ms: number): Pollable {
  const due = Date.now() + ms;
  let p: Promise<void> | undefined;
  return new Pollable({
    ready: () => Date.now() >= due,
    wait: () => (p ??= new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())))),
  });
}

/** Builds the import object of every local interface for one instance. */
export function localImports(ctx: GuestContext): Record<string, Record<string, unknown>> {
  const stdout = ctx.stdio ? { write: ctx.stdio.stdout } : new LineSink((l) => ctx.output("stdout", l));
  const stderr = ctx.stdio ? { write: ctx.stdio.stderr } : new LineSink((l) => ctx.output("stderr", l));
  const stdin = ctx.stdio ? new InputStream(ctx.stdio.stdin) : undefined;
  const stdoutStream = new OutputStream(stdout);
  const stderrStream = new OutputStream(stderr);
  const configStore = {
    get: (key: string) => ctx.config()[key],
    getAll: () => Object.entries(ctx.config()),
  };
  const monoStart = process.hrtime.bigint();
  return {
    "wasi:io/error": { Error: IoError },
    "wasi:io/streams": { InputStream, OutputStream },
    "wasi:io/poll": { Pollable, poll },
    "wasi:cli/environment": { getEnvironment: () => ctx.env, getArguments: () => ctx.args, initialCwd: () => undefined },
    "wasi:cli/exit": {
      exit: (status: { tag: string }) => {
        throw new GuestExitError(status.tag === "ok" ? 0 : 1);
      },
      exitWithCode: (code: number) => {
        throw new GuestExitError(code);
      },
    },
    "wasi:cli/stdin": { getStdin: () => stdin ?? new InputStream() },
    "wasi:cli/stdout": { getStdout: () => stdoutStream },
    "wasi:cli/stderr": { getStderr: () => stderrStream },
    "wasi:cli/terminal-input": { TerminalInput },
    "wasi:cli/terminal-output": { TerminalOutput },
    "wasi:cli/terminal-stdin": { getTerminalStdin: () => undefined },
    "wasi:cli/terminal-stdout": { getTerminalStdout: () => undefined },
    "wasi:cli/terminal-stderr": { getTerminalStderr: () => undefined },
    "wasi:clocks/wall-clock": {
      now: () => {
        const ms = Date.now();
        return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1e6 };
      },
      resolution: () => ({ seconds: 0n, nanoseconds: 1e6 }),
    },
    "wasi:clocks/monotonic-clock": {
      now: () => process.hrtime.bigint() - monoStart,
      resolution: () => 1n,
      subscribeDuration: (ns: bigint) => sleeper(Number(ns / 1_000_000n)),
      subscribeInstant: (at: bigint) => sleeper(Number((at - (process.hrtime.bigint() - monoStart)) / 1_000_000n)),
    },
    "wasi:random/random": random as Record<string, unknown>,
    "wasi:random/insecure": insecure as Record<string, unknown>,
    "wasi:random/insecure-seed": insecureSeed as Record<string, unknown>,
    "wasi:filesystem/types": { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
    "wasi:filesystem/preopens": { getDirectories: () => [] },
    ...(ctx.preopens?.length ? filesystemImports(ctx.preopens) : {}),
    "wasi:sockets/network": { Network },
    "wasi:sockets/instance-network": { instanceNetwork: () => new Network() },
    "wasi:sockets/tcp": { TcpSocket },
    "wasi:sockets/tcp-create-socket": { createTcpSocket: deniedNet },
    "wasi:sockets/udp": { UdpSocket, IncomingDatagramStream, OutgoingDatagramStream },
    "wasi:sockets/udp-create-socket": { createUdpSocket: deniedNet },
    "wasi:sockets/ip-name-lookup": { ResolveAddressStream, resolveAddresses: deniedNet },
    "wasi:http/types": httpTypes(),
    "wasi:http/outgoing-handler": {
      handle: (request: OutgoingRequest, options: RequestOptions | undefined) => outgoingHandle(ctx.sendHttp, request, options),
    },
    "wasi:logging/logging": {
      log: (level: GuestLogLevel, context: string, message: string) => ctx.log(level, context, message),
    },
    "wasi:blobstore/types": blobstoreTypes(),
    "wasi:config/store": configStore,
    "wasi:config/runtime": configStore,
    "wasmcloud:secrets/store": {
      Secret,
      get: (key: string) => {
        const v = ctx.secret(key);
        if (v === undefined) throw { tag: "not-found" };
        return new Secret(v);
      },
    },
    "wasmcloud:secrets/reveal": {
      reveal: (s: Secret) => s.reveal(),
    },
    "wasmcloud:bus/lattice": {
      CallTargetInterface: CallTargetInterface,
      setLinkName: (name: string, interfaces: CallTargetInterface[]) => {
        const err = ctx.setLinkName(
          name,
          interfaces.map((i) => `${i.namespace}:${i.pkg}/${i.iface}`),
        );
        if (err !== undefined && ctx.setLinkNameReturnsResult) throw err;
      },
    },
  };
}

/**
 * `wasmcloud:secrets/store.secret`: an opaque handle; only `wasmcloud:secrets/reveal.reveal` shows its value
 * (`secret-value`: `{tag: "string", val}` or `{tag: "bytes", val}`).
 */
export class Secret {
  readonly #value: SecretValue;
  constructor(value: SecretValue) {
    this.#value = value;
  }
  /** The `secret-value` variant. */
  reveal(): { tag: "string"; val: string } | { tag: "bytes"; val: Uint8Array } {
    return this.#value.kind === "String" ? { tag: "string", val: this.#value.value } : { tag: "bytes", val: Uint8Array.from(this.#value.value) };
  }
  toJSON(): string {
    return "[secret]";
  }
}

/** `wasmcloud:bus/lattice.call-target-interface`. */
export class CallTargetInterface {
  readonly namespace: string;
  readonly pkg: string;
  readonly iface: string;
  constructor(namespace: string, pkg: string, iface: string) {
    this.namespace = namespace;
    this.pkg = pkg;
    this.iface = iface;
  }
}
