/**
 * Filesystem preopens (issue 11 H): a component given a host directory reads it (and, read-write, writes it) through
 * `wasi:filesystem`; nothing outside it is reachable (`..`, symbolic links); a read-only preopen refuses changes; a
 * directory outside the host's allow-list is refused at start. The JS guest is built here with componentize-qjs.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, readFile, symlink, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentize } from "componentize-qjs";
import { invokeJson } from "../src/invocation/index.ts";
import type { TrellisError } from "../src/core/errors.ts";
import { parsePreopens } from "../src/component/preopens.ts";
import { parsePreopenFlag } from "../src/cli/commands/component.ts";
import { parseManifestText } from "../src/app/manifest.ts";
import { desiredState } from "../src/app/desired.ts";
import { FIXTURES_DIR, startRuntime, type RuntimeEnv } from "./support/components.ts";

const WIT = `package test:fs@0.1.0;

interface api {
  read: func(name: string) -> string;
  write: func(name: string, text: string) -> string;
  entries: func() -> list<string>;
}

world files {
  import wasi:filesystem/preopens@0.2.12;
  export api;
}
`;
// every failure comes back as "err:<error-code>" so the test sees the wasi:filesystem error code
const JS = `
import preopens from "wasi:filesystem/preopens@0.2.12";
const bytes = (s) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
const text = (b) => String.fromCharCode(...b);
const dir = () => {
  const d = preopens.getDirectories();
  if (d.length === 0) throw "no-preopen";
  return d[0];
};
const guard = (f) => { try { return f(); } catch (e) { return "err:" + (typeof e === "string" ? e : (e && (e.payload ?? e.message)) ?? String(e)); } };
export const api = {
  read(name) {
    return guard(() => {
      const [d, guestPath] = dir();
      const f = d.openAt({ symlinkFollow: true }, name, {}, { read: true });
      const [b] = f.read(4096, 0);
      return guestPath + ":" + text(b);
    });
  },
  write(name, t) {
    return guard(() => {
      const [d] = dir();
      const f = d.openAt({ symlinkFollow: true }, name, { create: true, truncate: true }, { write: true });
      f.write(bytes(t), 0);
      return "ok";
    });
  },
  entries() {
    const [d] = dir();
    const s = d.readDirectory();
    const out = [];
    for (let e = s.readDirectoryEntry(); e; e = s.readDirectoryEntry()) out.push(e.name);
    return out.sort();
  },
};
`;

describe("filesystem preopens", () => {
  let env: RuntimeEnv;
  let wasm: string;
  let allowed: string;
  let outside: string;
  before(async () => {
    const base = await mkdtemp(path.join(tmpdir(), "trellis-preopen-"));
    allowed = path.join(base, "allowed");
    outside = path.join(base, "outside");
    await mkdir(path.join(allowed, "ro"), { recursive: true });
    await mkdir(path.join(allowed, "rw"), { recursive: true });
    await mkdir(outside);
    await writeFile(path.join(allowed, "ro", "hello.txt"), "hello from the host");
    await writeFile(path.join(outside, "secret.txt"), "secret");
    await symlink(path.join(outside, "secret.txt"), path.join(allowed, "ro", "link.txt"));
    // loads only from the fixtures and the build dir (not `outside`); preopens only under `allowed`
    env = await startRuntime({ policy: { preopenRoots: [allowed] }, loads: { allowedPaths: [FIXTURES_DIR, path.join(base, "build")] } });
    // WIT deps of wasi:filesystem 0.2.12 from jco's copy of the WASI 0.2 WIT
    const witDir = path.join(base, "wit");
    const builtin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "node_modules", "@bytecodealliance", "jco", "lib", "wit", "builtin", "0.2.12");
    for (const dep of ["wasi-filesystem", "wasi-io", "wasi-clocks"]) await cp(path.join(builtin, dep), path.join(witDir, "deps", dep), { recursive: true });
    await writeFile(path.join(witDir, "world.wit"), WIT);
    const { component } = await componentize({ witPath: witDir, jsSource: JS, sync: true, optSize: true });
    await mkdir(path.join(base, "build"), { recursive: true });
    wasm = path.join(base, "build", "files.wasm");
    await writeFile(wasm, component);
  });
  after(async () => {
    await env?.close();
  });
  const call = (id: string, fn: string, args: unknown[]) =>
    invokeJson(env.nc, { lattice: env.lattice, targetId: id, iface: "test:fs/api", fn, timeoutMs: 10_000 }, args);

  test("the start option is checked: absolute host paths, read-only unless asked", () => {
    assert.deepEqual(parsePreopens([{ host_path: "/srv/data", guest_path: "/data" }]), [{ hostPath: "/srv/data", guestPath: "/data", readOnly: true }]);
    assert.deepEqual(parsePreopens([{ host_path: "/srv/x", read_only: false }]), [{ hostPath: "/srv/x", guestPath: "/srv/x", readOnly: false }]);
    assert.throws(() => parsePreopens([{ host_path: "rel" }]), /preopens\[0\]\.host_path must be an absolute path/);
    assert.throws(() => parsePreopens({}), /array/);
    // trellis start component --preopen HOST[:GUEST][:ro|rw]
    assert.deepEqual(parsePreopenFlag("/srv/data:/data:rw"), { host_path: "/srv/data", guest_path: "/data", read_only: false });
    assert.deepEqual(parsePreopenFlag("/srv/data"), { host_path: "/srv/data", guest_path: "/srv/data", read_only: true });
    // manifests: properties.preopens reach the component.scale request
    const { manifest } = parseManifestText(`
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: { name: files }
spec:
  components:
    - name: reader
      type: component
      properties:
        image: ./files.wasm
        preopens:
          - { host_path: /srv/data, guest_path: /data }
      traits:
        - { type: spreadscaler, properties: { instances: 1 } }
`);
    assert.deepEqual(desiredState(manifest).components[0]!.preopens, [{ host_path: "/srv/data", guest_path: "/data", read_only: true }]);
    assert.throws(() => parseManifestText(`
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: { name: files }
spec:
  components:
    - name: reader
      type: component
      properties: { image: ./files.wasm, preopens: [{ host_path: relative }] }
`), /spec\.components\[0\]\.properties\.preopens\[0\]\.host_path/);
  });

  test("a read-only preopen is readable by the guest; changes, `..` and links out of it are refused", async () => {
    await env.runtime.start(wasm, "reader", { preopens: [{ hostPath: path.join(allowed, "ro"), guestPath: "/data", readOnly: true }] });
    assert.equal(await call("reader", "read", ["hello.txt"]), "/data:hello from the host");
    assert.deepEqual(await call("reader", "entries", []), ["hello.txt", "link.txt"]);
    assert.equal(await call("reader", "write", ["new.txt", "x"]), "err:read-only");
    assert.equal(await call("reader", "read", ["../../outside/secret.txt"]), "err:not-permitted");
    assert.equal(await call("reader", "read", ["link.txt"]), "err:not-permitted");
    assert.equal(await call("reader", "read", ["/etc/passwd"]), "err:not-permitted");
    assert.equal(await call("reader", "read", ["missing.txt"]), "err:no-entry");
  });

  test("a read-write preopen is writable", async () => {
    await env.runtime.start(wasm, "writer", { preopens: [{ hostPath: path.join(allowed, "rw"), guestPath: "/out", readOnly: false }] });
    assert.equal(await call("writer", "write", ["note.txt", "written by the guest"]), "ok");
    assert.equal(await readFile(path.join(allowed, "rw", "note.txt"), "utf8"), "written by the guest");
  });

  test("without preopens the guest sees no directory; a path outside the allow-list is refused at start", async () => {
    await env.runtime.start(wasm, "none");
    assert.equal(await call("none", "read", ["hello.txt"]), "err:no-preopen");
    await assert.rejects(env.runtime.start(wasm, "sneaky", { preopens: [{ hostPath: outside, guestPath: "/x", readOnly: true }] }), (e: TrellisError) => {
      assert.equal(e.code, "COMPONENT_LOAD_FAILED");
      assert.match(e.message, /preopen .*outside is not allowed by this host/);
      return true;
    });
    await assert.rejects(env.runtime.start(wasm, "sneaky2", { preopens: [{ hostPath: path.join(allowed, "..", "outside"), guestPath: "/x", readOnly: true }] }), /not allowed/);
  });
});
