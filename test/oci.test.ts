/**
 * OCI (src/oci) against a real registry (Debian's docker-registry, started by the harness on loopback): push and pull
 * of components and provider archives, by tag and by digest, digest verification of tampered blobs, `--allow-latest`,
 * credentials (flags and a docker config.json), mirrors, the content-addressed cache, and the alias table.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, stat, writeFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentEmbed, componentNew } from "@bytecodealliance/jco";
import {
  compileOciOptions,
  firstPartyAlias,
  hostTarget,
  looksLikeOciRef,
  OciError,
  OciRegistry,
  parHash,
  parseOciRef,
  pullComponent,
  pullProvider,
  pushComponent,
  pushProvider,
  readProviderArchive,
  writeProviderArchive,
  type OciOptions,
} from "../src/oci/index.ts";
import { startTestRegistry, type TestRegistry } from "../src/testing/index.ts";

const WIT = `package test:oci@0.1.0;
interface api { hello: func() -> string; }
world w { export api; }`;

describe("OCI references and aliases", () => {
  test("parse: registry, repository, tag, digest, oci:// prefix; clear errors", () => {
    assert.deepEqual(parseOciRef("ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0"), {
      registry: "ghcr.io",
      repository: "wasmcloud/components/http-hello-world-rust",
      tag: "0.1.0",
      digest: undefined,
    });
    const d = `sha256:${"a".repeat(64)}`;
    assert.deepEqual(parseOciRef(`oci://127.0.0.1:5000/x/y@${d}`), { registry: "127.0.0.1:5000", repository: "x/y", tag: undefined, digest: d });
    assert.equal(parseOciRef("localhost:5000/x").tag, "latest");
    assert.throws(() => parseOciRef("adder"), /names no registry/);
    assert.throws(() => parseOciRef("ghcr.io/X/y:1"), /not a valid repository/);
    assert.throws(() => parseOciRef("ghcr.io/x/y@sha256:abc"), /64 lower-case hex/);
    assert.equal(looksLikeOciRef("ghcr.io/x/y:1"), true);
    assert.equal(looksLikeOciRef("./x.wasm"), false);
    assert.equal(looksLikeOciRef("dir.d/x.wasm"), false);
    assert.equal(looksLikeOciRef("kv-memory"), false);
  });

  test("first-party aliases: wasmcloud+builtin:// and wasmCloud 1.x provider images", () => {
    assert.equal(firstPartyAlias("wasmcloud+builtin://http-server"), "http-server");
    assert.equal(firstPartyAlias("ghcr.io/wasmcloud/http-server:0.27.0"), "http-server");
    assert.equal(firstPartyAlias("ghcr.io/wasmcloud/keyvalue-redis:0.28.1"), "kv-redis");
    assert.equal(firstPartyAlias("ghcr.io/someone/http-server:1"), undefined);
  });
});

describe("OCI against a real registry", () => {
  let reg: TestRegistry;
  let authReg: TestRegistry;
  let component: Uint8Array;
  const dirs: string[] = [];
  const newCache = async () => {
    const d = await mkdtemp(path.join(tmpdir(), "trellis-oci-cache-"));
    dirs.push(d);
    return d;
  };
  const client = async (o: Partial<OciOptions> = {}) =>
    new OciRegistry(compileOciOptions({ cacheDir: await newCache(), insecureHosts: [reg.host, authReg.host], dockerConfigPath: "/nonexistent", ...o }));

  before(async () => {
    reg = await startTestRegistry();
    authReg = await startTestRegistry({ auth: { user: "alice", password: "s3cret-registry-pw" } });
    component = await componentNew(await componentEmbed({ dummy: true, witSource: WIT }));
  });
  after(async () => {
    await reg?.stop();
    await authReg?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test("push a component, pull it by tag and by digest; a digest pull is served from the cache with the registry gone", async () => {
    const c = await client();
    const ref = `${reg.host}/test/hello:0.1.0`;
    const digest = await pushComponent(c, ref, component, { imports: [], exports: ["test:oci/api@0.1.0"] });
    const byTag = await pullComponent(c, ref);
    assert.equal(byTag.digest, digest);
    assert.deepEqual(Buffer.from(byTag.bytes), Buffer.from(component));
    const byDigest = await pullComponent(await client(), `oci://${reg.host}/test/hello@${digest}`);
    assert.deepEqual(Buffer.from(byDigest.bytes), Buffer.from(component));
    // the manifest is a CNCF wasm artifact: one application/wasm layer, the wasm config
    const m = await c.pullManifest(ref);
    assert.deepEqual(m.manifest.layers.map((l) => l.mediaType), ["application/wasm"]);
    assert.equal(m.manifest.config.mediaType, "application/vnd.wasm.config.v0+json");
    // cached by content: the same client pulls by digest with no registry at all
    const offline = new OciRegistry(compileOciOptions({ ...c.config, insecureHosts: [...c.config.insecureHosts], mirrors: { [reg.host]: "127.0.0.1:9" } }));
    assert.deepEqual(Buffer.from((await pullComponent(offline, `${reg.host}/test/hello@${digest}`)).bytes), Buffer.from(component));
    await assert.rejects(pullComponent(offline, ref), (e: OciError) => e instanceof OciError && /cannot reach registry/.test(e.message));
  });

  test("a tampered blob in the registry is refused and not cached", async () => {
    const c = await client();
    const ref = `${reg.host}/test/tamper:1.0.0`;
    // a component of its own: the registry shares blobs between repositories, and this one gets broken
    const own = await componentNew(await componentEmbed({ dummy: true, witSource: WIT.replace("test:oci", "test:tamper") }));
    await pushComponent(c, ref, own, { imports: [], exports: [] });
    const layer = (await c.pullManifest(ref)).manifest.layers[0]!;
    const hex = layer.digest.slice("sha256:".length);
    const file = path.join(reg.storeDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const bytes = await readFile(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(file, bytes);
    const fresh = await client();
    await assert.rejects(pullComponent(fresh, ref), (e: OciError) => e.code === "OCI_ERROR" && /does not match its digest/.test(e.message));
    const cached = await readdir(path.join(fresh.config.cacheDir, "oci", "blobs", "sha256"));
    assert.ok(!cached.includes(hex), "the tampered layer is not in the cache");
  });

  test("latest is refused unless allowed, for push and pull", async () => {
    const ref = `${reg.host}/test/latest`;
    await assert.rejects(pushComponent(await client(), ref, component, { imports: [], exports: [] }), /latest is refused unless allowed/);
    await pushComponent(await client({ allowLatest: true }), `${ref}:latest`, component, { imports: [], exports: [] });
    await assert.rejects(pullComponent(await client(), ref), (e: OciError) => /--allow-latest/.test(e.message));
    assert.ok((await pullComponent(await client({ allowLatest: true }), ref)).bytes.length > 0);
  });

  test("a provider archive: push, pull this machine's binary as an executable; a hash mismatch with its claims is refused", async () => {
    const c = await client();
    const script = new TextEncoder().encode("#!/bin/sh\necho provider\n");
    const ref = `${reg.host}/test/provider:0.1.0`;
    await pushProvider(c, ref, { [hostTarget()]: script, "aarch64-macos": new Uint8Array([1, 2, 3]) });
    const pulled = await pullProvider(c, ref);
    assert.deepEqual(await readFile(pulled.file, "utf8"), "#!/bin/sh\necho provider\n");
    assert.equal((await stat(pulled.file)).mode & 0o111, 0o111, "executable");
    await assert.rejects(pullProvider(c, ref, "riscv64-plan9"), /no binary for riscv64-plan9/);
    // an archive whose claims name another hash for the binary
    const claims = (hashes: Record<string, string>) =>
      `e30.${Buffer.from(JSON.stringify({ wascap: { target_hashes: hashes } })).toString("base64url")}.sig`;
    const good = await writeProviderArchive({ targets: { "x86_64-linux": script }, claimsJwt: claims({ "x86_64-linux": parHash(script) }) });
    assert.equal((await readProviderArchive(good)).targets["x86_64-linux"]?.length, script.length);
    const bad = await writeProviderArchive({ targets: { "x86_64-linux": script }, claimsJwt: claims({ "x86_64-linux": parHash(new Uint8Array([9])) }) });
    await assert.rejects(readProviderArchive(bad), /does not match the hash in its claims/);
    // a component reference is not a provider, and the reverse
    await assert.rejects(pullProvider(c, `${reg.host}/test/hello:0.1.0`), /is not a provider archive/);
    await assert.rejects(pullComponent(c, ref), /is not a component/);
  });

  test("credentials: refused anonymously with a hint; accepted from --oci-user/--oci-password and from a docker config.json", async () => {
    const ref = `${authReg.host}/private/hello:1.0.0`;
    await assert.rejects(pushComponent(await client(), ref, component, { imports: [], exports: [] }), (e: OciError) => /401/.test(e.message) && /--oci-user/.test(e.message));
    await pushComponent(await client({ user: "alice", password: "s3cret-registry-pw" }), ref, component, { imports: [], exports: [] });
    await assert.rejects(pullComponent(await client({ user: "alice", password: "wrong" }), ref), /401/);
    const cfgDir = await newCache();
    const cfg = path.join(cfgDir, "config.json");
    await writeFile(cfg, JSON.stringify({ auths: { [authReg.host]: { auth: Buffer.from("alice:s3cret-registry-pw").toString("base64") } } }));
    assert.ok((await pullComponent(await client({ dockerConfigPath: cfg }), ref)).bytes.length > 0);
    // no credential in the error text
    await pullComponent(await client({ user: "alice", password: "wrong-pw-123" }), ref).catch((e: Error) => assert.doesNotMatch(e.message, /wrong-pw-123/));
  });

  test("a mirror serves another registry's references unchanged", async () => {
    await pushComponent(await client(), `${reg.host}/wasmcloud/components/http-hello-world-rust:0.1.0`, component, { imports: [], exports: [] });
    const c = await client({ mirrors: { "ghcr.io": reg.host } });
    const pulled = await pullComponent(c, "ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0");
    assert.deepEqual(Buffer.from(pulled.bytes), Buffer.from(component));
  });
});
