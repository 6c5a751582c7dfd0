/**
 * Components and capability providers by OCI reference through a host (issue 14 §1), against a real registry
 * (Debian's docker-registry on loopback): `component.scale` and `provider.start` by tag and by digest, `--allow-latest`
 * enforced by the host, `wasmcloud+builtin://` aliases, and a stock wasmCloud 1.9 manifest deployed unchanged through
 * `--oci-mirror ghcr.io=…` that answers over HTTP.
 * Fixture: http_hello_world_rust.wasm (wasmCloud/wasmCloud crates/wash/tests/fixtures, a1806a3e, Apache-2.0).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { componentEmbed, componentNew } from "@bytecodealliance/jco";
import { deployApp, parseManifestText } from "../src/app/index.ts";
import { defaultWorkloads } from "../src/host/default-workloads.ts";
import { providerSupervisor } from "../src/provider/index.ts";
import { compileOciOptions, hostTarget, OciRegistry, pushComponent, pushProvider } from "../src/oci/index.ts";
import { startTestRegistry, waitFor, type TestRegistry } from "../src/testing/index.ts";
import { fixture, needsFixtures } from "./support/components.ts";
import { testLattice, type TestLattice } from "./support/lattice.ts";

const KV_MEMORY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../providers/kv-memory/main.ts");

/** wasmCloud v1.9.2 `ci/manifests/wadm.yaml`, byte for byte (Apache-2.0). */
const STOCK_MANIFEST = `apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: http
  annotations:
    description: "HTTP hello world demo in Rust, using the WebAssembly Component Model and WebAssembly Interfaces Types (WIT)"
    wasmcloud.dev/authors: wasmCloud team
    wasmcloud.dev/source-url: https://github.com/wasmCloud/wasmCloud/blob/main/examples/rust/components/http-hello-world/wadm.yaml
    wasmcloud.dev/readme-md-url: https://github.com/wasmCloud/wasmCloud/blob/main/examples/rust/components/http-hello-world/README.md
    wasmcloud.dev/homepage: https://github.com/wasmCloud/wasmCloud/tree/main/examples/rust/components/http-hello-world
    wasmcloud.dev/categories: |
      http,http-server,rust,hello-world,example
spec:
  components:
    - name: http
      type: component
      properties:
        image: ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0
      traits:
        - type: daemonscaler
          properties:
            instances: 2000

    - name: provider
      type: capability
      properties:
        image: wasmcloud+builtin://http-server
      traits:
        - type: daemonscaler
          properties:
            instances: 1
        - type: link
          properties:
            name: http
            target: http
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source_config:
              - name: local
                properties:
                  address: 0.0.0.0:8080
`;

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

const PORT_8080_FREE = await portFree(8080);

