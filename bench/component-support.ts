/**
 * Shared pieces of the component benchmarks: a component host child process (bench/component-host.ts) driven over
 * stdin/stdout, and the WAT test guests.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
/**
 * Folder of the third-party fixture components (Apache-2.0; provenance in its README.md), read in place:
 * `TRELLIS_FIXTURES_DIR` when set, else `../shared/fixtures/components` beside the repository — the same variable and
 * default as the tests (test/support/components.ts).
 */
export const FIXTURES = process.env.TRELLIS_FIXTURES_DIR ?? path.join(ROOT, "..", "shared", "fixtures", "components");

/** A component exporting `test:bench/api.run(n: u32) -> u32`, which calls the imported `test:bench/ping.ping(x: u32) -> u32` n times. */
export const PINGER_WAT = `(component
  (import "test:bench/ping@0.1.0" (instance $ping (export "ping" (func (param "x" u32) (result u32)))))
  (alias export $ping "ping" (func $ping_f))
  (core func $ping_core (canon lower (func $ping_f)))
  (core module $m
    (import "host" "ping" (func $ping (param i32) (result i32)))
    (func (export "run") (param $n i32) (result i32)
      (local $i i32) (local $acc i32)
      (block $done (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (call $ping (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (local.get $acc)))
  (core instance $host (export "ping" (func $ping_core)))
  (core instance $i (instantiate $m (with "host" (instance $host))))
  (func $run (param "n" u32) (result u32) (canon lift (core func $i "run")))
  (instance $api (export "run" (func $run)))
  (export "test:bench/api@0.1.0" (instance $api))
)`;

/** A component host in a child process. */
export class ComponentHostProcess {
  readonly child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #lines: AsyncIterator<string>;

  private constructor(child: ChildProcessByStdio<Writable, Readable, null>) {
    this.child = child;
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts the child and waits for it to be ready. */
  static async start(natsUrl: string, lattice: string, cacheDir: string, env: Record<string, string> = {}): Promise<ComponentHostProcess> {
    const child = spawn(process.execPath, [path.join(ROOT, "bench", "component-host.ts"), natsUrl, lattice, cacheDir], {
      stdio: ["pipe", "pipe", "inherit"],
      env: { ...process.env, ...env },
    });
    const h = new ComponentHostProcess(child);
    const first = await h.#lines.next();
    if (first.done || !String(first.value).includes("ready")) throw new Error("component host did not start");
    return h;
  }

  /** Sends one command and returns its answer. @throws Error with the host's message when `ok` is false. */
  async cmd<T extends Record<string, unknown>>(c: Record<string, unknown>): Promise<T> {
    this.child.stdin.write(`${JSON.stringify(c)}\n`);
    const r = await this.#lines.next();
    if (r.done) throw new Error("component host exited");
    const v = JSON.parse(String(r.value)) as T & { ok: boolean; error?: string };
    if (!v.ok) throw new Error(v.error ?? "component host failed");
    return v;
  }

  async stop(): Promise<void> {
    try {
      await this.cmd({ op: "exit" });
    } catch {
      // already gone
    }
    await new Promise<void>((r) => {
      if (this.child.exitCode !== null) r();
      else this.child.once("exit", () => r());
    });
  }
}
