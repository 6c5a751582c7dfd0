#!/usr/bin/env node
// The `trellis` command. Trellis runs on Node >= 24 (docs/adr/0001-node-floor.md); the project installs Node 24 from the
// npm registry (the `node` package), so when this file is started by an older Node it re-runs itself on that one.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "..", "node_modules", "node", "bin", "node"), join(here, "..", "..", "node", "bin", "node")];
  const node24 = candidates.find((p) => existsSync(p));
  if (!node24) {
    process.stderr.write(`trellis needs Node.js >= 24 (this is ${process.version}); run \`npm ci\` in the trellis folder to install it\n`);
    process.exit(1);
  }
  const r = spawnSync(node24, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
await import("../src/cli/main.ts");
