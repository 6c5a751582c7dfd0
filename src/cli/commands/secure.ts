/**
 * `trellis lattice secure init DIR`: the secure set-up in one command (docs/security.md) — a NATS account for the
 * lattice (`--lattice`) with an nkey user per role, written as nats-server configuration and seed files.
 * @module
 */
import type { Command } from "commander";
import { initSecureLattice } from "../../lattice/secure-config.ts";
import type { CliContext } from "../context.ts";

/** Registers `lattice secure init`. */
export function registerSecureCommands(program: Command, ctx: CliContext): void {
  const lattice = program.command("lattice").description("lattice-wide set-up");
  const secure = lattice.command("secure").description("NATS accounts and credentials for a lattice");
  secure
    .command("init <dir>")
    .description(
      "write a nats-server account for the lattice (--lattice) with nkey users host, provider, reader and admin: " +
        "<lattice>.accounts.conf, nats-server.conf and <lattice>-<role>.nk seed files (mode 0600)",
    )
    .option("--listen <host:port>", "client listener of the written nats-server.conf (default 127.0.0.1:4222)")
    .option("--provider-id <id>", "also a provider user narrowed to this provider id: <lattice>-provider-<id>.nk (repeat)", (v: string, p: string[] = []) => [...p, v])
    .action(
      ctx.action(async (dir: string, o: { listen?: string; providerId?: string[] }) => {
        const g = ctx.globals();
        const files = await initSecureLattice(dir, g.lattice, { ...(o.listen ? { listen: o.listen } : {}), ...(o.providerId ? { providerIds: o.providerId } : {}) });
        const text = [
          `lattice ${g.lattice}: account written to ${files.accountFile}`,
          `  server config: ${files.serverConfigFile}   (nats-server -c ${files.serverConfigFile})`,
          ...Object.entries(files.nkeyFiles).map(([role, f]) => `  ${role.padEnd(8)} nkey ${files.publicKeys[role as keyof typeof files.publicKeys]}  seed ${f}`),
          ...Object.entries(files.providerNkeyFiles).map(([id, f]) => `  provider ${id} (narrowed)  seed ${f}`),
          "next:",
          `  trellis --lattice ${g.lattice} --nats-nkey ${files.nkeyFiles.host} up --nats-server-accounts ${files.accountFile}`,
          `  trellis --lattice ${g.lattice} --nats-nkey ${files.nkeyFiles.reader} get hosts`,
          "keep the .nk files secret; give each role's file only to what acts in that role",
        ].join("\n");
        return { text, json: { lattice: g.lattice, ...files } };
      }),
    );
}
