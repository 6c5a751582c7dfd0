/**
 * Claims (issue 10 item 1): wascap-compatible signing and verification of components and providers, host policy
 * (`requireSigned`, `allowedIssuers`), `claims.get`, inventory and events, and the `trellis claims` CLI.
 *
 * Fixture: adder.wasm from bytecodealliance/jco examples/transpile/adder (dae02a06), Apache-2.0 with LLVM exception,
 * read in place from `TRELLIS_FIXTURES_DIR` (test/support/components.ts).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  decodeJwt,
  extractClaims,
  findClaimsJwt,
  moduleHash,
  newIssuer,
  providerClaimsPath,
  readProviderClaims,
  signComponent,
  signProvider,
  stripClaims,
  verifyComponentClaims,
  verifyJwt,
  type ComponentMetadata,
} from "../src/claims/index.ts";
import { componentRuntime } from "../src/component/index.ts";
import { providerSupervisor, type ProviderSupervisor } from "../src/provider/supervisor.ts";
import { startTestNats, waitFor, type TestNats } from "../src/testing/index.ts";
import { fixture, needsFixtures, RUNTIME_TEST_LOADS } from "./support/components.ts";
import { FAST_SUPERVISION } from "./support/providers.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ADDER = fixture("adder.wasm");
/** The tests that sign or run the adder fixture skip when it is absent (the provider and option tests run). */
const WITH_ADDER = { skip: needsFixtures("adder.wasm") };

describe("claims: sign, inspect, verify (pure)", () => {
  test("a signed component carries a wascap JWT whose hash is the module without its claims section", WITH_ADDER, async () => {
    const bytes = await readFile(ADDER);
    const iss = newIssuer();
    const out = signComponent(bytes, { issuerSeed: iss.seed, name: "adder", ver: "1.2.3", rev: 4, tags: ["math"] });
    const jwt = findClaimsJwt(out.bytes);
    assert.equal(jwt, out.jwt);
    const header = JSON.parse(Buffer.from(out.jwt.split(".")[0]!, "base64url").toString()) as unknown;
    assert.deepEqual(header, { typ: "jwt", alg: "Ed25519" });
    const c = decodeJwt<ComponentMetadata>(out.jwt);
    assert.equal(c.iss, iss.publicKey);
    assert.match(c.sub, /^M[A-Z2-7]{55}$/);
    assert.equal(c.wascap_revision, 3);
    assert.deepEqual(c.wascap, { name: "adder", hash: moduleHash(bytes), tags: ["math"], rev: 4, ver: "1.2.3", prov: false });
    // the hash ignores the section: stripping the signed file gives back the canonical unsigned module
    assert.deepEqual(Buffer.from(stripClaims(out.bytes)), Buffer.from(stripClaims(bytes)));
    assert.equal(verifyComponentClaims(out.bytes)?.claims.sub, c.sub);
    assert.equal(verifyComponentClaims(bytes), undefined, "an unsigned component has no claims");
    // re-signing replaces the section rather than adding a second one
    const again = signComponent(out.bytes, { issuerSeed: iss.seed, subject: c.sub });
    assert.equal(decodeJwt(findClaimsJwt(again.bytes)!).sub, c.sub);
    const b = Buffer.from(again.bytes);
    assert.equal(b.indexOf("wasmcloud_jwt"), b.lastIndexOf("wasmcloud_jwt"), "one claims section");
  });

  test("a flipped byte in the module fails verification with a clear error", WITH_ADDER, async () => {
    const iss = newIssuer();
    const signed = signComponent(await readFile(ADDER), { issuerSeed: iss.seed });
    const tampered = Buffer.from(signed.bytes);
    tampered[200] = tampered[200]! ^ 0x01;
    assert.throws(() => verifyComponentClaims(tampered), (err: Error & { code?: string }) => {
      assert.equal(err.code, "CLAIMS_INVALID");
      assert.match(err.message, /does not match its embedded claims: module hash [0-9A-F]{64} differs from the signed hash [0-9A-F]{64}/);
      return true;
    });
  });

  test("a forged signature, an expired token and a not-yet-valid token are refused", WITH_ADDER, async () => {
    const iss = newIssuer();
    const bytes = await readFile(ADDER);
    const { jwt } = signComponent(bytes, { issuerSeed: iss.seed, expiresInDays: 1 });
    const [h, c, s] = jwt.split(".") as [string, string, string];
    const sig = Buffer.from(s, "base64url");
    sig[0] = sig[0]! ^ 0xff;
    assert.throws(() => verifyJwt(`${h}.${c}.${sig.toString("base64url")}`), /claims signature is not valid/);
    // claims changed without re-signing (another issuer's key claimed)
    const other = newIssuer();
    const forgedClaims = Buffer.from(JSON.stringify({ ...decodeJwt(jwt), iss: other.publicKey })).toString("base64url");
    assert.throws(() => verifyJwt(`${h}.${forgedClaims}.${s}`), /claims signature is not valid/);
    assert.throws(() => verifyJwt(jwt, Math.floor(Date.now() / 1000) + 2 * 86400), /claims expired at \d{4}-/);
    const later = signComponent(bytes, { issuerSeed: iss.seed, notBeforeDays: 1 });
    assert.throws(() => verifyComponentClaims(later.bytes), /cannot be used before/);
  });

  test("a provider's claims file holds its executable's hash; a changed executable is refused", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-claims-"));
    const exe = path.join(dir, "prov.sh");
    await writeFile(exe, "#!/bin/sh\necho hi\n", { mode: 0o755 });
    const iss = newIssuer();
    const { jwt, claims } = signProvider(exe, { issuerSeed: iss.seed, name: "prov", vendor: "acme", ver: "0.1.0" });
    assert.match(claims.sub, /^V[A-Z2-7]{55}$/);
    await writeFile(providerClaimsPath(exe), jwt);
    assert.equal(readProviderClaims(exe)?.claims.iss, iss.publicKey);
    await appendFile(exe, "echo changed\n");
    assert.throws(() => readProviderClaims(exe), /does not match its claims: hash [0-9A-F]{64} differs from the signed hash/);
  });

  test("an issuer seed that is not an account seed is refused without echoing it", WITH_ADDER, async () => {
    const bytes = await readFile(ADDER);
    assert.throws(() => signComponent(bytes, { issuerSeed: "SUAFAKE" }), (err: Error) => !err.message.includes("SUAFAKE"));
  });

  // wascap compatibility, checked against a component signed by wash (wasmCloud v1.9.2
  // crates/wash/tests/fixtures/hello_plugin_s.wasm) when that file is available locally.
  const washSigned = process.env.TRELLIS_WASCAP_FIXTURE ?? "/tmp/claims-fx/hello_plugin_s.wasm";
  test("a component signed by wash verifies (hash algorithm compatible)", { skip: !existsSync(washSigned) && "wash-signed fixture not present" }, async () => {
    const t = extractClaims(await readFile(washSigned));
    assert.ok(t);
    verifyJwt(t.jwt);
  });
});

