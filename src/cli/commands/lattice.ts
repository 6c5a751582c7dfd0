/**
 * `trellis get hosts`, `trellis get inventory [HOST]`, `trellis host stop HOST`, `trellis label put|del HOST …`, and
 * their wash 1.x spellings: `get inventories`, `stop host HOST`, `label HOST k=v[,k=v] [--delete]` (alias `tag`)
 * (docs/from-wasmcloud.md).
 * @module
 */
import type { Command } from "commander";
import type { HostInventory } from "../../core/host.ts";
import type { CtlClient } from "../../control/client.ts";
import { InvalidArgumentError } from "../../core/errors.ts";
import { type CliContext, parsePairs, parsePositiveInt } from "../context.ts";

function inventoryText(inv: HostInventory): string {
  const lines = [`host ${inv.host_id} (${inv.friendly_name}), up ${inv.uptime_human}, version ${inv.version}`];
  lines.push(`  labels: ${Object.entries(inv.labels).map(([k, v]) => `${k}=${v}`).join(", ")}`);
  lines.push(`  components (${inv.components.length}):`);
  for (const c of inv.components) {
    lines.push(`    ${c.id}  ${c.image_ref}  max_instances=${c.max_instances}${c.status ? `  ${c.status}` : ""}${c.error ? ` (${c.error})` : ""}`);
  }
  lines.push(`  providers (${inv.providers.length}):`);
  for (const p of inv.providers) lines.push(`    ${p.id}  ${p.image_ref ?? ""}${p.status ? `  ${p.status}` : ""}`);
  return lines.join("\n");
}

/** What `get hosts` / `get inventory` print when no host answers: where it asked, so a wrong lattice or URL shows. */
function noHosts(ctx: CliContext): string {
  const g = ctx.globals();
  return `no hosts answered in lattice ${g.lattice} at ${g.natsUrl.replace(/\/\/[^@/]*@/, "//")}`;
}

/** Stops a host (host.stop), bounding its shutdown by `timeoutMs` when given. */
async function stopHost(ctx: CliContext, host: string, timeout: string | undefined, flag: string) {
  const t = timeout === undefined ? undefined : parsePositiveInt(flag, timeout);
  const message = await (await ctx.client()).stopHost(host, t);
  return { text: message, json: { success: true, message } };
}

/** Puts `KEY=VALUE` labels on a host, one label.put each. */
async function putLabels(client: CtlClient, host: string, pairs: readonly string[]) {
  const messages: string[] = [];
  for (const [k, v] of Object.entries(parsePairs("label", pairs))) messages.push(await client.putLabel(host, k, v));
  return { text: messages.join("\n"), json: { success: true, messages } };
}

/** Deletes labels (`KEY` or `KEY=VALUE`, the value ignored) from a host, one label.del each. */
async function deleteLabels(client: CtlClient, host: string, keys: readonly string[]) {
  const messages: string[] = [];
  for (const k of keys) messages.push(await client.deleteLabel(host, k.split("=")[0] ?? k));
  return { text: messages.join("\n"), json: { success: true, messages } };
}

/** Registers `get`, `host` and `label` commands, and `stop host`. */
export function registerLatticeCommands(program: Command, ctx: CliContext): void {
  const get = program.command("get").description("query the lattice");
  get
    .command("hosts")
    .description("list the hosts of the lattice (host.ping)")
    .action(
      ctx.action(async () => {
        const hosts = await (await ctx.client()).getHosts();
        const text = hosts.length
          ? hosts.map((h) => `${h.id}  ${h.friendly_name}  up ${h.uptime_human}  ${Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(",")}`).join("\n")
          : noHosts(ctx);
        return { text, json: hosts };
      }),
    );
  get
    .command("inventory [host]")
    .alias("inventories")
    .description("what a host runs (host.get); every host when HOST is left out")
    .action(
      ctx.action(async (host?: string) => {
        const client = await ctx.client();
        const ids = host ? [host] : (await client.getHosts()).map((h) => h.id);
        const invs = await Promise.all(ids.map((id) => client.getInventory(id)));
        return { text: invs.length ? invs.map(inventoryText).join("\n\n") : noHosts(ctx), json: host ? invs[0] : invs };
      }),
    );

  const hostCmd = program.command("host").description("act on one host");
  hostCmd
    .command("stop <host>")
    .description("stop a host (host.stop)")
    .option("--host-timeout-ms <ms>", "bound on the host's shutdown, in milliseconds")
    .action(ctx.action(async (host: string, o: { hostTimeoutMs?: string }) => stopHost(ctx, host, o.hostTimeoutMs, "--host-timeout-ms")));

  const stop = program.commands.find((c) => c.name() === "stop") ?? program.command("stop").description("stop a workload");
  stop
    .command("host <host>")
    .description("stop a host (host.stop); wash's spelling of `host stop`")
    .option("--host-timeout <ms>", "bound on the host's shutdown, in milliseconds")
    .option("--host-timeout-ms <ms>", "same as --host-timeout")
    .action(
      ctx.action(async (host: string, o: { hostTimeout?: string; hostTimeoutMs?: string }) =>
        stopHost(ctx, host, o.hostTimeout ?? o.hostTimeoutMs, o.hostTimeout === undefined ? "--host-timeout-ms" : "--host-timeout"),
      ),
    );

  const label = program
    .command("label")
    .alias("tag")
    .description("host labels: `label put|del HOST …`, or wash's `label HOST KEY=VALUE[,KEY=VALUE…] [--delete]`")
    .argument("[host]", "host id (wash form)")
    .argument("[labels...]", "KEY=VALUE labels, comma-separated or one per argument; with --delete, KEY or KEY=VALUE")
    .option("--delete", "delete the labels instead of setting them (label.del)")
    .action(
      ctx.action(async (host: string | undefined, labels: string[], o: { delete?: boolean }) => {
        if (host === undefined || labels.length === 0) throw new InvalidArgumentError("label", "usage: label HOST KEY=VALUE[,KEY=VALUE…] [--delete], or label put|del HOST …");
        const items = labels.flatMap((l) => l.split(",")).filter((l) => l !== "");
        const client = await ctx.client();
        return o.delete ? deleteLabels(client, host, items) : putLabels(client, host, items);
      }),
    );
  label
    .command("put <host> <pairs...>")
    .description("set labels KEY=VALUE on a host (label.put)")
    .action(ctx.action(async (host: string, pairs: string[]) => putLabels(await ctx.client(), host, pairs)));
  label
    .command("del <host> <keys...>")
    .alias("delete")
    .description("delete labels from a host (label.del)")
    .action(ctx.action(async (host: string, keys: string[]) => deleteLabels(await ctx.client(), host, keys)));
}
