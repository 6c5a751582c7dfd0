/**
 * App manifests in wadm's OAM format (issue 5, reference §8.1–§8.3): parsing, validation errors that name the path of
 * the bad field, wadm's ids and config names, and the desired state a manifest resolves to. Pure: no NATS.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/core/errors.ts";
import { computeId, desiredState, parseManifest, parseManifestText } from "../src/app/index.ts";
import { configName } from "../src/app/manifest.ts";

const YAML = `
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: Hello_World
  annotations:
    version: v0.1.0
    description: a test app
spec:
  components:
    - name: adder
      type: component
      properties:
        image: ./adder.wasm
        config:
          - name: greeting
            properties: { lang: en, port: 8080, debug: true }
          - name: shared-settings
      traits:
        - type: spreadscaler
          properties:
            replicas: 2
            spread:
              - name: east
                requirements: { zone: east }
                weight: 80
              - name: west
                requirements: { zone: west }
        - type: link
          properties:
            namespace: wasi
            package: keyvalue
            interfaces: [store, atomics, store]
            target:
              name: kv
              config:
                - name: bucket
                  properties: { bucket: demo }
    - name: kv
      type: capability
      properties:
        image: kv-memory
        id: kvmem
    - name: legacy
      type: actor
      properties:
        image: ./legacy.wasm
      traits:
        - type: daemonscaler
          properties: { instances: 1 }
        - type: link
          properties:
            namespace: wasi
            package: keyvalue
            interfaces: [store]
            name: cache
            target: kv
            target_config:
              - name: bucket
                properties: { bucket: demo }
            source_config:
              - name: ext
`;

function rejects(value: unknown, field: string, re: RegExp): void {
  assert.throws(
    () => (typeof value === "string" ? parseManifestText(value) : parseManifest(value)),
    (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(err)}`);
      assert.equal(err.field, field);
      assert.equal(err.code, "INVALID_ARGUMENT");
      assert.match(err.message, re);
      assert.ok(err.message.startsWith(`${field}: `), `message names the path: ${err.message}`);
      return true;
    },
  );
}

/** A minimal valid manifest object, changed by `edit`. */
function base(edit: (m: any) => void = () => {}): unknown {
  const m = {
    apiVersion: "core.oam.dev/v1beta1",
    kind: "Application",
    metadata: { name: "app" },
    spec: {
      components: [
        { name: "a", type: "component", properties: { image: "a.wasm" }, traits: [{ type: "spreadscaler", properties: { instances: 1 } }] },
        { name: "p", type: "capability", properties: { image: "kv-memory" } },
      ],
    },
  };
  edit(m);
  return m;
}

