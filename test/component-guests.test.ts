/**
 * Imports beyond plain functions (issue 3 §4): resources crossing the lattice as handles owned by the target,
 * `wasmcloud:bus/lattice.set-link-name`, guest stderr in the host log, `wasi:config/store` (merged, live),
 * `wasi:logging`, and `wasi:http/outgoing-handler` routed by links in the carried form.
 * The JS guest is built here with componentize-qjs; fixtures: see test/support/components.ts (Apache-2.0).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentize } from "componentize-qjs";
import { invokeHttp, invokeJson, serveHttpClient, serveInterfaces, t, type HttpRequest, type InterfaceType } from "../src/invocation/index.ts";
import { TrellisError } from "../src/core/errors.ts";
import { waitFor } from "../src/testing/index.ts";
import { fixture, startRuntime, type RuntimeEnv, needsFixtures } from "./support/components.ts";

const WIT = `package test:guest@0.1.0;

interface kv {
  resource bucket {
    get: func(key: string) -> option<string>;
  }
  open: func(name: string) -> bucket;
}

interface api {
  run: func(key: string) -> string;
}

world g {
  import wasmcloud:bus/lattice@1.0.0;
  import kv;
  export api;
}

package wasmcloud:bus@1.0.0 {
  interface lattice {
    resource call-target-interface {
      constructor(namespace: string, %package: string, %interface: string);
    }
    set-link-name: func(name: string, interfaces: list<call-target-interface>);
  }
}
`;

const JS = `
import { open } from "test:guest/kv@0.1.0";
import { setLinkName, CallTargetInterface } from "wasmcloud:bus/lattice@1.0.0";
export const api = {
  run(key) {
    if (key === "throw") throw new Error("boom from the guest");
    const r1 = open("b1").get(key);
    setLinkName("other", [new CallTargetInterface("test", "guest", "kv")]);
    const r2 = open("b2").get(key);
    return r1 + "|" + r2;
  },
};
`;

const kvType: InterfaceType = {
  name: "test:guest/kv@0.1.0",
  resources: ["bucket"],
  functions: {
    open: t.func([["name", t.string]], t.own("bucket")),
    "[method]bucket.get": t.func([["self", t.borrow("bucket")], ["key", t.string]], t.option(t.string)),
  },
};
const dec = new TextDecoder();
const enc = new TextEncoder();

describe("guest imports", () => {
  let env: RuntimeEnv;
  const drops: string[] = [];
  before(async () => {
    env = await startRuntime();
    const dir = await mkdtemp(path.join(tmpdir(), "trellis-qjs-"));
    await writeFile(path.join(dir, "world.wit"), WIT);
    const { component } = await componentize({ witPath: path.join(dir, "world.wit"), jsSource: JS, sync: true, optSize: true });
    await writeFile(path.join(dir, "guest.wasm"), component);
    for (const p of ["A", "B"]) {
      serveInterfaces(env.nc, { lattice: env.lattice, targetId: `kv${p}` }, [
        {
          type: kvType,
          handlers: {
            open: (name: string) => enc.encode(name),
            "[method]bucket.get": (self: Uint8Array, key: string) => `${p}:${dec.decode(self)}:${key}`,
            "[resource-drop]bucket": (self: Uint8Array) => void drops.push(`${p}:${dec.decode(self)}`),
          },
        },
      ]);
    }
    env.links.put({ source_id: "g", target: "kvA", wit_namespace: "test", wit_package: "guest", interfaces: ["kv"] });
    env.links.put({ source_id: "g", target: "kvB", wit_namespace: "test", wit_package: "guest", interfaces: ["kv"], name: "other" });
    await env.runtime.start(path.join(dir, "guest.wasm"), "g");
  });
  after(async () => {
    await env?.close();
  });

  const run = (key: string) => invokeJson(env.nc, { lattice: env.lattice, targetId: "g", iface: "test:guest/api", fn: "run", timeoutMs: 5000 }, [key]);

  test("resources cross as handles owned by the target; set-link-name picks another link for the rest of the call", async () => {
    assert.equal(await run("k"), "A:b1:k|B:b2:k");
    // the link name choice lasts one call
    assert.equal(await run("k2"), "A:b1:k2|B:b2:k2");
    // dropped handles are announced to their owners
    await waitFor(() => drops.includes("A:b1") && drops.includes("B:b2"), { timeoutMs: 2000 });
  });

  test("guest stderr reaches the host log, tagged with the component id", async () => {
    await assert.rejects(run("throw"), (e: TrellisError) => e.code === "COMPONENT_TRAP");
    // log records travel from the worker thread on their own: wait for them
    await waitFor(() => env.logs.some((l) => l.meta["component_id"] === "g" && l.meta["stream"] === "stderr" && /boom from the guest/.test(l.msg)), {
      timeoutMs: 2000,
    });
    assert.equal(await run("k3"), "A:b1:k3|B:b2:k3");
  });

  test("wasi:config/store sees the merged named config, live; wasi:http/outgoing-handler is routed by links", { skip: needsFixtures("http_counter.wasm") }, async () => {
    env.config.put("base", { test_key: "base_value", counter_enabled: "true" });
    env.config.put("over", { test_key: "test_value" });
    await env.runtime.start(fixture("http_counter.wasm"), "counter", { config: ["base", "over"] });
    const get = () => invokeHttp(env.nc, env.lattice, "counter", { method: "GET", pathWithQuery: "/", headers: [], body: new Uint8Array(0) }, { timeoutMs: 5000 });
    const guestLog = () => env.logs.filter((l) => l.meta["component_id"] === "counter" && l.meta["source"] === "wasi:logging").map((l) => l.msg);

    // no link for wasi:http/outgoing-handler: the guest sees an error and answers 500 naming it
    let res = await get();
    assert.equal(res.status, 500);
    assert.match(dec.decode(res.body), /component counter has no link for interface wasi:http\/outgoing-handler/);
    await waitFor(() => guestLog().includes("Config key: counter_enabled = true"), { timeoutMs: 2000 });
    assert.ok(guestLog().includes("Config key: test_key = test_value"), "right config wins");

    // live config change, no restart
    env.config.put("over", { test_key: "changed" });
    await new Promise((r) => setTimeout(r, 50));
    res = await get();
    await waitFor(() => guestLog().includes("Config key: test_key = changed"), { timeoutMs: 2000 });

    // an HTTP client target answers the outgoing request in carried form
    const seen: HttpRequest[] = [];
    serveHttpClient(env.nc, { lattice: env.lattice, targetId: "httpclient" }, (req) => {
      seen.push(req);
      throw new TrellisError("APPLICATION_ERROR", "no DNS on this machine", { details: { error_code: "DNS-error" } });
    });
    env.links.put({ source_id: "counter", target: "httpclient", wit_namespace: "wasi", wit_package: "http", interfaces: ["outgoing-handler"] });
    await new Promise((r) => setTimeout(r, 50));
    res = await get();
    assert.equal(res.status, 500);
    assert.match(dec.decode(res.body), /DnsError/);
    assert.deepEqual(
      seen.map((r) => [r.method, r.scheme, r.authority, r.pathWithQuery]),
      [["GET", "https", "example.com", "/"]],
    );
  });

  test("http_counter end to end: keyvalue counter, blobstore write (value resource) and outgoing HTTP, all by links", { skip: needsFixtures("http_counter.wasm") }, async () => {
    const kvError = t.variant({ "no-such-store": undefined, "access-denied": undefined, other: t.string }, "error");
    const counts = new Map<string, bigint>();
    serveInterfaces(env.nc, { lattice: env.lattice, targetId: "kv" }, [
      {
        type: { name: "wasi:keyvalue/store@0.2.0-draft", resources: ["bucket"], functions: { open: t.func([["identifier", t.string]], t.result(t.own("bucket"), kvError)) } },
        handlers: { open: (id: string) => ({ tag: "ok", val: enc.encode(id) }) },
      },
      {
        type: {
          name: "wasi:keyvalue/atomics@0.2.0-draft",
          resources: ["bucket"],
          functions: { increment: t.func([["bucket", t.borrow("bucket")], ["key", t.string], ["delta", t.u64]], t.result(t.u64, kvError)) },
        },
        handlers: {
          increment: (bucket: Uint8Array, key: string, delta: bigint) => {
            const k = `${dec.decode(bucket)}/${key}`;
            counts.set(k, (counts.get(k) ?? 0n) + delta);
            return { tag: "ok", val: counts.get(k) };
          },
        },
      },
    ]);
    const written: { container: string; name: string; data: string }[] = [];
    const res = (ok?: ReturnType<typeof t.own>) => t.result(ok, t.string);
    serveInterfaces(env.nc, { lattice: env.lattice, targetId: "blobs" }, [
      {
        type: {
          name: "wasi:blobstore/blobstore@0.2.0-draft",
          resources: ["container"],
          functions: {
            "create-container": t.func([["name", t.string]], res(t.own("container"))),
            "get-container": t.func([["name", t.string]], res(t.own("container"))),
          },
        },
        handlers: {
          "create-container": (name: string) => ({ tag: "ok", val: enc.encode(name) }),
          "get-container": (name: string) => ({ tag: "ok", val: enc.encode(name) }),
        },
      },
      {
        type: {
          name: "wasi:blobstore/container@0.2.0-draft",
          resources: ["container", "outgoing-value"],
          functions: {
            "[method]container.write-data": t.func([["self", t.borrow("container")], ["name", t.string], ["data", t.borrow("outgoing-value")]], res()),
          },
        },
        handlers: {
          "[method]container.write-data": (self: Uint8Array, name: string, data: Uint8Array) => {
            written.push({ container: dec.decode(self), name, data: dec.decode(data) });
            return { tag: "ok" };
          },
        },
      },
    ]);
    serveHttpClient(env.nc, { lattice: env.lattice, targetId: "web" }, () => ({
      status: 200,
      headers: [["content-type", enc.encode("text/html")]],
      body: enc.encode("<html>example</html>"),
    }));
    env.config.put("counter", { test_key: "test_value", counter_enabled: "true" });
    for (const [target, ns, pkg, interfaces] of [
      ["kv", "wasi", "keyvalue", ["store", "atomics"]],
      ["blobs", "wasi", "blobstore", ["blobstore", "container"]],
      ["web", "wasi", "http", ["outgoing-handler"]],
    ] as const) {
      env.links.put({ source_id: "counter2", target, wit_namespace: ns, wit_package: pkg, interfaces: [...interfaces] });
    }
    await env.runtime.start(fixture("http_counter.wasm"), "counter2", { config: ["counter"] });
    const get = () => invokeHttp(env.nc, env.lattice, "counter2", { method: "GET", pathWithQuery: "/", headers: [], body: new Uint8Array(0) }, { timeoutMs: 5000 });
    const first = await get();
    assert.equal(first.status, 200, dec.decode(first.body));
    assert.equal(dec.decode(first.body), "1");
    assert.equal(dec.decode((await get()).body), "2");
    assert.deepEqual(written[0], { container: "http-responses", name: "example-com-response", data: "<html>example</html>" });
  });
});
