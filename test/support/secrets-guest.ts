/**
 * A tiny component built from WAT that reads a secret through `wasmcloud:secrets/store` + `reveal` (the 1.x WIT,
 * `wasmcloud:secrets@0.1.0-draft`) and returns its string value from `test:secrets/api.run(key)`; a missing secret
 * returns `"<not-found>"`, another error `"<error>"`.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { componentEmbed, componentNew, parse } from "@bytecodealliance/jco";

const WIT = `
package test:secrets;

world guest {
  import wasmcloud:secrets/store@0.1.0-draft;
  import wasmcloud:secrets/reveal@0.1.0-draft;
  export api;
}

interface api {
  run: func(key: string) -> string;
}

package wasmcloud:secrets@0.1.0-draft {
  interface store {
    variant secrets-error { upstream(string), io(string), not-found }
    variant secret-value { %string(string), bytes(list<u8>) }
    resource secret;
    get: func(key: string) -> result<secret, secrets-error>;
  }
  interface reveal {
    use store.{secret, secret-value};
    reveal: func(s: borrow<secret>) -> secret-value;
  }
}
`;

const WAT = `
(module
  (import "wasmcloud:secrets/store@0.1.0-draft" "get" (func $get (param i32 i32 i32)))
  (import "wasmcloud:secrets/reveal@0.1.0-draft" "reveal" (func $reveal (param i32 i32)))
  (import "wasmcloud:secrets/store@0.1.0-draft" "[resource-drop]secret" (func $drop (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "<not-found>")
  (data (i32.const 32) "<error>")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1))) (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "test:secrets/api#run") (param $kp i32) (param $kl i32) (result i32)
    (call $get (local.get $kp) (local.get $kl) (i32.const 64))
    (if (i32.ne (i32.load8_u (i32.const 64)) (i32.const 0))
      (then
        (if (i32.eq (i32.load8_u (i32.const 68)) (i32.const 2))
          (then (i32.store (i32.const 256) (i32.const 16)) (i32.store (i32.const 260) (i32.const 11)))
          (else (i32.store (i32.const 256) (i32.const 32)) (i32.store (i32.const 260) (i32.const 7))))
        (return (i32.const 256))))
    (call $reveal (i32.load (i32.const 68)) (i32.const 128))
    (call $drop (i32.load (i32.const 68)))
    (i32.store (i32.const 256) (i32.load (i32.const 132)))
    (i32.store (i32.const 260) (i32.load (i32.const 136)))
    (i32.const 256))
)
`;

/** Builds the guest; returns the path of the component file (in a fresh temp dir). */
export async function buildSecretsGuest(): Promise<string> {
  const core = await parse(WAT);
  const embedded = await componentEmbed({ binary: core, witSource: WIT, world: "guest" });
  const component = await componentNew(embedded);
  const dir = await mkdtemp(path.join(tmpdir(), "trellis-secrets-guest-"));
  const file = path.join(dir, "secrets-guest.wasm");
  await writeFile(file, component);
  return file;
}
