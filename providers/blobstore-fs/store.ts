/**
 * The filesystem behind one blobstore-fs link: containers are directories under the link's root, objects are files
 * in them. Names are stored percent-encoded (`encodeURIComponent`, plus `.` and `..` encoded), so any string is a
 * legal name and nothing can escape the root. Writes go to a temporary file first and are renamed into place.
 * @module
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile, open } from "node:fs/promises";
import path from "node:path";

/** Longest container or object name accepted, in bytes once encoded (a file name limit). */
const MAX_ENCODED = 240;

/** `name` → one safe path segment. @throws Error for an empty or too long name. */
export function encodeName(kind: "container" | "object", name: string): string {
  if (name === "") throw new Error(`${kind} name must not be empty`);
  let e = encodeURIComponent(name);
  if (e === "." || e === "..") e = e.replace(/\./g, "%2E");
  if (e.startsWith(".tmp-")) e = `%2E${e.slice(1)}`;
  if (Buffer.byteLength(e) > MAX_ENCODED) throw new Error(`${kind} name is too long (${Buffer.byteLength(e)} bytes encoded, limit ${MAX_ENCODED})`);
  return e;
}

/** Inverse of {@link encodeName}. */
export function decodeName(segment: string): string {
  return decodeURIComponent(segment);
}

/** Metadata of an object. */
export interface ObjectInfo {
  name: string;
  container: string;
  /** Seconds since the epoch. */
  createdAt: bigint;
  size: bigint;
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException)?.code === "ENOENT";

/** One link's blob store rooted at a directory. Every method throws an Error whose message the guest sees. */
export class FsBlobStore {
  readonly root: string;

  /** @param root absolute directory; created when missing (on first write). */
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  #dir(container: string): string {
    return path.join(this.root, encodeName("container", container));
  }

  #file(container: string, object: string): string {
    return path.join(this.#dir(container), encodeName("object", object));
  }

  async containerExists(name: string): Promise<boolean> {
    try {
      return (await stat(this.#dir(name))).isDirectory();
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /** @throws Error when the container exists already. */
  async createContainer(name: string): Promise<void> {
    await mkdir(this.root, { recursive: true });
    try {
      await mkdir(this.#dir(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`container ${name} already exists`);
      throw err;
    }
  }

  /** @throws Error when the container does not exist. */
  async requireContainer(name: string): Promise<void> {
    if (!(await this.containerExists(name))) throw new Error(`container ${name} does not exist`);
  }

  async deleteContainer(name: string): Promise<void> {
    await rm(this.#dir(name), { recursive: true, force: true });
  }

  /** Creation time (seconds since the epoch) of a container. */
  async containerCreatedAt(name: string): Promise<bigint> {
    await this.requireContainer(name);
    const st = await stat(this.#dir(name));
    return BigInt(Math.floor((st.birthtimeMs || st.mtimeMs) / 1000));
  }

  /** Bytes `start`…`end` (both inclusive, clamped to the object) of an object. */
  async read(container: string, object: string, start: bigint, end: bigint): Promise<Uint8Array> {
    await this.requireContainer(container);
    const file = this.#file(container, object);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      if (isMissing(err)) throw new Error(`object ${object} does not exist in container ${container}`);
      throw err;
    }
    if (start === 0n && end >= BigInt(size) - 1n) return new Uint8Array(await readFile(file));
    if (start > end || start >= BigInt(size)) return new Uint8Array(0);
    const from = Number(start);
    const to = Math.min(size - 1, Number(end > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : end));
    const buf = Buffer.alloc(to - from + 1);
    const fh = await open(file, "r");
    try {
      await fh.read(buf, 0, buf.length, from);
    } finally {
      await fh.close();
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }

  /** Writes an object whole (temporary file, then rename). */
  async write(container: string, object: string, data: Uint8Array): Promise<void> {
    await this.requireContainer(container);
    const file = this.#file(container, object);
    const tmp = path.join(this.#dir(container), `.tmp-${randomBytes(6).toString("hex")}`);
    await writeFile(tmp, data);
    await rename(tmp, file);
  }

  /** Object names of a container, sorted. */
  async list(container: string): Promise<string[]> {
    await this.requireContainer(container);
    const entries = await readdir(this.#dir(container), { withFileTypes: true });
    return entries.filter((e) => e.isFile() && !e.name.startsWith(".tmp-")).map((e) => decodeName(e.name)).sort();
  }

  async deleteObject(container: string, object: string): Promise<void> {
    await this.requireContainer(container);
    await rm(this.#file(container, object), { force: true });
  }

  async hasObject(container: string, object: string): Promise<boolean> {
    await this.requireContainer(container);
    try {
      return (await stat(this.#file(container, object))).isFile();
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  async objectInfo(container: string, object: string): Promise<ObjectInfo> {
    await this.requireContainer(container);
    try {
      const st = await stat(this.#file(container, object));
      return { name: object, container, createdAt: BigInt(Math.floor((st.birthtimeMs || st.mtimeMs) / 1000)), size: BigInt(st.size) };
    } catch (err) {
      if (isMissing(err)) throw new Error(`object ${object} does not exist in container ${container}`);
      throw err;
    }
  }

  /** Deletes every object of a container, keeping the container. */
  async clear(container: string): Promise<void> {
    for (const name of await this.list(container)) await rm(this.#file(container, name), { force: true });
  }

  async copy(src: { container: string; object: string }, dest: { container: string; object: string }): Promise<void> {
    await this.requireContainer(src.container);
    await this.requireContainer(dest.container);
    try {
      await copyFile(this.#file(src.container, src.object), this.#file(dest.container, dest.object));
    } catch (err) {
      if (isMissing(err)) throw new Error(`object ${src.object} does not exist in container ${src.container}`);
      throw err;
    }
  }

  async move(src: { container: string; object: string }, dest: { container: string; object: string }): Promise<void> {
    await this.copy(src, dest);
    if (src.container !== dest.container || src.object !== dest.object) await rm(this.#file(src.container, src.object), { force: true });
  }
}
