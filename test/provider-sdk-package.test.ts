/**
 * The provider SDK as a package (issue 14 item 6, ADR 0020): exactly what packages/provider-sdk/README.md tells a user
 * outside this repository — `npm pack` the SDK, `npm install` the tarball into an empty folder, write a provider as a
 * JavaScript module that imports `@trellis/provider-sdk` by name, run it with the system Node (v20 here, not the
 * repository's Node 24) — and then the provider conformance suite (test/conformance) against that provider.
 *
 * The provider's code is the SDK example provider kv-memory (providers/kv-memory), transpiled to JavaScript with its
 * `trellis/provider-sdk` import turned into `@trellis/provider-sdk`, so that nothing of this repository but the
 * tarball is reachable from the folder the provider runs in.
 *
 * Every process is bounded in time and killed by its pid (its process group) when it overruns.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { runConformance } from "./conformance/suite.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SDK_DIR = path.join(ROOT, "packages", "provider-sdk");
/** The system Node the package is meant for (engines `>=20`), not the repository's own Node. */
const SYSTEM_NODE = "/usr/bin/node";
const NPM = "npm";

const skip = !existsSync(SYSTEM_NODE) ? `no system Node at ${SYSTEM_NODE}` : false;

/** Runs a command in its own process group; kills the group when it overruns `timeoutMs`. */
function run(cmd: string, args: string[], opts: { cwd: string; timeoutMs: number }): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // npm_config_* of an enclosing `npm test` would leak into these npm runs
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));
    const child = spawn(cmd, args, { cwd: opts.cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }, opts.timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${cmd} ${args.join(" ")} exited with ${code ?? signal}:\n${stderr.slice(-4000)}\n${stdout.slice(-2000)}`));
    });
  });
}

let work = "";
let tarball = "";
let app = "";

before(async () => {
  if (skip) return;
  // outside the repository: no node_modules or package.json of ours up the tree
  work = await mkdtemp(path.join(tmpdir(), "trellis-sdk-pkg-"));
  assert.ok(!work.startsWith(ROOT), "the install folder lies outside the repository");
});
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test("npm pack of packages/provider-sdk: compiled JavaScript and declarations, no TypeScript source", { skip, timeout: 180_000 }, async () => {
  const dest = path.join(work, "pack");
  await mkdir(dest);
  // prepack builds dist/ (tsc -p tsconfig.build.json)
  const { stdout } = await run(NPM, ["pack", "--json", "--pack-destination", dest], { cwd: SDK_DIR, timeoutMs: 150_000 });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
  assert.ok(info);
  tarball = path.join(dest, info.filename);
  const files = info.files.map((f) => f.path);
  assert.ok(files.includes("dist/provider-sdk/src/index.js") && files.includes("dist/provider-sdk/src/index.d.ts"), files.join("\n"));
  assert.ok(files.includes("dist/wire/src/invocation/client.js"), "the wire code the SDK imports ships compiled in the same tarball");
  const source = files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
  assert.deepEqual(source, [], "no TypeScript source in the tarball");
  const outside = files.filter((f) => !f.startsWith("dist/") && f !== "package.json" && f !== "README.md");
  assert.deepEqual(outside, []);
});

test("the tarball installs into an empty folder outside the repository", { skip, timeout: 180_000 }, async () => {
  assert.ok(tarball, "packed by the previous test");
  app = path.join(work, "my-provider");
  await mkdir(app);
  await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "my-provider", private: true, type: "module" }, null, 2));
  await run(NPM, ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], { cwd: app, timeoutMs: 150_000 });
  const installed = JSON.parse(await readFile(path.join(app, "node_modules", "@trellis", "provider-sdk", "package.json"), "utf8")) as { engines: { node: string } };
  assert.equal(installed.engines.node, ">=20");
  const probe = `import { runProvider, t, TrellisError } from "@trellis/provider-sdk";\nconsole.log(typeof runProvider, typeof t.func, typeof TrellisError, process.version);\n`;
  await writeFile(path.join(app, "probe.mjs"), probe);
  const { stdout } = await run(SYSTEM_NODE, ["probe.mjs"], { cwd: app, timeoutMs: 30_000 });
  assert.match(stdout, /^function function function v\d+/);
});

test("a provider on the installed SDK, run by the system Node, passes the conformance suite", { skip, timeout: 300_000 }, async (t) => {
  assert.ok(app, "installed by the previous test");
  const { stdout: version } = await run(SYSTEM_NODE, ["--version"], { cwd: app, timeoutMs: 10_000 });
  t.diagnostic(`system Node ${version.trim()} (the repository runs on ${process.version})`);
  // the user's provider code: kv-memory, transpiled, importing the SDK by its package name
  const out = path.join(app, "kv-memory");
  await mkdir(out);
  const srcDir = path.join(ROOT, "providers", "kv-memory");
  for (const f of (await readdir(srcDir)).filter((n) => n.endsWith(".ts"))) {
    const code = (await readFile(path.join(srcDir, f), "utf8")).replaceAll('"trellis/provider-sdk"', '"@trellis/provider-sdk"');
    const js = ts.transpileModule(code, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023, rewriteRelativeImportExtensions: true, verbatimModuleSyntax: true },
      fileName: f,
    }).outputText;
    await writeFile(path.join(out, f.replace(/\.ts$/, ".js")), js);
  }
  const main = path.join(app, "provider.mjs");
  await writeFile(main, `import { runProvider } from "@trellis/provider-sdk";\nimport { kvMemory } from "./kv-memory/main.js";\nawait runProvider(kvMemory);\n`);
  const report = await runConformance([SYSTEM_NODE, main], { timeoutMs: 10_000 });
  const failed = report.results.filter((r) => !r.ok);
  assert.equal(report.failed, 0, JSON.stringify(failed, null, 2));
  assert.ok(report.passed >= 8, `${report.passed} cases passed`);
  t.diagnostic(`${report.passed} conformance cases passed: ${report.results.map((r) => r.name).join(", ")}`);
});
