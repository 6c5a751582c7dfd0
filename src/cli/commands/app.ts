/**
 * `trellis app deploy|undeploy|list|status`: applications in wadm's OAM format (reference §8), applied client-side
 * by src/app (docs/apps.md). Every command supports `--output json`; a failed or timed-out app exits with code 1.
 * `trellis app get|history|put|delete|validate` match `wash app …` on the version history kept by src/app/wadm
 * (docs/apps.md "wadm API"; ADR 0013).
 * @module
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { stringify as toYaml } from "yaml";
import { WadmApi } from "../../app/wadm/index.ts";
import { NotFoundError, TrellisError } from "../../core/errors.ts";
import {
  type AppStatusReport,
  type AppStatusResult,
  type DeployResult,
  DEFAULT_WAIT_TIMEOUT_MS,
  describeAction,
  manifestVersion,
  deployApp,
  getAppStatus,
  listApps,
  parseManifestText,
  readLease,
  undeployApp,
  watchApp,
} from "../../app/index.ts";
import { type CliContext, parsePositiveInt } from "../context.ts";

interface DeployFlags {
  wait?: boolean;
  waitTimeoutMs?: string;
  dryRun?: boolean;
  watch?: boolean;
}

async function readManifest(file: string): Promise<string> {
  try {
    if (file === "-") {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    }
    return await readFile(file, "utf8");
  } catch (err) {
    throw new NotFoundError(`cannot read manifest ${file}: ${(err as Error).message}`, { file });
  }
}

function statusLines(s: AppStatusReport): string[] {
  const lines = [`status: ${s.status}${s.message ? ` — ${s.message}` : ""}`];
  for (const p of s.problems) lines.push(`  problem: ${p}`);
  for (const f of s.failures) lines.push(`  failed: ${f.action}: ${f.message}`);
  for (const m of s.missing) lines.push(`  missing: ${m}`);
  for (const p of s.pending) lines.push(`  pending: ${p}`);
  return lines;
}

function deployText(r: DeployResult, warnings: readonly string[]): string {
  const by = r.outcome !== "planned" && r.applied_by === "reconciler" ? " (stored; the lattice's reconciler applies it)" : "";
  const head = `app ${r.app} (version ${r.version}): ${r.outcome}${r.outcome === "planned" ? ` (dry run, ${r.actions.length} request(s))` : by}`;
  const lines = [head];
  for (const a of r.actions) lines.push(`  ${describeAction(a)}  (${a.reason})`);
  for (const f of r.failures) lines.push(`  FAILED ${f.action}: ${f.message}`);
  if (r.outcome !== "planned") lines.push(...statusLines(r.status));
  if (r.timed_out) lines.push("  (timed out waiting; `trellis app status` shows what is left)");
  for (const w of warnings) lines.push(`warning: ${w}`);
  return lines.join("\n");
}

function failedOrLate(status: AppStatusReport, timedOut: boolean): boolean {
  return status.status === "failed" || timedOut;
}

function statusText(s: AppStatusResult): string {
  return [`app ${s.app} (version ${s.version}, deployed ${s.deployed_at})`, ...statusLines(s)].join("\n");
}

/** Registers the `app` commands on `program`. */
export function registerAppCommands(program: Command, ctx: CliContext): void {
  const app = program.command("app").description("applications in wadm's OAM manifest format (docs/apps.md)");

  app
    .command("deploy <file>")
    .description("deploy or update an app from a manifest (YAML or JSON; - reads stdin); idempotent")
    .option("--wait", "wait until the reconciler has the app deployed (or it failed)")
    .option("--wait-timeout-ms <ms>", `longest wait with --wait, ms (default ${DEFAULT_WAIT_TIMEOUT_MS})`)
    .option("--dry-run", "print the requests a deploy would send; send and store nothing")
    .option("--watch", "on a lattice without reconcilers: keep reconciling from here on host events until Ctrl-C")
    .action(
      ctx.action(async (file: string, o: DeployFlags) => {
        const waitTimeoutMs = o.waitTimeoutMs === undefined ? undefined : parsePositiveInt("--wait-timeout-ms", o.waitTimeoutMs);
        const { manifest, warnings } = parseManifestText(await readManifest(file), file);
        const client = await ctx.client();
        const r = await deployApp(client, manifest, { wait: o.wait === true, waitTimeoutMs, dryRun: o.dryRun === true });
        if (r.outcome !== "planned") await recordHistory(() => WadmApi.open(client).then((a) => a.recordDeployed(manifest, manifestVersion(manifest))));
        const bad = r.outcome !== "planned" && failedOrLate(r.status, r.timed_out);
        if (bad) process.exitCode = 1;
        const out = { text: deployText(r, warnings), json: { success: !bad, ...r, warnings } };
        if (!o.watch || o.dryRun) return out;
        if (r.applied_by === "reconciler") {
          // A reconciler holds the lease: it re-applies on every change; a client-side watch would only race it.
          return { ...out, text: `${out.text}\nnote: a reconciler runs on this lattice and keeps the app applied; --watch is not needed` };
        }
        ctx.print(out);
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        try {
          await watchApp(client, manifest.name, {
            signal: ac.signal,
            onResult: (w) => {
              if (w.outcome !== "unchanged") ctx.print({ text: deployText(w, []), json: { success: w.status.status !== "failed", ...w } });
            },
            onError: (err) => {
              const e = TrellisError.from(err);
              process.stderr.write(`error: ${e.message}\n`);
            },
          });
        } finally {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
        }
        return undefined;
      }),
    );

  app
    .command("undeploy <name>")
    .description("remove an app: its links, components, providers and inline config, then its record")
    .option("--wait", "wait until the app's components and providers are gone from the inventories")
    .option("--wait-timeout-ms <ms>", `longest wait with --wait, ms (default ${DEFAULT_WAIT_TIMEOUT_MS})`)
    .action(
      ctx.action(async (name: string, o: { wait?: boolean; waitTimeoutMs?: string }) => {
        const waitTimeoutMs = o.waitTimeoutMs === undefined ? undefined : parsePositiveInt("--wait-timeout-ms", o.waitTimeoutMs);
        const client = await ctx.client();
        const r = await undeployApp(client, name, { wait: o.wait === true, waitTimeoutMs });
        const requested = r.applied_by === "reconciler" && !o.wait;
        if (r.removed || requested) await recordHistory(() => WadmApi.open(client).then((a) => a.recordUndeployed(name)));
        const ok = (r.removed || requested) && !r.timed_out;
        if (!ok) process.exitCode = 1;
        const what = r.removed ? "undeployed" : requested ? "undeploy requested; the lattice's reconciler removes it" : r.timed_out ? "not removed in time" : "undeploy incomplete; run it again";
        const lines = [`app ${name}: ${what}`];
        for (const a of r.actions) lines.push(`  ${describeAction(a)}`);
        for (const f of r.failures) lines.push(`  FAILED ${f.action}: ${f.message}`);
        if (r.timed_out) lines.push("  (timed out waiting for workloads to stop)");
        return { text: lines.join("\n"), json: { success: ok, ...r } };
      }),
    );

  app
    .command("list")
    .description("every app deployed on the lattice, with its status")
    .action(
      ctx.action(async () => {
        const apps = await listApps(await ctx.client());
        const rows = apps.map((a) => `${a.app.padEnd(24)} ${a.version.padEnd(20)} ${a.status.padEnd(12)} ${a.deployed_at}${a.message ? `  ${a.message}` : ""}`);
        const text = apps.length ? [`${"NAME".padEnd(24)} ${"VERSION".padEnd(20)} ${"STATUS".padEnd(12)} DEPLOYED`, ...rows].join("\n") : "no apps";
        return { text, json: apps };
      }),
    );

  app
    .command("status <name>")
    .description("deployed / reconciling (with what is missing) / failed (with why); exits 1 unless deployed")
    .action(
      ctx.action(async (name: string) => {
        const client = await ctx.client();
        const s = await getAppStatus(client, name);
        if (s.status !== "deployed") process.exitCode = 1;
        // Who keeps it applied (ADR 0012): the lease holder, or nobody.
        const lease = await readLease(client.nc, client.lattice);
        const who = lease
          ? `reconciler: host ${lease.holder} (term ${lease.term}, renewed ${lease.renewed_at})`
          : "reconciler: none on this lattice — nothing re-applies the app by itself (`trellis app deploy` does)";
        return { text: `${statusText(s)}\n${who}`, json: { ...s, reconciler: lease ?? null } };
      }),
    );

  registerVersionCommands(app, ctx);
}

