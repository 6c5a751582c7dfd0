/**
 * Secrets (issue 10 items 2–3): the first-party backend (values sealed at rest in JetStream KV, requests and replies
 * sealed with xkeys, reference §6.5), and sealed delivery of a link's target secret to a TypeScript-SDK provider
 * (reference §2.2, §6.3): kv-redis, signed, opens the Redis password and uses it against a real
 * `redis-server` with `requirepass`. Meanwhile a subscriber on `>`, a dump of every KV bucket, the host log, the
 * provider's output and every event are searched for the password's plain text.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Redis } from "ioredis";
import { newIssuer, providerClaimsPath, signProvider } from "../src/claims/index.ts";
import { invoke, invokeJson } from "../src/invocation/index.ts";
import { componentRuntime } from "../src/component/index.ts";
import { signComponent } from "../src/claims/index.ts";
import { readFile } from "node:fs/promises";
import { buildSecretsGuest } from "./support/secrets-guest.ts";
import { componentRuntime as runtimeFactory } from "../src/component/index.ts";
import { deployApp, getAppStatus, parseManifestText } from "../src/app/index.ts";
import { providerSupervisor } from "../src/provider/supervisor.ts";
import { SecretsClient, hostSecretsIdentity } from "../src/secrets/client.ts";
import { SecretsServer } from "../src/secrets/server.ts";
import { SecretStore } from "../src/secrets/store.ts";
import { policyString, referenceToConfig } from "../src/secrets/types.ts";
import { newXKey } from "../src/secrets/xkey.ts";
import { startTestNats, startTestRedis, waitFor, type TestNats, type TestRedis } from "../src/testing/index.ts";
import { BUCKET_HANDLES, KEYVALUE_STORE } from "trellis/provider-sdk";
import { recordingLogger, type LogRecord, RUNTIME_TEST_LOADS } from "./support/components.ts";
import { FAST_SUPERVISION } from "./support/providers.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TOPIC = "wasmcloud.secrets";

type Ok<T> = { tag: "ok"; val: T } | { tag: "err"; val: { tag: string; val?: string } };

describe("secrets: backend, sealed delivery to a TypeScript provider, nothing in the clear", () => {
  let nats: TestNats;
  let redis: TestRedis;
  let t: TestLattice;
  let server: SecretsServer;
  let wire: Buffer[];
  let spy: NatsConnection;
  const hostLog: LogRecord[] = [];
  const providerOutput: string[] = [];
  const password = `pw-${randomUUID()}`;
  const issuer = newIssuer();
  let providerScript: string;
  let hostId: string;

  before(async () => {
    nats = await startTestNats();
    redis = await startTestRedis({ private: true });
    t = await testLattice(nats);
    wire = [];
    spy = await t.connection();
    spy.subscribe(">", {
      callback: (_e, m) => {
        wire.push(Buffer.from(m.data));
        if (m.headers) wire.push(Buffer.from(m.headers.toString()));
      },
    });
    await spy.flush();
    const host = await t.startHost({ ...RUNTIME_TEST_LOADS,
      secretsTopic: TOPIC,
      logger: recordingLogger(hostLog, { who: "host" }),
      workloads: { providers: providerSupervisor({ ...FAST_SUPERVISION, onOutput: (_id, _s, line) => providerOutput.push(line) }) },
    });
    hostId = host.id;
    // the operator stores the secret (sealed at rest) and a reference to it named SECRET_redis
    server = await SecretsServer.start({ nc: await t.connection(), topic: TOPIC, xkey: newXKey(), logger: recordingLogger(hostLog, { who: "backend" }) });
    await server.store.put("redis-pass", { string_secret: password });
    await t.client.putConfig("SECRET_redis", referenceToConfig({ name: "password", backend: "nats-kv", key: "redis-pass", policy: policyString() }));
    // Redis now requires the password
    const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await admin.config("SET", "requirepass", password);
    } finally {
      admin.disconnect();
    }
    // a signed kv-redis provider (claims file beside a wrapper script)
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-secrets-"));
    providerScript = path.join(dir, "kv-redis.ts");
    await writeFile(
      providerScript,
      `import { runProvider } from ${JSON.stringify(path.join(ROOT, "packages/provider-sdk/src/index.ts"))};\n` +
        `import { kvRedisProvider } from ${JSON.stringify(path.join(ROOT, "providers/kv-redis/main.ts"))};\n` +
        "await runProvider(kvRedisProvider({ drainMs: 100 }));\n",
    );
    await writeFile(providerClaimsPath(providerScript), signProvider(providerScript, { issuerSeed: issuer.seed, name: "kv-redis" }).jwt);
  });
  after(async () => {
    await server?.stop();
    await t?.close();
    await redis?.stop();
    await nats?.stop();
  });

  const kv = (source: string) => (fn: string, args: unknown[]) =>
    invoke(t.client.nc, { lattice: t.lattice, targetId: "kvr", iface: KEYVALUE_STORE.name, fn, sourceId: source, linkName: "default", timeoutMs: 5000 }, KEYVALUE_STORE.functions[fn]!, args, BUCKET_HANDLES) as Promise<Ok<unknown>>;

  test("the provider opens its link's target secret and authenticates to Redis with it; no plain text anywhere", async () => {
    const ev = await t.recordEvents();
    await t.client.putConfig("redis-url", { url: redis.url });
    // a link put before the provider starts arrives in host data; one put after it arrives on the instance's xkey subject
    await t.client.putLink({ source_id: "app1", target: "kvr", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"], target_config: ["redis-url", "SECRET_redis"] });
    await t.client.startProvider(hostId, { provider_id: "kvr", provider_ref: providerScript });
    await t.client.putLink({ source_id: "app2", target: "kvr", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"], target_config: ["redis-url", "SECRET_redis"] });
    // and one without the secret, to show Redis really refuses without it
    await t.client.putLink({ source_id: "nopass", target: "kvr", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"], target_config: ["redis-url"] });

    for (const source of ["app1", "app2"]) {
      const r = await waitFor(async () => {
        const open = await kv(source)("open", ["b"]).catch(() => undefined);
        if (!open || open.tag !== "ok") return undefined;
        const set = await kv(source)("[method]bucket.set", ["b", `k-${source}`, new TextEncoder().encode("v")]);
        return set.tag === "ok" ? set : undefined;
      }, { timeoutMs: 15_000, message: `${source} writes through the password-protected link` });
      assert.equal(r.tag, "ok");
    }
    const check = new Redis(redis.url, { password, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      assert.equal(await check.get("b:k-app1"), "v");
      assert.equal(await check.get("b:k-app2"), "v");
    } finally {
      check.disconnect();
    }
    const refused = await waitFor(async () => {
      const open = await kv("nopass")("open", ["b"]).catch(() => undefined);
      if (!open) return undefined;
      const set = await kv("nopass")("[method]bucket.set", ["b", "x", new TextEncoder().encode("v")]).catch((e: Error) => ({ tag: "err", val: { tag: "other", val: e.message } }) as Ok<unknown>);
      return set;
    });
    assert.equal(refused.tag, "err", "without the secret Redis refuses the write");

    // the evidence: wire, every KV bucket, host and backend log, provider output, events
    await spy.flush();
    const needle = Buffer.from(password);
    assert.ok(wire.length > 50, "the spy saw the run");
    assert.equal(wire.filter((b) => b.includes(needle)).length, 0, "no NATS message carries the password in plain text");
    const jsm = await jetstreamManager(spy);
    let dumped = 0;
    for await (const si of jsm.streams.list()) {
      for (let seq = si.state.first_seq; seq <= si.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(si.config.name, { seq }).catch(() => undefined);
        if (!m) continue;
        dumped++;
        assert.ok(!Buffer.from(m.data).includes(needle), `stream ${si.config.name} seq ${seq} holds the password in plain text`);
        assert.ok(!m.subject.includes(password));
      }
    }
    assert.ok(dumped > 3, "the KV dump saw entries");
    assert.ok(!JSON.stringify(hostLog).includes(password), "the host and backend logs never hold the password");
    assert.ok(hostLog.length > 5);
    assert.ok(!providerOutput.join("\n").includes(password), "the provider's output never holds it");
    assert.ok(!JSON.stringify(ev.events).includes(password), "no event holds it");
  });

  test("the backend keeps values sealed at rest and refuses unsigned or unknown requests", async () => {
    const nc = await t.connection();
    const store = await SecretStore.open(nc, "nats-kv", newXKey());
    await assert.rejects(store.get("redis-pass"), /cannot be opened with this backend's key/, "another key cannot open the stored value");
    const client = new SecretsClient({ nc, topic: TOPIC, identity: hostSecretsIdentity("NTEST", "test-host"), config: await configOf(t) });
    await assert.rejects(client.fetch(["SECRET_redis"], undefined), /not signed, and secrets are only given to signed components and providers/);
    const forged = `${["eyJ0eXAiOiJqd3QiLCJhbGciOiJFZDI1NTE5In0", Buffer.from(JSON.stringify({ iss: issuer.publicKey, sub: "MX", iat: 1, jti: "x" })).toString("base64url"), "AAAA"].join(".")}`;
    await assert.rejects(client.fetch(["SECRET_redis"], forged), /refused by the backend: \{"InvalidEntityJWT"/);
    await assert.rejects(client.fetch(["SECRET_missing"], forged), /secret reference SECRET_missing does not exist/);
    const noTopic = new SecretsClient({ nc, topic: undefined, identity: hostSecretsIdentity("NTEST", "h"), config: await configOf(t) });
    await assert.rejects(noTopic.fetch(["SECRET_redis"], forged), /no secrets topic/);
  });

  test("a component reads its secret through wasmcloud:secrets/store + reveal; an unsigned one gets none", async () => {
    const guest = await buildSecretsGuest();
    const signed = path.join(path.dirname(guest), "secrets-guest_s.wasm");
    await writeFile(signed, signComponent(await readFile(guest), { issuerSeed: issuer.seed, name: "secrets-guest" }).bytes);
    const apiPassword = `api-${randomUUID()}`;
    await server.store.put("api_password", { string_secret: apiPassword });
    await t.client.putConfig("SECRET_api", referenceToConfig({ name: "api_password", backend: "nats-kv", key: "api_password", policy: policyString() }));
    const ev = await t.recordEvents();
    const host = await t.startHost({ ...RUNTIME_TEST_LOADS, secretsTopic: TOPIC, cacheDir: path.dirname(guest), logger: recordingLogger(hostLog, { who: "host2" }), workloads: { components: componentRuntime() } });
    await t.client.scaleComponent(host.id, { component_ref: signed, component_id: "reader", count: 1, config: ["SECRET_api"] });
    await waitFor(async () => (await t.client.getInventory(host.id)).components.some((c) => c.id === "reader"), { timeoutMs: 30_000, message: "reader running" });
    // fetched and delivered at start: nothing so far carries it in plain text (the component itself returns it below)
    await spy.flush();
    assert.equal(wire.filter((b) => b.includes(Buffer.from(apiPassword))).length, 0, "the component's secret never crosses NATS in plain text");
    const run = (key: string) => invokeJson(t.client.nc, { lattice: t.lattice, targetId: "reader", iface: "test:secrets/api", fn: "run", timeoutMs: 5000 }, [key]);
    assert.equal(await run("api_password"), apiPassword);
    assert.equal(await run("other"), "<not-found>");

    await t.client.scaleComponent(host.id, { component_ref: guest, component_id: "unsigned-reader", count: 1, config: ["SECRET_api"] });
    const failed = await waitFor(() => ev.ofType("component_scale_failed").find((e) => (e.data as { component_id?: string }).component_id === "unsigned-reader"), { timeoutMs: 30_000 });
    assert.match(String((failed.data as { error?: string }).error), /secret SECRET_api cannot be fetched: the entity is not signed/);
    assert.ok(!JSON.stringify(hostLog).includes(apiPassword));
    assert.ok(!JSON.stringify(ev.events).includes(apiPassword));
  });

  test("a wadm manifest with secrets: (wasmCloud 1.x examples/security/secrets) deploys; a missing secret fails naming it", async () => {
    const guest = await buildSecretsGuest();
    const signed = path.join(path.dirname(guest), "counter_s.wasm");
    await writeFile(signed, signComponent(await readFile(guest), { issuerSeed: issuer.seed, name: "counter" }).bytes);
    const apiPassword = `app-${randomUUID()}`;
    await server.store.put("api_password", { string_secret: apiPassword });
    await server.store.put("redis_password", { string_secret: password });
    await t.startHost({ ...RUNTIME_TEST_LOADS,
      secretsTopic: TOPIC,
      cacheDir: path.dirname(guest),
      logger: recordingLogger(hostLog, { who: "host3" }),
      labels: { role: "apps" },
      workloads: { components: runtimeFactory(), providers: providerSupervisor(FAST_SUPERVISION) },
    });
    // examples/security/secrets/wadm.yaml of wasmCloud v1.9.2, with local images and Redis, without the HTTP server
    const manifest = (name: string, apiKey: string) => `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: ${name}
  annotations:
    description: 'HTTP counter application with authentication, using the wasmcloud:secrets interface'
spec:
  policies:
    - name: nats-kv
      type: policy.secret.wasmcloud.dev/v1alpha1
      properties:
        backend: nats-kv
  components:
    - name: counter
      type: component
      properties:
        image: file://${signed}
        id: ${name}-counter
        secrets:
          - name: api_password
            properties:
              policy: nats-kv
              key: ${apiKey}
      traits:
        - type: spreadscaler
          properties:
            instances: 1
            spread:
              - name: apps
                requirements:
                  role: apps
        - type: link
          properties:
            target:
              name: kvredis
              config:
                - name: redis-url
                  properties:
                    url: ${redis.url}
              secrets:
                - name: redis_password
                  properties:
                    policy: nats-kv
                    key: redis_password
            namespace: wasi
            package: keyvalue
            interfaces: [atomics, store]
        - type: link
          properties:
            name: nopw
            target:
              name: kvredis
              config:
                - name: redis-url
                  properties:
                    url: ${redis.url}
            namespace: wasi
            package: keyvalue
            interfaces: [atomics, store]
    - name: kvredis
      type: capability
      properties:
        image: ${providerScript}
        id: ${name}-kvredis
        secrets:
          - name: default_redis_password
            properties:
              policy: nats-kv
              key: redis_password
      traits:
        - type: spreadscaler
          properties:
            instances: 1
            spread:
              - name: apps
                requirements:
                  role: apps
`;
    const r = await deployApp(t.client, parseManifestText(manifest("counter-auth", "api_password")).manifest, { wait: true, waitTimeoutMs: 30_000 });
    assert.equal(r.status.status, "deployed", JSON.stringify(r.status));
    const run = (key: string) => invokeJson(t.client.nc, { lattice: t.lattice, targetId: "counter-auth-counter", iface: "test:secrets/api", fn: "run", timeoutMs: 5000 }, [key]);
    assert.equal(await run("api_password"), apiPassword);
    // link "default" authenticates with the link's target secret, link "nopw" with the provider's own secret
    for (const linkName of ["default", "nopw"]) {
      const set = await waitFor(async () => {
        const call = (fn: string, args: unknown[]) =>
          invoke(t.client.nc, { lattice: t.lattice, targetId: "counter-auth-kvredis", iface: KEYVALUE_STORE.name, fn, sourceId: "counter-auth-counter", linkName, timeoutMs: 5000 }, KEYVALUE_STORE.functions[fn]!, args, BUCKET_HANDLES) as Promise<Ok<unknown>>;
        const open = await call("open", ["app"]).catch(() => undefined);
        if (open?.tag !== "ok") return undefined;
        const res = await call("[method]bucket.set", ["app", `k-${linkName}`, new TextEncoder().encode("v")]);
        return res.tag === "ok" ? res : undefined;
      }, { timeoutMs: 20_000, message: `the app's provider authenticates to Redis on link ${linkName}` });
      assert.equal(set.tag, "ok");
    }
    assert.deepEqual(await t.client.getConfig("SECRET_counter_auth-api_password"), {
      name: "api_password",
      backend: "nats-kv",
      key: "api_password",
      policy: JSON.stringify({ type: "properties.secret.wasmcloud.dev/v1alpha1", properties: {} }),
      type: "secret.wasmcloud.dev/v1alpha1",
    });

    // The scale fails on the host with a message naming the reference and key. (`deployApp` with `wait` reports it too
    // when its event subscription is up before the failure; the applier subscribes only after sending its actions.)
    const ev = await t.recordEvents();
    await deployApp(t.client, parseManifestText(manifest("missing-secret", "no_such_key")).manifest);
    const failed = await waitFor(() => ev.ofType("component_scale_failed").find((e) => (e.data as { component_id?: string }).component_id === "missing-secret-counter"), { timeoutMs: 30_000 });
    assert.match(String((failed.data as { error?: string }).error), /secret SECRET_missing_secret-api_password \(key no_such_key\) does not exist in secrets backend nats-kv/);
    assert.notEqual((await getAppStatus(t.client, "missing-secret")).status, "deployed");
    assert.ok(!JSON.stringify(hostLog).includes(apiPassword) && !JSON.stringify(hostLog).includes(password));
  });

  test("the Python provider (standard library only) opens its link's target secret", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-secrets-py-"));
    const py = path.join(dir, "provider.py");
    await writeFile(py, await readFile(path.join(ROOT, "providers", "python-kv", "provider.py")), { mode: 0o755 });
    await writeFile(providerClaimsPath(py), signProvider(py, { issuerSeed: issuer.seed, name: "python-kv" }).jwt);
    await t.client.putConfig("pytrace", { trellis_conformance_trace: "stdout" });
    await t.client.putConfig("py-url", { url: redis.url });
    const before = providerOutput.length;
    await t.client.startProvider(hostId, { provider_id: "pykv", provider_ref: py, config: ["pytrace"] });
    await t.client.putLink({ source_id: "pyapp", target: "pykv", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"], target_config: ["py-url", "SECRET_redis"] });
    const put = await waitFor(() =>
      providerOutput
        .slice(before)
        .filter((l) => l.startsWith("TRELLIS_TRACE "))
        .map((l) => JSON.parse(l.slice("TRELLIS_TRACE ".length)) as { event: string; source_id?: string; secret_names?: string[] })
        .find((e) => e.event === "link_put" && e.source_id === "pyapp"),
    { timeoutMs: 15_000, message: "the Python provider's link_put trace" });
    assert.deepEqual(put.secret_names, ["password"], "the names are inside the sealed map: opening it succeeded");
    assert.ok(!providerOutput.join("\n").includes(password));
    await t.client.stopProvider(hostId, "pykv");
  });

  test("trellis secret keygen / put --stdin / list / get / del", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-secret-cli-"));
    const keyFile = path.join(dir, "backend.xk");
    const run = (args: string[], input?: string) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, [path.join(ROOT, "bin", "trellis.mjs"), "--nats-url", t.nats.url, "--lattice", t.lattice, ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
        );
        child.stdin?.end(input ?? "");
      });
    assert.equal((await run(["secret", "keygen", keyFile])).code, 0);
    const value = `cli-${randomUUID()}`;
    const put = await run(["secret", "put", "api-token", "--stdin", "--key-file", keyFile, "--backend", "cli-kv"], `${value}\n`);
    assert.equal(put.code, 0, put.stderr);
    assert.ok(!put.stdout.includes(value));
    assert.deepEqual(await t.client.getConfig("SECRET_api-token"), referenceToConfig({ name: "api-token", backend: "cli-kv", key: "api-token", policy: policyString() }));
    const list = await run(["secret", "list", "--key-file", keyFile, "--backend", "cli-kv"]);
    assert.match(list.stdout, /^api-token\tversion \d+$/m);
    assert.ok(!list.stdout.includes(value));
    const get = await run(["secret", "get", "api-token", "--key-file", keyFile, "--backend", "cli-kv"]);
    assert.equal(get.stdout.trim(), value);
    assert.equal((await run(["secret", "del", "api-token", "--key-file", keyFile, "--backend", "cli-kv"])).code, 0);
    assert.equal(await t.client.getConfig("SECRET_api-token"), undefined);
    const gone = await run(["secret", "get", "api-token", "--key-file", keyFile, "--backend", "cli-kv"]);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /secret api-token not found/);
  });
});

/** A ConfigSource over the lattice's CONFIGDATA through the control client. */
async function configOf(t: TestLattice) {
  return {
    resolve: async (names: readonly string[]) => {
      const out: Record<string, string> = {};
      for (const n of names) {
        const v = await t.client.getConfig(n);
        if (!v) throw new Error(`Config ${n} does not exist`);
        Object.assign(out, v);
      }
      return out;
    },
    current: () => ({}),
    onChange: () => () => undefined,
  };
}
