/**
 * `trellis ui [--listen HOST:PORT] [--open]`: the web dashboard (docs/dashboard.md), a thin shell over
 * {@link startDashboard}. Uses the global `--lattice`, `--nats-url`, `--timeout-ms` and NATS credential options; prints
 * the URL (`--output json`: `{ "url": … }`) and serves until SIGINT / SIGTERM.
 * @module
 */
import { spawn } from "node:child_process";
import type { Command } from "commander";
import { createLogger } from "../../core/logger.ts";
import { DEFAULT_UI_LISTEN } from "../../ui/defaults.ts";
import type { CliContext } from "../context.ts";
import { ENV } from "../env.ts";


/** Opens `url` in the desktop's browser, best effort (xdg-open, open, start); failures are ignored. */
function openBrowser(url: string): void {
  const cmd = process.platform === "darwin" ? "open" : process.platform === "win32" ? "cmd" : "xdg-open";
  const args = process.platform === "win32" ? ["/c", "start", "", url] : [url];
  try {
    const child = spawn(cmd, args, { stdio: "ignore", detached: true });
    child.once("error", () => undefined);
    child.unref();
  } catch {
    // no browser here
  }
}

/** Registers `ui`. */
export function registerUiCommand(program: Command, ctx: CliContext): void {
  program
    .command("ui")
    .description("serve the web dashboard of the lattice (live link graph, hosts, components, providers, configs, apps, events)")
    .option("--listen <host:port>", `address to serve on (${ENV.uiListen}; default ${DEFAULT_UI_LISTEN}, loopback only)`)
    .option("--open", `open the dashboard in the desktop's browser (${ENV.uiOpen}=1)`)
    .action(
      ctx.action(async (o: { listen?: string; open?: boolean }) => {
        const g = ctx.globals();
        const listen = o.listen ?? ctx.env[ENV.uiListen] ?? DEFAULT_UI_LISTEN;
        const open = o.open === true || ["1", "true", "yes"].includes((ctx.env[ENV.uiOpen] ?? "").toLowerCase());
        const logger = createLogger({ level: "warn", json: false });
        // Loaded here, not at start: other commands do not pay for hono and the view model.
        const { startDashboard } = await import("../../ui/index.ts");
        const ui = await startDashboard({ listen, natsUrl: g.natsUrl, lattice: g.lattice, timeoutMs: g.timeoutMs, natsAuth: g.natsAuth, logger });
        ctx.print({ text: `Trellis dashboard for lattice ${g.lattice}: ${ui.url}  (Ctrl-C stops it)`, json: { url: ui.url, lattice: g.lattice } });
        if (open) openBrowser(ui.url);
        await new Promise<void>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
        await ui.close();
        return undefined;
      }),
    );
}
