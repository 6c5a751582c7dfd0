/**
 * `trellis link put|del|get|replace`, and wash 1.x's spellings: `links`, `link query`, `link delete`, `get links`,
 * `-l` for `--link-name` (docs/from-wasmcloud.md).
 * @module
 */
import type { Command } from "commander";
import { describeLink } from "../../core/link.ts";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { CliContext } from "../context.ts";

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface LinkFlags {
  interface?: string[];
  linkName?: string;
  sourceConfig?: string[];
  targetConfig?: string[];
}

function linkFrom(source: string, target: string, namespace: string, pkg: string, o: LinkFlags) {
  if (!o.interface?.length) throw new InvalidArgumentError("interface", "at least one --interface is required");
  return {
    source_id: source,
    target,
    wit_namespace: namespace,
    wit_package: pkg,
    interfaces: o.interface,
    name: o.linkName ?? "default",
    source_config: o.sourceConfig ?? [],
    target_config: o.targetConfig ?? [],
  };
}

/** Registers the `link` commands. */
export function registerLinkCommands(program: Command, ctx: CliContext): void {
  const link = program.command("link").alias("links").description("links between sources and targets");
  link
    .command("put <source> <target> <namespace> <package>")
    .description("put a link (link.put); links are immutable: delete, then put, to change one")
    .option("--interface <name>", "WIT interface of the package (repeat)", collect)
    .option("-l, --link-name <name>", "link name", "default")
    .option("--source-config <name>", "named config for the source (repeat)", collect)
    .option("--target-config <name>", "named config for the target (repeat)", collect)
    .option("--strict", "refuse the link when its running source does not import, or its running target does not export, the interfaces (default: put it with a warning)")
    .action(
      ctx.action(async (source: string, target: string, ns: string, pkg: string, o: LinkFlags & { strict?: boolean }) => {
        const l = linkFrom(source, target, ns, pkg, o);
        const message = await (await ctx.client()).putLink(o.strict ? { ...l, strict: true } : l);
        return { text: message, json: { success: true, message, link: l, ...(/; warning: /.test(message) ? { warning: message.split("; warning: ")[1] } : {}) } };
      }),
    );
  link
    .command("del <source> <namespace> <package>")
    .alias("delete")
    .description("delete the links of (source, namespace, package, link name) (link.del); idempotent")
    .option("-l, --link-name <name>", "link name", "default")
    .option("--target <id>", "delete only the link to this target")
    .action(
      ctx.action(async (source: string, ns: string, pkg: string, o: { linkName: string; target?: string }) => {
        const key = { source_id: source, wit_namespace: ns, wit_package: pkg, name: o.linkName, ...(o.target ? { target: o.target } : {}) };
        const message = await (await ctx.client()).deleteLink(key);
        return { text: message, json: { success: true, message } };
      }),
    );
  const getLinks = ctx.action(async () => {
    const links = await (await ctx.client()).getLinks();
    const text = links.length
      ? links.map((l) => `${describeLink(l)}${l.source_config.length ? `  source_config=${l.source_config.join(",")}` : ""}${l.target_config.length ? `  target_config=${l.target_config.join(",")}` : ""}`).join("\n")
      : "no links";
    return { text, json: links };
  });
  link.command("get").alias("query").description("every link in the lattice (link.get)").action(getLinks);
  const get = program.commands.find((c) => c.name() === "get") ?? program.command("get").description("query the lattice");
  get.command("links").description("every link in the lattice (link.get); same as `link get`").action(getLinks);
  link
    .command("replace <source> <target> <namespace> <package>")
    .description("re-point a link: delete the links of (source, namespace, package, link name) and put this one, atomically (link.replace)")
    .option("--interface <name>", "WIT interface of the package (repeat)", collect)
    .option("-l, --link-name <name>", "link name", "default")
    .option("--source-config <name>", "named config for the source (repeat)", collect)
    .option("--target-config <name>", "named config for the target (repeat)", collect)
    .option("--old-target <id>", "delete only the link to this target")
    .action(
      ctx.action(async (source: string, target: string, ns: string, pkg: string, o: LinkFlags & { oldTarget?: string }) => {
        const l = linkFrom(source, target, ns, pkg, o);
        const del = { source_id: source, wit_namespace: ns, wit_package: pkg, name: l.name, ...(o.oldTarget ? { target: o.oldTarget } : {}) };
        const message = await (await ctx.client()).replaceLink(del, l);
        return { text: message, json: { success: true, message, link: l } };
      }),
    );
}