describe("claims on a host", () => {
  let nats: TestNats;
  let t: TestLattice;
  let dir: string;
  let unsigned: string;
  let signedA: string;
  let signedB: string;
  let tampered: string;
  const issuerA = newIssuer();
  const issuerB = newIssuer();

  before(async () => {
    nats = await startTestNats();
    t = await testLattice(nats);
    dir = await mkdtemp(path.join(tmpdir(), "trellis-claims-host-"));
    if (WITH_ADDER.skip) return;
    const bytes = await readFile(ADDER);
    unsigned = ADDER;
    signedA = path.join(dir, "adder_a.wasm");
    signedB = path.join(dir, "adder_b.wasm");
    tampered = path.join(dir, "adder_t.wasm");
    const a = signComponent(bytes, { issuerSeed: issuerA.seed, name: "adder-a", ver: "1.0.0", rev: 7, tags: ["x", "y"] });
    await writeFile(signedA, a.bytes);
    await writeFile(signedB, signComponent(bytes, { issuerSeed: issuerB.seed, name: "adder-b" }).bytes);
    const tb = Buffer.from(a.bytes);
    tb[300] = tb[300]! ^ 0x01;
    await writeFile(tampered, tb);
  });
  after(async () => {
    await t.close();
    await nats.stop();
  });

  const scale = async (hostId: string, id: string, ref: string) => {
    await t.client.scaleComponent(hostId, { component_ref: ref, component_id: id, count: 1 });
  };

  test("open host: a signed component runs; inventory, component_scaled and claims.get carry issuer and subject; a tampered one fails", WITH_ADDER, async () => {
    const ev = await t.recordEvents();
    const host = await t.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, workloads: { components: componentRuntime() } });
    await scale(host.id, "adder-a", signedA);
    const d = await waitFor(async () => (await t.client.getInventory(host.id)).components.find((c) => c.id === "adder-a"), { timeoutMs: 20_000, message: "adder-a running" });
    const sub = decodeJwt(findClaimsJwt(await readFile(signedA))!).sub;
    assert.equal(d.name, "adder-a");
    assert.equal(d.revision, 7);
    assert.equal(d.issuer, issuerA.publicKey);
    assert.equal(d.subject, sub);
    const scaled = await waitFor(() => ev.ofType("component_scaled").find((e) => (e.data as { component_id?: string }).component_id === "adder-a"));
    const data = scaled.data as { public_key?: string; claims?: Record<string, unknown> };
    assert.equal(data.public_key, sub);
    assert.equal(data.claims?.issuer, issuerA.publicKey);
    assert.equal(data.claims?.name, "adder-a");
    assert.equal(data.claims?.expires_human, "never");

    const claims = await waitFor(async () => (await t.client.getClaims()).find((c) => c.sub === sub), { message: "claims.get lists the component" });
    assert.deepEqual(claims, {
      call_alias: "",
      iss: issuerA.publicKey,
      issuer: issuerA.publicKey,
      name: "adder-a",
      rev: "7",
      revision: "7",
      sub,
      subject: sub,
      tags: "x,y",
      version: "1.0.0",
    });

    // an unsigned component is fine on an open host
    await scale(host.id, "adder-u", unsigned);
    await waitFor(async () => (await t.client.getInventory(host.id)).components.some((c) => c.id === "adder-u"), { timeoutMs: 20_000 });

    await scale(host.id, "adder-t", tampered);
    const failed = await waitFor(() => ev.ofType("component_scale_failed").find((e) => (e.data as { component_id?: string }).component_id === "adder-t"), { timeoutMs: 20_000 });
    assert.match(String((failed.data as { error?: string }).error), /component adder-t .*does not match its embedded claims/);
    assert.ok(!(await t.client.getInventory(host.id)).components.some((c) => c.id === "adder-t"));
  });

  test("--require-signed refuses an unsigned component; --allowed-issuer refuses a foreign issuer", WITH_ADDER, async () => {
    const ev = await t.recordEvents();
    const strict = await t.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, requireSigned: true, workloads: { components: componentRuntime() } });
    await scale(strict.id, "u1", unsigned);
    const f1 = await waitFor(() => ev.ofType("component_scale_failed").find((e) => (e.data as { component_id?: string }).component_id === "u1"), { timeoutMs: 20_000 });
    assert.match(String((f1.data as { error?: string }).error), /component u1 .* is not signed, and this host requires signed components/);
    await scale(strict.id, "s1", signedB);
    await waitFor(async () => (await t.client.getInventory(strict.id)).components.some((c) => c.id === "s1"), { timeoutMs: 20_000 });

    const picky = await t.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, allowedIssuers: [issuerA.publicKey], workloads: { components: componentRuntime() } });
    await scale(picky.id, "b1", signedB);
    const f2 = await waitFor(() => ev.ofType("component_scale_failed").find((e) => (e.data as { component_id?: string }).component_id === "b1"), { timeoutMs: 20_000 });
    assert.match(String((f2.data as { error?: string }).error), new RegExp(`signed by issuer ${issuerB.publicKey}, which is not among this host's allowed issuers`));
    await scale(picky.id, "a1", signedA);
    await waitFor(async () => (await t.client.getInventory(picky.id)).components.some((c) => c.id === "a1"), { timeoutMs: 20_000 });
  });

  test("bad host options name the problem", async () => {
    await assert.rejects(t.startHost({ ...RUNTIME_TEST_LOADS, allowedIssuers: ["not-a-key"] }), /allowed issuer "not-a-key" is not an account public key/);
  });

  test("providers: a signed provider is verified at start, an unsigned or changed one refused by a strict host", async () => {
    const pdir = await mkdtemp(path.join(tmpdir(), "trellis-claims-prov-"));
    const wrapper =
      `import { runProvider } from ${JSON.stringify(path.join(ROOT, "packages", "provider-sdk", "src", "index.ts"))};\n` +
      `import { kvMemory } from ${JSON.stringify(path.join(ROOT, "providers", "kv-memory", "main.ts"))};\n` +
      "await runProvider(kvMemory);\n";
    const script = path.join(pdir, "kv.ts");
    await writeFile(script, wrapper);
    const plain = path.join(pdir, "plain.ts");
    await writeFile(plain, wrapper);
    const { jwt, claims } = signProvider(script, { issuerSeed: issuerA.seed, name: "kv-signed", vendor: "trellis", ver: "0.1.0" });
    await writeFile(providerClaimsPath(script), jwt);
    const host = await t.startHost({ ...RUNTIME_TEST_LOADS, requireSigned: true, workloads: { providers: providerSupervisor(FAST_SUPERVISION) } });
    const ev = await t.recordEvents();
    await t.client.startProvider(host.id, { provider_id: "kvs", provider_ref: script });
    const started = await waitFor(() => ev.ofType("provider_started").find((e) => (e.data as { provider_id?: string }).provider_id === "kvs"));
    assert.deepEqual(
      { issuer: (started.data as { claims?: { issuer?: string } }).claims?.issuer, subject: (started.data as { claims?: { subject?: string } }).claims?.subject },
      { issuer: issuerA.publicKey, subject: claims.sub },
    );
    const p = await waitFor(async () => (await t.client.getInventory(host.id)).providers.find((x) => x.id === "kvs" && x.status === "running"), { message: "the signed provider runs" });
    assert.equal(p.name, "kv-signed");
    assert.equal(p.issuer, issuerA.publicKey);
    assert.equal(p.subject, claims.sub);
    const stored = await waitFor(async () => (await t.client.getClaims()).find((c) => c.sub === claims.sub));
    assert.equal(stored.name, "kv-signed");
    assert.equal(stored.issuer, issuerA.publicKey);
    // replaced while running, then crashed: the restart checks the claims again and refuses it
    await appendFile(script, "// replaced while running\n");
    const sup = host.providers as ProviderSupervisor;
    process.kill(sup.snapshot("kvs")!.pid!, "SIGKILL");
    const failed = await waitFor(() => (sup.snapshot("kvs")?.lastError?.includes("does not match its claims") ? sup.snapshot("kvs") : undefined), { timeoutMs: 10_000, message: "the restart is refused" });
    assert.equal(failed.starts, 1, "the changed executable never ran again");
    await t.client.stopProvider(host.id, "kvs").catch(() => undefined);

    await assert.rejects(t.client.startProvider(host.id, { provider_id: "kvp", provider_ref: plain }), /provider kvp .* is not signed/);
    await assert.rejects(t.client.startProvider(host.id, { provider_id: "kvs2", provider_ref: script }), /does not match its claims/);
  });

  test("trellis claims sign / inspect (file and running id)", WITH_ADDER, async () => {
    const run = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [path.join(ROOT, "bin", "trellis.mjs"), "--nats-url", t.nats.url, "--lattice", t.lattice, ...args], { cwd: ROOT, timeout: 60_000, env: { ...process.env, TRELLIS_CLAIMS_ISSUER: "" } }, (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
        );
      });
    const seedFile = path.join(dir, "issuer.nk");
    await writeFile(seedFile, issuerA.seed, { mode: 0o600 });
    const dest = path.join(dir, "cli_s.wasm");
    const s = await run("--output", "json", "claims", "sign", ADDER, "--issuer", seedFile, "--name", "cli-adder", "--ver", "2.0.0", "--tag", "t1", "--expires", "30", "--destination", dest);
    assert.equal(s.code, 0, s.stderr);
    assert.ok(!s.stdout.includes(issuerA.seed) && !s.stderr.includes(issuerA.seed), "the seed is never printed");
    const signed = JSON.parse(s.stdout) as { subject: string; issuer: string };
    assert.equal(signed.issuer, issuerA.publicKey);
    const i = await run("--output", "json", "claims", "inspect", dest);
    assert.equal(i.code, 0, i.stderr);
    const info = JSON.parse(i.stdout) as { subject: string; signature_valid: boolean; metadata: { name: string; ver: string; tags: string[] }; module_hash: string };
    assert.equal(info.subject, signed.subject);
    assert.equal(info.signature_valid, true);
    assert.equal(info.metadata.name, "cli-adder");
    assert.equal(info.module_hash, "matches the module");
    const text = await run("claims", "inspect", dest);
    assert.match(text.stdout, /issuer: +A[A-Z2-7]{55}\n/);
    assert.match(text.stdout, /expires: +\d{4}-\d\d-\d\dT/);

    const host = await t.startHost({ ...RUNTIME_TEST_LOADS, cacheDir: dir, workloads: { components: componentRuntime() } });
    await scale(host.id, "cli-adder", dest);
    await waitFor(async () => (await t.client.getInventory(host.id)).components.some((c) => c.id === "cli-adder"), { timeoutMs: 20_000 });
    const byId = await run("--output", "json", "claims", "inspect", "cli-adder");
    assert.equal(byId.code, 0, byId.stderr);
    assert.equal((JSON.parse(byId.stdout) as { sub: string; name: string }).name, "cli-adder");

    const missing = await run("claims", "sign", ADDER);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /--issuer is required/);
  });
});
