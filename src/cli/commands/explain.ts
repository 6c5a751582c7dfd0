/**
 * `trellis explain` (ADR 0025): the path of one call, hop by hop: each hop's link (source, target, interface, link
 * name), the host and provider instance that served it, its time, and where an error arose. A thin shell over
 * src/tracing/explain.ts.
 *
 * - `trellis explain ID INTERFACE.FUNCTION [ARGS]`: makes the call (as `trellis call`) with an explained trace.
 * - `trellis explain --follow ID`: waits for the next call that reaches ID (e.g. an HTTP request) and explains it.
 * @module
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "../../core/errors.ts";
import { explainCall, followTarget, formatExplanation } from "../../tracing/explain.ts";
import type { CliContext } from "../context.ts";
import { parseCallArgs, splitCallTarget } from "./component.ts";
import { parsePositiveInt } from "../context.ts";

/** Registers `trellis explain`. */
export function registerExplainCommand(program: Command, ctx: CliContext): void {
  program
    .command("explain [id] [function] [args]")
    .description(
      "explain one call hop by hop (link, host, provider instance, time, error): trellis explain ID INTERFACE.FUNCTION [JSON args], " +
        "or trellis explain --follow ID for the next call that reaches ID",
    )
    .option("--follow <id>", "wait for the next call that reaches this component (or provider) and explain it")
    .option("--wait-ms <ms>", "with --follow: how long to wait for a call, ms (default 60000)")
    .option("--settle-ms <ms>", "quiet time after the last span before the path is complete, ms (default 300)")
    .action(
      ctx.action(async (id: string | undefined, target: string | undefined, args: string | undefined, flags: { follow?: string; waitMs?: string; settleMs?: string }) => {
        const client = await ctx.client();
        const settleMs = flags.settleMs === undefined ? undefined : parsePositiveInt("--settle-ms", flags.settleMs);
        let e;
        if (flags.follow !== undefined) {
          if (id !== undefined) throw new InvalidArgumentError("--follow", "give either --follow ID or ID INTERFACE.FUNCTION, not both");
          e = await followTarget(client.nc, {
            lattice: client.lattice,
            target: flags.follow,
            ...(flags.waitMs === undefined ? {} : { timeoutMs: parsePositiveInt("--wait-ms", flags.waitMs) }),
            ...(settleMs === undefined ? {} : { settleMs }),
            onArmed: () => {
              if (ctx.globals().output === "text") process.stderr.write(`waiting for the next call to ${flags.follow}…\n`);
            },
          });
        } else {
          if (id === undefined || target === undefined) throw new InvalidArgumentError("ID", "give ID INTERFACE.FUNCTION [ARGS] or --follow ID");
          const [iface, fn] = splitCallTarget(target);
          const parsed = parseCallArgs(args);
          e = await explainCall(client.nc, {
            lattice: client.lattice,
            targetId: id,
            iface,
            fn,
            args: parsed,
            timeoutMs: Math.max(client.timeoutMs, 10_000),
            ...(settleMs === undefined ? {} : { settleMs }),
          });
        }
        return { text: formatExplanation(e), json: e };
      }),
    );
}