describe("manifest parsing", () => {
  test("a full manifest: aliases, legacy link form, defaults, coerced config values", () => {
    const { manifest, warnings } = parseManifestText(YAML, "app.yaml");
    assert.deepEqual(warnings, []);
    assert.equal(manifest.name, "Hello_World", "kept as written");
    assert.equal(manifest.version, "v0.1.0");
    assert.equal(manifest.description, "a test app");
    const [adder, kv, legacy] = manifest.components;
    assert.equal(adder?.scaler?.instances, 2, "replicas is an alias of instances");
    assert.deepEqual(adder?.scaler?.spread.map((s) => s.weight), [80, 100], "weight defaults to 100");
    assert.deepEqual(adder?.config[0]?.properties, { lang: "en", port: "8080", debug: "true" });
    assert.deepEqual(adder?.links[0]?.interfaces, ["atomics", "store"], "sorted, de-duplicated");
    assert.equal(adder?.links[0]?.name, "default");
    assert.equal(kv?.type, "capability");
    assert.equal(kv?.scaler, undefined);
    assert.equal(legacy?.type, "component", "actor is an alias of component");
    assert.equal(legacy?.links[0]?.target, "kv");
    assert.equal(legacy?.links[0]?.name, "cache");
    assert.deepEqual(legacy?.links[0]?.sourceConfig, [{ name: "ext" }]);
  });

  test("ids and config names follow wadm's compute_component_id (reference §8.3)", () => {
    assert.equal(computeId("Hello.World", "My Comp-1"), "hello_world-my_comp_1");
    assert.equal(computeId("app", "ünï"), "app-_n_");
    const { manifest } = parseManifestText(YAML);
    const d = desiredState(manifest);
    assert.deepEqual(d.components.map((c) => c.id), ["hello_world-adder", "hello_world-legacy"]);
    assert.deepEqual(d.providers.map((p) => p.id), ["kvmem"], "an explicit id wins");
    assert.deepEqual(d.components[0]?.config, ["hello_world-greeting", "shared-settings"], "inline config sanitized, named config as is");
    assert.deepEqual(d.configs, { "hello_world-greeting": { lang: "en", port: "8080", debug: "true" }, "hello_world-bucket": { bucket: "demo" } });
    assert.deepEqual(d.externalConfigs, ["ext", "shared-settings"]);
    assert.deepEqual(d.links, [
      { source_id: "hello_world-adder", target: "kvmem", name: "default", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["atomics", "store"], source_config: [], target_config: ["hello_world-bucket"] },
      { source_id: "hello_world-legacy", target: "kvmem", name: "cache", wit_namespace: "wasi", wit_package: "keyvalue", interfaces: ["store"], source_config: ["ext"], target_config: ["hello_world-bucket"] },
    ]);
    assert.deepEqual(d.components[0]?.annotations, {
      "wasmcloud.dev/managed-by": "trellis",
      "wasmcloud.dev/appspec": "Hello_World",
      "wasmcloud.dev/scaler": "spreadscaler/adder",
    });
    assert.equal(d.providers[0]?.scaler?.instances, 1, "a provider without a scaler gets one instance, as in wadm");
  });

  test("YAML syntax errors carry the line", () => {
    rejects("apiVersion: [unclosed\nkind: x\n", "manifest", /not valid YAML.*line/);
    rejects("a: 1\na: 2\n", "manifest", /not valid YAML/);
  });

  test("every bad field is named by its path", () => {
    rejects(base((m) => (m.apiVersion = "v1")), "apiVersion", /core\.oam\.dev\/v1beta1/);
    rejects(base((m) => (m.kind = "Deployment")), "kind", /Application/);
    rejects(base((m) => delete m.metadata.name), "metadata.name", /is required/);
    rejects(base((m) => (m.metadata.name = "has space")), "metadata.name", /not allowed/);
    rejects(base((m) => (m.metadata.annotations = { version: "latest" })), "metadata.annotations.version", /latest/);
    rejects(base((m) => (m.metadata.labels = { a: 1 })), "metadata.labels.a", /must be a string/);
    rejects(base((m) => (m.spec.components = {})), "spec.components", /must be a list/);
    rejects(base((m) => (m.spec.components[1].type = "provider")), "spec.components[1].type", /component.*capability/);
    rejects(base((m) => delete m.spec.components[0].properties.image), "spec.components[0].properties.image", /is required/);
    rejects(base((m) => (m.spec.components[0].properties.id = "a.b")), "spec.components[0].properties.id", /unsafe/);
    rejects(base((m) => (m.spec.components[1].name = "a")), "spec.components[1].name", /duplicate component name/);
    rejects(base((m) => (m.spec.components[1].properties.id = "app-a")), "spec.components[1].properties.id", /also the id of spec\.components\[0\]/);
    rejects(base((m) => (m.spec.components[0].properties.application = { name: "x", component: "y" })), "spec.components[0].properties.application", /shared/);
    rejects(base((m) => (m.spec.components[0].properties.secrets = [{ name: "s", properties: { policy: "nope", key: "k" } }])), "spec.components[0].properties.secrets[0].properties.policy", /no spec\.policies entry named "nope"/);
    rejects(base((m) => (m.spec.components[0].properties.config = [{ name: "c", properties: { k: { x: 1 } } }])), "spec.components[0].properties.config[0].properties.k", /must be a string/);
    rejects(base((m) => (m.spec.components[0].properties.config = [{ properties: {} }])), "spec.components[0].properties.config[0].name", /is required/);
    rejects(base((m) => (m.spec.components[0].traits[0].properties.instances = -1)), "spec.components[0].traits[0].properties.instances", /non-negative integer/);
    rejects(base((m) => (m.spec.components[0].traits[0].properties = { replicas: 1.5 })), "spec.components[0].traits[0].properties.replicas", /integer/);
    rejects(base((m) => (m.spec.components[0].traits[0].properties.spread = [{ name: "s", weight: 0 }])), "spec.components[0].traits[0].properties.spread[0].weight", /positive/);
    rejects(base((m) => m.spec.components[0].traits.push({ type: "daemonscaler", properties: { instances: 1 } })), "spec.components[0].traits[1].type", /at most one scaler/);
    rejects(base((m) => m.spec.components[0].traits.push({ type: "autoscaler", properties: {} })), "spec.components[0].traits[1].type", /unknown trait type/);
  });

  test("link traits: dangling target, provider to provider, overlaps, missing fields", () => {
    const link = (props: Record<string, unknown>) => ({ type: "link", properties: { namespace: "wasi", package: "keyvalue", interfaces: ["store"], target: { name: "p" }, ...props } });
    rejects(base((m) => m.spec.components[0].traits.push(link({ target: { name: "nope" } }))), "spec.components[0].traits[1].properties.target", /no component named "nope"/);
    rejects(
      base((m) => {
        m.spec.components.push({ name: "q", type: "capability", properties: { image: "x" }, traits: [link({})] });
      }),
      "spec.components[2].traits[0].properties.target",
      /cannot link to provider/,
    );
    rejects(base((m) => m.spec.components[0].traits.push(link({}), link({}))), "spec.components[0].traits[2].properties", /duplicate link/);
    rejects(
      base((m) => {
        m.spec.components.push({ name: "b", type: "component", properties: { image: "b.wasm" } });
        m.spec.components[0].traits.push(link({}), link({ target: { name: "b" }, interfaces: ["store", "atomics"] }));
      }),
      "spec.components[0].traits[2].properties",
      /overlaps.*different link name/,
    );
    rejects(base((m) => m.spec.components[0].traits.push(link({ interfaces: [] }))), "spec.components[0].traits[1].properties.interfaces", /at least one/);
    rejects(base((m) => m.spec.components[0].traits.push(link({ namespace: undefined }))), "spec.components[0].traits[1].properties.namespace", /must be a string/);
    rejects(base((m) => m.spec.components[0].traits.push(link({ target: { name: "p", secrets: [{ name: "s", properties: { policy: "nope", key: "k" } }] } }))), "spec.components[0].traits[1].properties.target.secrets[0].properties.policy", /no spec\.policies entry/);
    rejects(
      base((m) =>
        m.spec.components[0].traits.push(
          link({ target: { name: "p", config: [{ name: "c", properties: { a: "1" } }] } }),
          link({ name: "other", target: { name: "p", config: [{ name: "c", properties: { a: "2" } }] } }),
        ),
      ),
      "spec.components[0].traits[2].properties.target.config[0].properties",
      /also defined at .*traits\[1\].*other values/,
    );
    // disjoint interfaces to two targets are fine, as is another link name
    const { manifest } = parseManifest(
      base((m) => {
        m.spec.components.push({ name: "b", type: "component", properties: { image: "b.wasm" } });
        m.spec.components[0].traits.push(link({}), link({ target: { name: "b" }, interfaces: ["atomics"] }), link({ name: "n2" }));
      }),
    );
    assert.equal(manifest.components[0]?.links.length, 3);
  });

  test("secrets: become SECRET_{app}-{name} references on the entity's and link side's config, as wadm", () => {
    const { manifest } = parseManifest(
      base((m) => {
        m.spec.policies = [{ name: "nats-kv", type: "policy.secret.wasmcloud.dev/v1alpha1", properties: { backend: "nats-kv" } }];
        m.spec.components[0].properties.secrets = [{ name: "api_password", properties: { policy: "nats-kv", key: "api_password" } }];
        m.spec.components[0].traits.push({ type: "link", properties: { namespace: "wasi", package: "keyvalue", interfaces: ["store"], target: { name: "p", secrets: [{ name: "redis_password", properties: { policy: "nats-kv", key: "rp", version: "2" } }] } } });
      }),
    );
    const c = manifest.components[0]!;
    const sec = c.config.find((r) => r.secret);
    assert.equal(configName(manifest.name, sec!), "SECRET_app-api_password");
    assert.deepEqual(sec!.properties, {
      name: "api_password",
      backend: "nats-kv",
      key: "api_password",
      policy: JSON.stringify({ type: "properties.secret.wasmcloud.dev/v1alpha1", properties: {} }),
      type: "secret.wasmcloud.dev/v1alpha1",
    });
    const t = c.links.at(-1)!.targetConfig[0]!;
    assert.equal(configName(manifest.name, t), "SECRET_app-redis_password");
    assert.equal(t.properties?.version, "2");
  });

  test("unknown fields and policies are ignored with warnings", () => {
    const { warnings } = parseManifest(
      base((m) => {
        m.spec.policies = [];
        m.spec.components[0].traits[0].properties.replica = 3;
        m.metadata.namespace = "x";
      }),
    );
    assert.deepEqual(warnings.sort(), [
      "metadata.namespace is not a known field; ignored",
      "spec.components[0].traits[0].properties.replica is not a known field; ignored",
    ]);
  });
});
