#!/usr/bin/env node
/**
 * scripts/bootstrap.mjs — make a fresh checkout runnable, then run the tests or the demo.
 *
 * Plain JavaScript on purpose: it must run on the system Node (>= 20) before `node_modules`
 * exists. It is what `npm test` and `npm run demo` call.
 *
 *   node scripts/bootstrap.mjs test [node-test-flags…] [file|dir|substring…]
 *   node scripts/bootstrap.mjs demo [args…]
 *
 * Steps:
 *  1. `npm ci` (falling back to `npm install --no-save` if the lock file is rejected) if
 *     node_modules/.bin/node (the Node 24 binary from the `node` npm package) is
 *     missing or package-lock.json is newer than node_modules/.package-lock.json.
 *  2. Ensure `nats-server` (and for `test` also `redis-server`, `chromium`, …) is installed. Looked up on PATH,
 *     then in /usr/sbin, /usr/local/sbin, /usr/local/bin, /usr/bin (Debian puts nats-server in
 *     /usr/sbin, which is not on a normal user's PATH; such a dir is added to the child's PATH).
 *     Missing + root + Debian/Ubuntu: `apt-get update && apt-get install -y …`.
 *     Missing otherwise: print the command to run and exit 1. Nothing is started: tests launch
 *     their own throwaway servers (see src/testing).
 *  3. Run Node 24 (node_modules/.bin/node):
 *     test: `--test --test-concurrency=1 --test-timeout=120000` + test/**\/*.test.ts (sorted).
 *           Extra args starting with "-" are passed to node (e.g. --test-name-pattern=kv);
 *           other args select test files: an existing file, a directory (its *.test.ts files),
 *           or a substring of the test file paths.
 *     demo: src/demo/main.ts with all extra args.
 *     stdio is inherited, SIGINT/SIGTERM are forwarded, the exit code is passed on.
 *
 * Env: BOOTSTRAP_SKIP_NPM_CI=1 skips step 1, BOOTSTRAP_SKIP_SYSTEM_DEPS=1 skips step 2.
 */
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NODE24 = path.join(ROOT, "node_modules", ".bin", process.platform === "win32" ? "node.cmd" : "node");
const FALLBACK_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];
const TEST_FLAGS = ["--test", "--test-concurrency=1", "--test-timeout=120000"];

const say = (msg) => console.error(`[bootstrap] ${msg}`);
const die = (msg, code = 1) => {
  say(msg);
  process.exit(code);
};

function mtime(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

function isExecutable(file) {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Directory containing `name`: { dir, onPath } or undefined. */
function findTool(name, envPath) {
  for (const dir of (envPath ?? "").split(path.delimiter).filter(Boolean)) {
    if (isExecutable(path.join(dir, name))) return { dir, onPath: true };
  }
  for (const dir of FALLBACK_DIRS) {
    if (isExecutable(path.join(dir, name))) return { dir, onPath: false };
  }
  return undefined;
}

/** Run a command with inherited output; returns its exit status (non-zero if it could not start). */
function tryRun(cmd, args, extraEnv = {}) {
  say(`$ ${[cmd, ...args].join(" ")}`);
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, ...extraEnv },
    shell: process.platform === "win32",
  });
  if (r.error) say(`${cmd} failed: ${r.error.message}`);
  return r.error ? 127 : (r.status ?? 1);
}

function run(cmd, args, extraEnv = {}) {
  const status = tryRun(cmd, args, extraEnv);
  if (status !== 0) die(`${cmd} ${args[0] ?? ""} exited with ${status}`, status);
}

// ---- 1. npm dependencies ------------------------------------------------------------------------
function ensureNodeModules() {
  if (process.env.BOOTSTRAP_SKIP_NPM_CI === "1") return;
  const lock = mtime(path.join(ROOT, "package-lock.json"));
  const installed = mtime(path.join(ROOT, "node_modules", ".package-lock.json"));
  let reason;
  if (!existsSync(NODE24)) reason = "node_modules/.bin/node is missing";
  else if (lock !== undefined && (installed === undefined || lock > installed)) {
    reason = "package-lock.json is newer than node_modules";
  }
  if (reason === undefined) return;
  say(`installing npm dependencies with \`npm ci\` (${reason}) …`);
  if (tryRun("npm", ["ci"]) !== 0) {
    // No silent fall-back to `npm install`: an install that does not follow the committed lock file is not
    // reproducible. The lock lists every platform's optional packages (regenerate it from scratch with
    // `rm -rf node_modules package-lock.json && npm install --package-lock-only` when it must change).
    die("`npm ci` failed against the committed package-lock.json (see npm's message above)");
  }
  if (!existsSync(NODE24)) {
    die(
      `npm finished but ${path.relative(ROOT, NODE24)} is still missing: the install script of the ` +
        "`node` package did not run (if npm blocks install scripts: `npm install-scripts approve node`, then retry)",
    );
  }
}

