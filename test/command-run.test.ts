/**
 * Command components (issue 11 J): `trellis run FILE [-- ARGS…]` runs `wasi:cli/run` once with arguments, `--env`,
 * stdin, streamed stdout, and the guest's status as the exit code; over the lattice a started command's `run` gets
 * a fresh instance per call. The command is built here from JS with componentize-qjs (WASI 0.2.12 WIT from jco).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cp, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { componentize } from "componentize-qjs";
import { invokeJson } from "../src/invocation/index.ts";
import { fixture, needsFixtures, startRuntime, type RuntimeEnv } from "./support/components.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const WASI = path.join(ROOT, "node_modules", "@bytecodealliance", "jco", "lib", "wit", "builtin", "0.2.12");

const WIT = `package test:cmd@0.1.0;

world cmd {
  import wasi:cli/environment@0.2.12;
  import wasi:cli/stdin@0.2.12;
  import wasi:cli/stdout@0.2.12;
  export wasi:cli/run@0.2.12;
}
`;
// prints what it was given; "fail" as an argument makes run return err; a second run in the same instance fails too
const JS = `
import environment from "wasi:cli/environment@0.2.12";
import stdin from "wasi:cli/stdin@0.2.12";
import stdout from "wasi:cli/stdout@0.2.12";
const bytes = (s) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
let runs = 0;
export const run = {
  run() {
    runs++;
    const args = environment.getArguments();
    const env = environment.getEnvironment().map(([k, v]) => k + "=" + v).join(";");
    let input = "";
    try { input = String.fromCharCode(...stdin.getStdin().blockingRead(1024)); } catch (e) { input = ""; }
    const out = stdout.getStdout();
    out.blockingWriteAndFlush(bytes("args=" + args.join(",") + "\\n"));
    out.blockingWriteAndFlush(bytes("env=" + env + " stdin=" + input + " runs=" + runs + "\\n"));
    if (args.includes("fail")) throw "asked to fail";
    if (runs > 1) throw "instance reused";
  },
};
`;

function trellis(args: string[], stdin = ""): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, "bin", "trellis.mjs"), ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("close", (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

describe("command components", () => {
  let dir: string;
  let wasm: string;
  let env: RuntimeEnv | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "trellis-cmd-"));
    const witDir = path.join(dir, "wit");
    for (const dep of ["wasi-cli", "wasi-io", "wasi-clocks", "wasi-filesystem", "wasi-random", "wasi-sockets"]) {
      await cp(path.join(WASI, dep), path.join(witDir, "deps", dep), { recursive: true });
    }
    await writeFile(path.join(witDir, "world.wit"), WIT);
    const { component } = await componentize({ witPath: witDir, jsSource: JS, sync: true, optSize: true });
    wasm = path.join(dir, "cmd.wasm");
    await writeFile(wasm, component);
  });
  after(async () => {
    await env?.close();
  });

  test("trellis run: args after --, --env, stdin, stdout, exit status", async () => {
    const cache = ["--cache-dir", path.join(dir, "cache")];
    let r = await trellis(["run", ...cache, "--env", "GREETING=hi", wasm, "--", "hello", "world"], "from stdin");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "args=cmd.wasm,hello,world\nenv=GREETING=hi stdin=from stdin runs=1\n");
    r = await trellis(["run", ...cache, wasm, "--", "fail"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^args=cmd\.wasm,fail\n/);
  });

  test("trellis run refuses a component that is not a command", { skip: needsFixtures("adder.wasm") }, async () => {
    const r = await trellis(["run", "--cache-dir", path.join(dir, "cache"), fixture("adder.wasm")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not a command component: it does not export wasi:cli\/run/);
  });

  test("over the lattice, every run gets a fresh instance", async () => {
    env = await startRuntime();
    await env.runtime.start(wasm, "cmd", { count: 1 });
    const run = () => invokeJson(env!.nc, { lattice: env!.lattice, targetId: "cmd", iface: "wasi:cli/run", fn: "run", timeoutMs: 10_000 }, []);
    for (let i = 0; i < 3; i++) assert.deepEqual(await run(), { tag: "ok" }, `run ${i + 1} in a fresh instance`);
  });
});
