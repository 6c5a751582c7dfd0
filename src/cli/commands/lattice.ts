/**
 * `trellis get hosts`, `trellis get inventory [HOST]`, `trellis host stop HOST`, `trellis label put|del HOST …`.
 * @module
 */
import type { Command } from "commander";
import type { HostInventory } from "../../core/host.ts";
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

/** Registers `get`, `host` and `label` commands. */
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
          : "no hosts answered";
        return { text, json: hosts };
      }),
    );
  get
    .command("inventory [host]")
    .description("what a host runs (host.get); every host when HOST is left out")
    .action(
      ctx.action(async (host?: string) => {
        const client = await ctx.client();
        const ids = host ? [host] : (await client.getHosts()).map((h) => h.id);
        const invs = await Promise.all(ids.map((id) => client.getInventory(id)));
        return { text: invs.length ? invs.map(inventoryText).join("\n\n") : "no hosts answered", json: host ? invs[0] : invs };
      }),
    );

  const hostCmd = program.command("host").description("act on one host");
  hostCmd
    .command("stop <host>")
    .description("stop a host (host.stop)")
    .option("--host-timeout-ms <ms>", "bound on the host's shutdown, in milliseconds")
    .action(
      ctx.action(async (host: string, o: { hostTimeoutMs?: string }) => {
        const t = o.hostTimeoutMs === undefined ? undefined : parsePositiveInt("--host-timeout-ms", o.hostTimeoutMs);
        const message = await (await ctx.client()).stopHost(host, t);
        return { text: message, json: { success: true, message } };
      }),
    );

  const label = program.command("label").description("host labels");
  label
    .command("put <host> <pairs...>")
    .description("set labels KEY=VALUE on a host (label.put)")
    .action(
      ctx.action(async (host: string, pairs: string[]) => {
        const client = await ctx.client();
        const messages: string[] = [];
        for (const [k, v] of Object.entries(parsePairs("label", pairs))) messages.push(await client.putLabel(host, k, v));
        return { text: messages.join("\n"), json: { success: true, messages } };
      }),
    );
  label
    .command("del <host> <keys...>")
    .description("delete labels from a host (label.del)")
    .action(
      ctx.action(async (host: string, keys: string[]) => {
        const client = await ctx.client();
        const messages: string[] = [];
        for (const k of keys) messages.push(await client.deleteLabel(host, k.split("=")[0] ?? k));
        return { text: messages.join("\n"), json: { success: true, messages } };
      }),
    );
}
