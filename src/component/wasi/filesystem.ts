/**
 * `wasi:filesystem` 0.2 (`types`, `preopens`) over host directories a component was given as **preopens**
 * (issue 11 H): each preopen is a host directory shown to the guest under a guest path, read-only or read-write.
 * Without preopens the guest sees no directory and every operation fails with `access`.
 *
 * Confinement: paths are relative to a descriptor and may not be absolute nor leave the preopen (`..` past its root,
 * or a symbolic link pointing outside — every path is resolved with `realpath` and checked against the preopen's real
 * root). A read-only preopen refuses every change with `read-only`. Operations are synchronous `node:fs` calls on the
 * worker thread that runs the guest.
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import { InputStream, OutputStream } from "./io.ts";
import type { Preopen } from "../../core/preopens.ts";

export type { Preopen } from "../../core/preopens.ts";

type ErrorCode =
  | "access"
  | "bad-descriptor"
  | "exist"
  | "invalid"
  | "io"
  | "is-directory"
  | "no-entry"
  | "not-directory"
  | "not-empty"
  | "not-permitted"
  | "read-only"
  | "unsupported";

/** Node's errno codes → `wasi:filesystem/types.error-code` (thrown as the case name, as jco's glue expects). */
function code(err: unknown): ErrorCode {
  switch ((err as NodeJS.ErrnoException).code) {
    case "ENOENT":
      return "no-entry";
    case "EEXIST":
      return "exist";
    case "ENOTDIR":
      return "not-directory";
    case "EISDIR":
      return "is-directory";
    case "ENOTEMPTY":
      return "not-empty";
    case "EACCES":
      return "access";
    case "EPERM":
      return "not-permitted";
    case "EBADF":
      return "bad-descriptor";
    case "EINVAL":
      return "invalid";
    default:
      return "io";
  }
}
function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (typeof err === "string") throw err;
    throw code(err);
  }
}

type DescriptorType = "unknown" | "block-device" | "character-device" | "directory" | "fifo" | "symbolic-link" | "regular-file" | "socket";

function typeOf(st: fs.Stats): DescriptorType {
  if (st.isFile()) return "regular-file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symbolic-link";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice()) return "character-device";
  if (st.isBlockDevice()) return "block-device";
  return "unknown";
}
function datetime(ms: number): { seconds: bigint; nanoseconds: number } {
  return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: Math.floor((ms % 1000) * 1e6) };
}
function stat(st: fs.Stats) {
  return {
    type: typeOf(st),
    linkCount: BigInt(st.nlink),
    size: BigInt(st.size),
    dataAccessTimestamp: datetime(st.atimeMs),
    dataModificationTimestamp: datetime(st.mtimeMs),
    statusChangeTimestamp: datetime(st.ctimeMs),
  };
}

interface Root {
  real: string;
  readOnly: boolean;
}

/** `wasi:filesystem/types.descriptor`: an open directory or file inside a preopen. */
export class Descriptor {
  readonly #root: Root;
  readonly #path: string;
  readonly #dir: boolean;
  readonly #write: boolean;

  constructor(root: Root, hostPath: string, dir: boolean, write: boolean) {
    this.#root = root;
    this.#path = hostPath;
    this.#dir = dir;
    this.#write = write;
  }

