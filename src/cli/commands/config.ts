/**
 * `trellis config put|get|del`.
 * @module
 */
import type { Command } from "commander";
import { type CliContext, parsePairs } from "../context.ts";

/** Registers the `config` commands. */
export function registerConfigCommands(program: Command, ctx: CliContext): void {
  const config = program.command("config").description("named config (string → string maps)");
  config
    .command("put <name> <pairs...>")
    .alias("create")
    .description("put named config from KEY=VALUE pairs, replacing what was there (config.put)")
    .action(
      ctx.action(async (name: string, pairs: string[]) => {
        const message = await (await ctx.client()).putConfig(name, parsePairs("config", pairs));
        return { text: message, json: { success: true, message } };
      }),
    );
  config
    .command("get <name>")
    .description("show named config (config.get)")
    .action(
      ctx.action(async (name: string) => {
        const values = await (await ctx.client()).getConfig(name);
        const text = values === undefined ? `config ${name} not found` : Object.entries(values).map(([k, v]) => `${k}=${v}`).join("\n");
        return { text, json: values ?? null };
      }),
    );
  config
    .command("del <name>")
    .alias("delete")
    .description("delete named config (config.del)")
    .action(
      ctx.action(async (name: string) => {
        const message = await (await ctx.client()).deleteConfig(name);
        return { text: message, json: { success: true, message } };
      }),
    );
}