describe("OCI references through a host", () => {
  let reg: TestRegistry;
  let t: TestLattice;
  let pusher: OciRegistry;
  before(async () => {
    reg = await startTestRegistry();
    t = await testLattice();
    pusher = new OciRegistry(compileOciOptions({ cacheDir: "/tmp/trellis-test-cache", insecureHosts: [reg.host], allowLatest: true }));
  });
  after(async () => {
    await t?.close();
    await reg?.stop();
  });

  const hostWith = (oci: Record<string, unknown> = {}) =>
    t.startHost({
      workloads: { ...defaultWorkloads(), providers: providerSupervisor({ firstHealthCheckMs: 100, healthIntervalMs: 1000, shutdownDelayMs: 500 }) },
      oci: { insecureHosts: [reg.host], ...oci },
    });

  test("component.scale and provider.start by tag and by digest; nothing needs --allow-file-load", async () => {
    const host = await hostWith();
    const wit = `package test:oci@0.1.0;\ninterface api { hello: func() -> string; }\nworld w { export api; }`;
    const comp = await componentNew(await componentEmbed({ dummy: true, witSource: wit }));
    const compRef = `${reg.host}/test/dummy:1.0.0`;
    const compDigest = await pushComponent(pusher, compRef, comp, { imports: [], exports: ["test:oci/api@0.1.0"] });
    // a provider archive whose binary for this machine starts the first-party kv-memory
    const script = `#!/bin/sh\nexec "${process.execPath}" "${KV_MEMORY}"\n`;
    const provRef = `${reg.host}/test/kv-memory:0.1.0`;
    const provDigest = await pushProvider(pusher, provRef, { [hostTarget()]: new TextEncoder().encode(script) });

    await t.client.scaleComponent(host.id, { component_ref: compRef, component_id: "by-tag", count: 1 });
    await t.client.scaleComponent(host.id, { component_ref: `${reg.host}/test/dummy@${compDigest}`, component_id: "by-digest", count: 1 });
    await t.client.startProvider(host.id, { provider_id: "kv-oci", provider_ref: provRef });
    await t.client.startProvider(host.id, { provider_id: "kv-oci-digest", provider_ref: `oci://${reg.host}/test/kv-memory@${provDigest}` });
    await waitFor(
      async () => {
        const inv = await t.client.getInventory(host.id);
        const comps = inv.components.map((c) => c.id).sort().join();
        const provs = inv.providers.filter((p) => p.status === "running" || p.status === undefined).map((p) => p.id).sort().join();
        return comps === "by-digest,by-tag" && provs === "kv-oci,kv-oci-digest";
      },
      { timeoutMs: 20_000, message: "both components and both providers run" },
    );
    await host.stop();
  });

  test("the host refuses :latest without --allow-latest, with a clear reply; an unknown digest is refused", async () => {
    const host = await hostWith();
    const wit = `package test:latest@0.1.0;\ninterface api { hello: func() -> string; }\nworld w { export api; }`;
    await pushComponent(pusher, `${reg.host}/test/latest:latest`, await componentNew(await componentEmbed({ dummy: true, witSource: wit })), { imports: [], exports: [] });
    const events = await t.recordEvents();
    await t.client.scaleComponent(host.id, { component_ref: `${reg.host}/test/latest:latest`, component_id: "latest", count: 1 }).catch(() => undefined);
    await waitFor(() => events.ofType("component_scale_failed").some((e) => e.data["component_id"] === "latest"), { timeoutMs: 10_000 });
    const failed = events.ofType("component_scale_failed").find((e) => e.data["component_id"] === "latest")!;
    assert.match(String(failed.data["error"]), /--allow-latest/);
    const wrong = `${reg.host}/test/dummy@sha256:${"0".repeat(64)}`;
    await t.client.scaleComponent(host.id, { component_ref: wrong, component_id: "wrong", count: 1 }).catch(() => undefined);
    await waitFor(() => events.ofType("component_scale_failed").some((e) => e.data["component_id"] === "wrong"), { timeoutMs: 10_000 });
    await host.stop();
  });

  test(
    "a stock wasmCloud 1.9 manifest (ci/manifests/wadm.yaml) deploys unchanged through --oci-mirror and answers over HTTP",
    { skip: needsFixtures("http_hello_world_rust.wasm") || (PORT_8080_FREE ? false : "port 8080 is in use (the stock manifest binds it)") },
    async () => {
      // the registry stands in for ghcr.io: the component is published under the very repository the manifest names
      await pushComponent(pusher, `${reg.host}/wasmcloud/components/http-hello-world-rust:0.1.0`, await readFile(fixture("http_hello_world_rust.wasm")), {
        imports: [],
        exports: ["wasi:http/incoming-handler@0.2.0"],
      });
      await hostWith({ mirrors: { "ghcr.io": reg.host } });
      const { manifest } = parseManifestText(STOCK_MANIFEST);
      const r = await deployApp(t.client, manifest, { wait: true, waitTimeoutMs: 20_000 });
      assert.equal(r.failures.length, 0, JSON.stringify(r.failures));
      assert.equal(r.timed_out, false, `deployed in time: ${JSON.stringify(r.status)}`);
      const body = await waitFor(
        async () => {
          const res = await fetch("http://127.0.0.1:8080/", { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
          return res?.ok ? await res.text() : undefined;
        },
        { timeoutMs: 30_000, message: "the stock app answers on 127.0.0.1:8080" },
      );
      assert.equal(body, "Hello from Rust!\n");
    },
  );
});