// ---- 2. system packages -------------------------------------------------------------------------
/** Returns the PATH to give the child (with fallback dirs added where a tool was found). */
function ensureSystemTools(tools) {
  let envPath = process.env.PATH ?? "";
  if (process.env.BOOTSTRAP_SKIP_SYSTEM_DEPS === "1") return envPath;
  const locate = () => tools.map((t) => ({ ...t, found: findTool(t.bin, envPath) }));
  let state = locate();
  const missing = state.filter((t) => !t.found);
  if (missing.length > 0) {
    const pkgs = missing.map((t) => t.pkg);
    const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
    const hasApt = existsSync("/etc/debian_version") && findTool("apt-get", envPath) !== undefined;
    say(`missing: ${missing.map((t) => t.bin).join(", ")}`);
    if (!hasApt) {
      die(
        `install ${missing.map((t) => t.bin).join(" and ")} and put it on PATH ` +
          `(macOS: \`brew install ${pkgs.join(" ")}\`; nats-server releases: https://github.com/nats-io/nats-server/releases)`,
      );
    }
    if (!isRoot) {
      die(`run this, then try again:\n\n    sudo apt-get update && sudo apt-get install -y ${pkgs.join(" ")}\n`);
    }
    say(`installing Debian packages: ${pkgs.join(" ")}`);
    const aptEnv = { DEBIAN_FRONTEND: "noninteractive" };
    run("apt-get", ["update"], aptEnv);
    run("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], aptEnv);
    if (pkgs.includes("docker-registry") && findTool("systemctl", envPath) !== undefined) {
      // Debian's package starts a registry on :5000 (all interfaces); the tests start their own on loopback
      tryRun("systemctl", ["disable", "--now", "docker-registry"]);
    }
    state = locate();
    const still = state.filter((t) => !t.found);
    if (still.length > 0) die(`still missing after apt-get install: ${still.map((t) => t.bin).join(", ")}`);
  }
  for (const t of state) {
    if (t.found && !t.found.onPath) {
      say(`${t.bin} found in ${t.found.dir} (not on PATH); adding it to PATH for the child`);
      envPath = envPath === "" ? t.found.dir : `${envPath}${path.delimiter}${t.found.dir}`;
    }
  }
  return envPath;
}

// ---- 3. test file selection ---------------------------------------------------------------------
function walkTests(dir, out = []) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkTests(p, out);
    else if (e.isFile() && e.name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

function selectTests(args) {
  const flags = args.filter((a) => a.startsWith("-"));
  const selectors = args.filter((a) => !a.startsWith("-"));
  const rel = (p) => path.relative(ROOT, p).split(path.sep).join("/");
  const all = walkTests(path.join(ROOT, "test")).map(rel).sort();
  if (selectors.length === 0) return { flags, files: all };
  const chosen = new Set();
  for (const sel of selectors) {
    const abs = path.resolve(process.cwd(), sel);
    let matched;
    if (existsSync(abs) && statSync(abs).isFile()) matched = [rel(abs)];
    else if (existsSync(abs) && statSync(abs).isDirectory()) matched = walkTests(abs).map(rel).sort();
    else matched = all.filter((f) => f.includes(sel));
    if (matched.length === 0) die(`no test file matches ${JSON.stringify(sel)}`);
    for (const f of matched) chosen.add(f);
  }
  return { flags, files: [...chosen].sort() };
}

// ---- main ---------------------------------------------------------------------------------------
const [mode, ...rest] = process.argv.slice(2);
if (mode !== "test" && mode !== "demo") {
  die("usage: node scripts/bootstrap.mjs test|demo [args…]", 2);
}

ensureNodeModules();
const tools = [{ bin: "nats-server", pkg: "nats-server" }];
if (mode === "test") {
  tools.push({ bin: "redis-server", pkg: "redis-server" });
  // The second-language capability provider (providers/python-kv) runs on Python 3's standard library.
  tools.push({ bin: "python3", pkg: "python3" });
  // A real OCI registry for the OCI tests (src/testing/oci-registry.ts starts it on loopback with its own config),
  // and openssl for the TLS tests' certificates (src/testing/nats-secure.ts).
  tools.push({ bin: "docker-registry", pkg: "docker-registry" });
  tools.push({ bin: "openssl", pkg: "openssl" });
  // Headless Chromium for the dashboard's end-to-end test (test/ui.test.ts, driven by playwright-core).
  tools.push({ bin: "chromium", pkg: "chromium" });
}
const childPath = ensureSystemTools(tools);

let nodeArgs;
if (mode === "test") {
  const { flags, files } = selectTests(rest);
  if (files.length === 0) die("no test files found under test/ (pattern test/**/*.test.ts)");
  nodeArgs = [...TEST_FLAGS, ...flags, ...files];
} else {
  const main = path.join("src", "demo", "main.ts");
  if (!existsSync(path.join(ROOT, main))) die(`${main} does not exist`);
  nodeArgs = [main, ...rest];
}

const child = spawn(NODE24, nodeArgs, {
  cwd: ROOT,
  stdio: "inherit",
  env: { ...process.env, PATH: childPath },
});
const forward = (sig) => () => {
  if (child.exitCode === null && child.signalCode === null) child.kill(sig);
};
const onInt = forward("SIGINT");
const onTerm = forward("SIGTERM");
process.on("SIGINT", onInt);
process.on("SIGTERM", onTerm);
child.on("error", (err) => die(`cannot start ${NODE24}: ${err.message}`));
child.on("exit", (code, signal) => {
  process.off("SIGINT", onInt);
  process.off("SIGTERM", onTerm);
  process.exit(signal ? 128 + (os.constants.signals[signal] ?? 0) : (code ?? 1));
});
