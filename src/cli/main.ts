/**
 * The `trellis` command line: a thin shell over the library (`CtlClient`, `Host`). Every command takes the global
 * `--lattice`, `--nats-url`, `--timeout-ms`, `--output json|text` and the NATS credential / TLS options
 * (`--nats-creds`, `--nats-nkey`, `--nats-user`/`--nats-password`, `--nats-token`, `--nats-tls-ca`/`-cert`/`-key`,
 * docs/security.md); errors print one line and exit non-zero.
 * @module
 */
import { Command } from "commander";
import { TRELLIS_VERSION } from "../core/version.ts";
import { createContext } from "./context.ts";
import { ENV, NATS_AUTH_FLAGS } from "./env.ts";
import { registerAppCommands } from "./commands/app.ts";
import { registerComponentCommands } from "./commands/component.ts";
import { registerConfigCommands } from "./commands/config.ts";
import { registerLatticeCommands } from "./commands/lattice.ts";
import { registerLinkCommands } from "./commands/link.ts";
import { registerOciCommands } from "./commands/oci.ts";
import { registerProviderCommands } from "./commands/provider.ts";
import { registerUpCommands } from "./commands/up.ts";
import { registerSecureCommands } from "./commands/secure.ts";
import { registerClaimsCommands } from "./commands/claims.ts";
import { registerSecretCommands } from "./commands/secret.ts";
import { registerInspectCommand } from "./commands/inspect.ts";
import { registerRunCommand } from "./commands/run.ts";
import { registerUiCommand } from "./commands/ui.ts";
import { registerExplainCommand } from "./commands/explain.ts";

const env = Object.freeze({ ...process.env });
const program = new Command("trellis")
  .version(TRELLIS_VERSION)
  .description("Trellis: a lattice runtime for WebAssembly components")
  .option("-x, --lattice <name>", `lattice name (${ENV.lattice}, WASMCLOUD_LATTICE; default "default")`)
  .option("--nats-url <url>", `NATS server URL (${ENV.natsUrl}, or WASMCLOUD_CTL_HOST/WASMCLOUD_CTL_PORT; default nats://127.0.0.1:4222)`)
  .option("--ctl-host <host>", "wash's form of --nats-url: NATS host (port from --ctl-port, default 4222)")
  .option("--ctl-port <port>", "wash's form of --nats-url: NATS port (host from --ctl-host, default 127.0.0.1)")
  .option("-t, --timeout-ms <ms>", `control request timeout, ms (${ENV.timeoutMs}, WASMCLOUD_CTL_TIMEOUT_MS; default 2000)`)
  .option("-o, --output <format>", `text or json (${ENV.output}; default text)`);
for (const f of NATS_AUTH_FLAGS) program.option(f.flag, `${f.help} (${ENV[f.key]})`);
program
  .showHelpAfterError()
  .exitOverride((err) => {
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") process.exit(0);
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

const ctx = createContext(program, env);
registerUpCommands(program, ctx);
registerLatticeCommands(program, ctx);
registerLinkCommands(program, ctx);
registerConfigCommands(program, ctx);
registerComponentCommands(program, ctx);
registerProviderCommands(program, ctx);
registerAppCommands(program, ctx);
registerOciCommands(program, ctx);
registerSecureCommands(program, ctx);
registerClaimsCommands(program, ctx);
registerSecretCommands(program, ctx);
registerInspectCommand(program, ctx);
registerRunCommand(program, ctx);
registerUiCommand(program, ctx);
registerExplainCommand(program, ctx);

try {
  await program.parseAsync(process.argv);
} finally {
  await ctx.close();
}
