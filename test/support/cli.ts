/**
 * CLI tests run the real command modules in a real process: a throwaway entry script mounts the chosen modules of
 * `src/cli/commands/` on a root command built like src/cli/main.ts (global `--lattice`, `--nats-url`, `--timeout-ms`,
 * `--output`), so a test pays only for the modules it exercises.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the working directory of every CLI process. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** What one CLI run gave: its exit code (1 when it failed without one), stdout and stderr. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Writes `entry.ts` into `dir`, mounting each `[file, registerFunction]` of `src/cli/commands/` in order, e.g.
 * `[["app.ts", "registerAppCommands"]]`.
 * @returns the entry script's path.
 */
export async function writeCliEntry(dir: string, modules: [file: string, register: string][]): Promise<string> {
  const source = `
import { Command } from ${JSON.stringify(import.meta.resolve("commander"))};
import { createContext } from ${JSON.stringify(path.join(ROOT, "src/cli/context.ts"))};
${modules.map(([file, fn]) => `import { ${fn} } from ${JSON.stringify(path.join(ROOT, "src/cli/commands", file))};`).join("\n")}
const program = new Command("trellis")
  .option("--lattice <name>").option("--nats-url <url>").option("--timeout-ms <ms>").option("--output <format>")
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
const ctx = createContext(program, {});
${modules.map(([, fn]) => `${fn}(program, ctx);`).join("\n")}
try { await program.parseAsync(process.argv); } finally { await ctx.close(); }
`;
  const entry = path.join(dir, "entry.ts");
  await writeFile(entry, source);
  return entry;
}

/**
 * Runs `entry --nats-url URL --lattice L ...args` with this Node, in {@link ROOT}. Never rejects.
 * @param timeoutMs the process is killed after this long. @default 60000
 */
export function runCliEntry(entry: string, target: { natsUrl: string; lattice: string }, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [entry, "--nats-url", target.natsUrl, "--lattice", target.lattice, ...args], { cwd: ROOT, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
