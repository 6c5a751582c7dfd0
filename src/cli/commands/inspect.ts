/**
 * `trellis inspect FILE|ID` (issue 11 B): what a component imports and exports, as WIT text or (`--output json`) as
 * a {@link WorldDescription}. A FILE is read locally (its binary's type section); otherwise ID is a component or
 * provider id running in the lattice, asked over NATS through the introspection interface
 * `trellis:runtime/introspect` (`world`, docs/protocol.md §2).
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { classifyWasm, readComponentTypes } from "../../component/component-types.ts";
import { ErrorCode, InvalidArgumentError, TrellisError } from "../../core/errors.ts";
import { invokeJson } from "../../../packages/wire/src/invocation/client.ts";
import { INTROSPECT_FN, INTROSPECT_IFACE, INTROSPECT_WORLD_FN, type WorldDescription } from "../../../packages/wire/src/invocation/server.ts";
import type { InterfaceType } from "../../../packages/wire/src/invocation/types.ts";
import { formatWorld } from "../../../packages/wire/src/invocation/wit-print.ts";
import type { CliContext } from "../context.ts";

/**
 * The world of a component file.
 * @throws InvalidArgumentError when the file is not a component (a core module, or not WebAssembly).
 */
export async function inspectFile(file: string): Promise<WorldDescription> {
  const bytes = new Uint8Array(await readFile(file));
  const kind = classifyWasm(bytes);
  if (kind !== "component") {
    throw new InvalidArgumentError("FILE", `${file} is ${kind === "module" ? "a core WebAssembly module, not a component" : "not a WebAssembly component"}`);
  }
  const { imports, exports, importedFunctions, exportedFunctions } = readComponentTypes(bytes);
  return { imports, exports, importedFunctions, exportedFunctions };
}

/**
 * The world of a running component or provider, asked over the lattice (`trellis:runtime/introspect.world`; a
 * target that only answers `describe` gives its exports).
 * @throws TrellisError NO_RESPONDERS when nothing serves `id`, TIMEOUT after `timeoutMs`.
 */
export async function inspectRunning(nc: Parameters<typeof invokeJson>[0], lattice: string, id: string, timeoutMs: number): Promise<WorldDescription> {
  const call = { lattice, targetId: id, iface: INTROSPECT_IFACE, sourceId: "trellis-cli", timeoutMs };
  try {
    return JSON.parse((await invokeJson(nc, { ...call, fn: INTROSPECT_WORLD_FN }, [])) as string) as WorldDescription;
  } catch (err) {
    if (!(err instanceof TrellisError) || err.code !== ErrorCode.NotFound) throw err;
    const exports = JSON.parse((await invokeJson(nc, { ...call, fn: INTROSPECT_FN }, [])) as string) as InterfaceType[];
    return { imports: {}, exports: Object.fromEntries(exports.map((i) => [i.name, i])), importedFunctions: {}, exportedFunctions: {} };
  }
}

/** Registers `inspect`. */
export function registerInspectCommand(program: Command, ctx: CliContext): void {
  program
    .command("inspect <file-or-id>")
    .description("show a component's world (imports and exports, with types) as WIT: a local .wasm file, or the id of a running component or provider")
    .action(
      ctx.action(async (what: string) => {
        const isFile = existsSync(what) && statSync(what).isFile();
        let world: WorldDescription;
        if (isFile) world = await inspectFile(what);
        else if (/[/\\]|\.wasm$/.test(what)) throw new InvalidArgumentError("FILE", `no such file: ${what}`);
        else {
          const client = await ctx.client();
          world = await inspectRunning(client.nc, client.lattice, what, Math.max(client.timeoutMs, 5000));
        }
        const name = isFile ? path.basename(what, ".wasm") : what;
        return { text: formatWorld(name, world), json: world };
      }),
    );
}