/** Records a CLI deploy / undeploy in the version history; a failure there is a warning, not a failed command. */
async function recordHistory(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    process.stderr.write(`warning: the app's version history was not updated: ${TrellisError.from(err).message}\n`);
  }
}

/** A wadm reply as CLI output: its message (or `text`) for people, the reply with `success` for JSON. */
function replyOut(r: { result: string; message: string }, ok: boolean, text?: string) {
  if (!ok) process.exitCode = 1;
  return { text: text ?? r.message, json: { success: ok, ...r } };
}

/** `app get|history|put|delete|validate`, as `wash app …` (src/app/wadm). */
function registerVersionCommands(app: Command, ctx: CliContext): void {
  const api = async () => WadmApi.open(await ctx.client());

  app
    .command("get <name> [version]")
    .description("print an app's manifest (the current version, or VERSION); exits 1 when there is none")
    .action(
      ctx.action(async (name: string, version: string | undefined) => {
        const r = await (await api()).get(name, version);
        const ok = r.result === "success" && "manifest" in r && r.manifest !== undefined;
        return replyOut(r, ok, ok && "manifest" in r ? toYaml(r.manifest).trimEnd() : r.message);
      }),
    );

  app
    .command("history <name>")
    .description("every stored version of an app, oldest first, and which one is deployed")
    .action(
      ctx.action(async (name: string) => {
        const r = await (await api()).versions(name);
        const ok = r.result === "success";
        const rows = r.versions.map((v) => `${v.version.padEnd(28)} ${v.deployed ? "yes" : "no"}`);
        return replyOut(r, ok, ok ? [`${"VERSION".padEnd(28)} DEPLOYED`, ...rows].join("\n") : r.message);
      }),
    );

  app
    .command("put <file>")
    .description("store a new version of an app without deploying it (YAML or JSON; - reads stdin)")
    .action(
      ctx.action(async (file: string) => {
        const r = await (await api()).put(await readManifest(file));
        return replyOut(r, r.result !== "error");
      }),
    );

  app
    .command("delete <name> [version]")
    .alias("del")
    .description("delete one stored version, or the whole app (undeploying it); waits until the undeploy is applied")
    .action(
      ctx.action(async (name: string, version: string | undefined) => {
        const a = await api();
        const r = await a.del(name, version);
        await a.idle(name);
        return replyOut(r, r.result === "deleted");
      }),
    );

  app
    .command("validate <file>")
    .description("check a manifest as deploy and put do, without NATS; exits 1 with the path of the first bad field")
    .action(
      ctx.action(async (file: string) => {
        const { manifest, warnings } = parseManifestText(await readManifest(file), file);
        const version = manifestVersion(manifest);
        const text = [`${file}: valid (app ${manifest.name}, version ${version})`, ...warnings.map((w) => `warning: ${w}`)].join("\n");
        return { text, json: { success: true, valid: true, app: manifest.name, version, warnings } };
      }),
    );
}
