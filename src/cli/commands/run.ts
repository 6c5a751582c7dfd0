/**
 * `trellis run FILE [-- ARGS…]` (issue 11 J): runs a command component (`wasi:cli/run`) once, in a fresh instance in
 * this process: arguments after `--`, `--env K=V`, stdin (when not a terminal), stdout and stderr streamed as the
 * guest writes them, and the guest's exit status as the command's exit code (0 `ok`, 1 `err`, or the code passed to
 * `wasi:cli/exit`). No host or lattice is needed; imports other than the local ones (WASI, logging, config) fail.
 * @module
 */
import { readFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { runCommand } from "../../component/command.ts";
import { parsePreopens } from "../../core/preopens.ts";
import { type CliContext, parsePairs } from "../context.ts";
import { parsePreopenFlag } from "./component.ts";

const collect = (v: string, prev: string[] = []) => [...prev, v];

async function readStdin(): Promise<Uint8Array> {
  if (process.stdin.isTTY) return new Uint8Array(0);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

/** Registers `run`. */
export function registerRunCommand(program: Command, ctx: CliContext): void {
  program
    .command("run <file> [args...]")
    .description("run a command component (wasi:cli/run) once: trellis run app.wasm -- arg1 arg2; its exit status is this command's")
    .option("--env <pair>", "environment variable K=V the guest sees (repeat)", collect)
    .option("--dir <dir>", "give the guest a directory: HOST[:GUEST][:ro|rw] (read-only unless :rw) (repeat)", collect)
    .option("--cache-dir <dir>", "compile cache directory (default: ~/.cache/trellis)")
    .action(
      ctx.action(async (file: string, args: string[], o: { env?: string[]; dir?: string[]; cacheDir?: string }) => {
        const bytes = new Uint8Array(await readFile(file));
        const env = Object.entries(parsePairs("env", o.env ?? []));
        const preopens = parsePreopens((o.dir ?? []).map(parsePreopenFlag));
        const cacheDir = o.cacheDir ?? path.join(homedir() || tmpdir(), ".cache", "trellis");
        const write = (stream: NodeJS.WriteStream) => (b: Uint8Array) => void stream.write(b);
        const status = await runCommand(bytes, {
          args: [path.basename(file), ...args],
          env,
          stdin: await readStdin(),
          stdout: write(process.stdout),
          stderr: write(process.stderr),
          cacheDir,
          preopens,
        });
        process.exitCode = status;
        return undefined;
      }),
    );
}