  /** Host path of `rel` under this directory, confined to the preopen. @param mustExist resolve symlinks of the whole path */
  #resolve(rel: string, mustExist: boolean): string {
    if (!this.#dir) throw "not-directory";
    if (path.isAbsolute(rel) || rel.includes("\0")) throw "not-permitted";
    const joined = path.resolve(this.#path, rel);
    const inside = (p: string) => p === this.#root.real || p.startsWith(this.#root.real + path.sep);
    if (!inside(joined)) throw "not-permitted";
    // symbolic links: the real location of the path (or of its parent, for a path to be created) must be inside too
    let real: string;
    try {
      real = mustExist ? fs.realpathSync(joined) : path.join(fs.realpathSync(path.dirname(joined)), path.basename(joined));
    } catch (err) {
      throw code(err);
    }
    if (!inside(real)) throw "not-permitted";
    return real;
  }
  #writable(): void {
    if (this.#root.readOnly) throw "read-only";
  }

  readViaStream(offset: bigint): InputStream {
    if (this.#dir) throw "is-directory";
    return new InputStream(wrap(() => fs.readFileSync(this.#path)).subarray(Number(offset)));
  }
  writeViaStream(offset: bigint): OutputStream {
    this.#writable();
    if (!this.#write) throw "bad-descriptor";
    let pos = Number(offset);
    const file = this.#path;
    return new OutputStream({
      write: (bytes) => {
        wrap(() => {
          const fd = fs.openSync(file, "r+");
          try {
            fs.writeSync(fd, bytes, 0, bytes.length, pos);
          } finally {
            fs.closeSync(fd);
          }
        });
        pos += bytes.length;
      },
    });
  }
  appendViaStream(): OutputStream {
    this.#writable();
    if (!this.#write) throw "bad-descriptor";
    const file = this.#path;
    return new OutputStream({ write: (bytes) => wrap(() => fs.appendFileSync(file, bytes)) });
  }
  advise(): void {}
  syncData(): void {}
  sync(): void {}
  getFlags() {
    return { read: true, write: this.#write && !this.#root.readOnly };
  }
  getType(): DescriptorType {
    return this.#dir ? "directory" : "regular-file";
  }
  setSize(size: bigint): void {
    this.#writable();
    wrap(() => fs.truncateSync(this.#path, Number(size)));
  }
  setTimes(): void {
    this.#writable();
  }
  read(length: bigint, offset: bigint): [Uint8Array, boolean] {
    if (this.#dir) throw "is-directory";
    return wrap(() => {
      const fd = fs.openSync(this.#path, "r");
      try {
        const buf = Buffer.alloc(Math.min(Number(length), 16 * 1024 * 1024));
        const n = fs.readSync(fd, buf, 0, buf.length, Number(offset));
        const size = fs.fstatSync(fd).size;
        return [new Uint8Array(buf.subarray(0, n)), Number(offset) + n >= size];
      } finally {
        fs.closeSync(fd);
      }
    });
  }
  write(buffer: Uint8Array, offset: bigint): bigint {
    this.#writable();
    if (!this.#write) throw "bad-descriptor";
    return wrap(() => {
      const fd = fs.openSync(this.#path, "r+");
      try {
        return BigInt(fs.writeSync(fd, buffer, 0, buffer.length, Number(offset)));
      } finally {
        fs.closeSync(fd);
      }
    });
  }
  readDirectory(): DirectoryEntryStream {
    if (!this.#dir) throw "not-directory";
    const entries = wrap(() => fs.readdirSync(this.#path, { withFileTypes: true }));
    return new DirectoryEntryStream(entries.map((e) => ({ type: e.isDirectory() ? "directory" : e.isFile() ? "regular-file" : e.isSymbolicLink() ? "symbolic-link" : "unknown", name: e.name })));
  }
  createDirectoryAt(rel: string): void {
    this.#writable();
    const p = this.#resolve(rel, false);
    wrap(() => fs.mkdirSync(p));
  }
  stat() {
    return stat(wrap(() => fs.statSync(this.#path)));
  }
  statAt(flags: { symlinkFollow?: boolean }, rel: string) {
    const p = this.#resolve(rel, flags.symlinkFollow !== false);
    return stat(wrap(() => fs.statSync(p)));
  }
  setTimesAt(): void {
    this.#writable();
  }
  linkAt(): void {
    throw this.#root.readOnly ? "read-only" : "unsupported";
  }
  openAt(
    _pathFlags: { symlinkFollow?: boolean },
    rel: string,
    openFlags: { create?: boolean; directory?: boolean; exclusive?: boolean; truncate?: boolean },
    flags: { read?: boolean; write?: boolean },
  ): Descriptor {
    const changes = openFlags.create || openFlags.truncate || flags.write;
    if (changes) this.#writable();
    let p = this.#resolve(rel, !openFlags.create);
    if (openFlags.create) {
      let exists = fs.existsSync(p);
      if (exists) p = this.#resolve(rel, true);
      if (exists && openFlags.exclusive) throw "exist";
      if (!exists) {
        wrap(() => fs.writeFileSync(p, new Uint8Array(0), { flag: "wx" }));
        exists = true;
      }
    }
    const st = wrap(() => fs.statSync(p));
    if (openFlags.directory && !st.isDirectory()) throw "not-directory";
    if (st.isDirectory() && flags.write) throw "is-directory";
    if (openFlags.truncate && st.isFile()) wrap(() => fs.truncateSync(p, 0));
    return new Descriptor(this.#root, p, st.isDirectory(), Boolean(flags.write));
  }
  readlinkAt(): string {
    throw "not-permitted";
  }
  removeDirectoryAt(rel: string): void {
    this.#writable();
    const p = this.#resolve(rel, false);
    wrap(() => fs.rmdirSync(p));
  }
  renameAt(oldRel: string, newDesc: Descriptor, newRel: string): void {
    this.#writable();
    const from = this.#resolve(oldRel, false);
    const to = newDesc.#resolve(newRel, false);
    newDesc.#writable();
    wrap(() => fs.renameSync(from, to));
  }
  symlinkAt(): void {
    throw this.#root.readOnly ? "read-only" : "not-permitted";
  }
  unlinkFileAt(rel: string): void {
    this.#writable();
    const p = this.#resolve(rel, false);
    wrap(() => fs.unlinkSync(p));
  }
  isSameObject(other: Descriptor): boolean {
    return other.#path === this.#path;
  }
  metadataHash() {
    const st = wrap(() => fs.statSync(this.#path, { bigint: true }));
    return { upper: st.dev, lower: st.ino };
  }
  metadataHashAt(flags: { symlinkFollow?: boolean }, rel: string) {
    const p = this.#resolve(rel, flags.symlinkFollow !== false);
    const st = wrap(() => fs.statSync(p, { bigint: true }));
    return { upper: st.dev, lower: st.ino };
  }
}

/** `wasi:filesystem/types.directory-entry-stream`. */
export class DirectoryEntryStream {
  readonly #entries: { type: string; name: string }[];
  #i = 0;
  constructor(entries: { type: string; name: string }[]) {
    this.#entries = entries;
  }
  readDirectoryEntry(): { type: string; name: string } | undefined {
    return this.#entries[this.#i++];
  }
}

/**
 * The `wasi:filesystem/types` and `wasi:filesystem/preopens` imports of one instance.
 * Preopens whose host directory is missing are left out (the host checked them at start).
 */
export function filesystemImports(preopens: readonly Preopen[]): Record<string, Record<string, unknown>> {
  const dirs: [Descriptor, string][] = [];
  for (const p of preopens) {
    let real: string;
    try {
      real = fs.realpathSync(p.hostPath);
    } catch {
      continue;
    }
    dirs.push([new Descriptor({ real, readOnly: p.readOnly }, real, true, !p.readOnly), p.guestPath]);
  }
  return {
    "wasi:filesystem/types": { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
    "wasi:filesystem/preopens": { getDirectories: () => dirs },
  };
}
