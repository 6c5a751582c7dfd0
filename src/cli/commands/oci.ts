/**
 * `trellis push FILE REF`: publishes a component (a `.wasm` component) or a capability provider (an executable, or a
 * folder with one executable per platform named `{arch}-{os}` or `{arch}-{os}.bin`) to an OCI registry, laid out as
 * wasmCloud 1.x publishes them (src/oci/artifacts.ts). And the OCI flags shared with `trellis up`.
 * @module
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError } from "../../core/errors.ts";
import { classifyWasm, readComponentTypes } from "../../component/component-types.ts";
import { compileOciOptions, hostTarget, OciRegistry, parseMirrors, pushComponent, pushProvider, type OciOptions } from "../../oci/index.ts";
import { type CliContext, parsePairs } from "../context.ts";
import type { Env } from "../env.ts";

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Environment twins of the OCI flags (wasmCloud 1.x's `WASMCLOUD_OCI_*` are read as fall-backs). */
export const OCI_ENV = {
  user: ["TRELLIS_OCI_USER", "WASMCLOUD_OCI_REGISTRY_USER"],
  password: ["TRELLIS_OCI_PASSWORD", "WASMCLOUD_OCI_REGISTRY_PASSWORD"],
  allowLatest: ["TRELLIS_OCI_ALLOW_LATEST", "WASMCLOUD_OCI_ALLOW_LATEST"],
  allowedInsecure: ["TRELLIS_OCI_ALLOWED_INSECURE", "WASMCLOUD_OCI_ALLOWED_INSECURE"],
  mirror: ["TRELLIS_OCI_MIRROR"],
  builtinAliases: ["TRELLIS_OCI_BUILTIN_ALIASES"],
  dockerConfig: ["DOCKER_CONFIG"],
} as const;

/** The OCI flags as commander parses them. */
export interface OciFlags {
  ociUser?: string;
  ociPassword?: string;
  allowLatest?: boolean;
  ociAllowedInsecure?: string[];
  ociMirror?: string[];
  builtinAliases?: boolean;
}

/** Adds the OCI flags to a command (`trellis up`, `trellis push`). */
export function addOciFlags(cmd: Command): Command {
  return cmd
    .option("--oci-user <user>", `registry user (${OCI_ENV.user.join(", ")})`)
    .option("--oci-password <password>", `registry password (${OCI_ENV.password.join(", ")})`)
    .option("--allow-latest", `accept :latest images (${OCI_ENV.allowLatest.join(", ")})`)
    .option("--oci-allowed-insecure <host>", `registry reached over plain HTTP; repeatable (${OCI_ENV.allowedInsecure[0]}, comma-separated)`, collect)
    .option("--oci-mirror <from=to>", `fetch FROM's images from TO, e.g. ghcr.io=127.0.0.1:5000; repeatable (${OCI_ENV.mirror[0]})`, collect);
}

function firstEnv(env: Env, names: readonly string[]): string | undefined {
  for (const n of names) if (env[n] !== undefined && env[n] !== "") return env[n];
  return undefined;
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v);

/**
 * OCI options from flags and their environment twins (flags win).
 * @throws InvalidArgumentError for a malformed `--oci-mirror`.
 */
export function ociOptionsFrom<C extends string | undefined>(flags: OciFlags, env: Env, cacheDir: C): Omit<OciOptions, "cacheDir"> & { cacheDir: C } {
  const list = (v: string | undefined) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : []);
  const user = flags.ociUser ?? firstEnv(env, OCI_ENV.user);
  const password = flags.ociPassword ?? firstEnv(env, OCI_ENV.password);
  const dockerDir = firstEnv(env, OCI_ENV.dockerConfig);
  const aliases = firstEnv(env, OCI_ENV.builtinAliases);
  return {
    cacheDir,
    allowLatest: flags.allowLatest ?? truthy(firstEnv(env, OCI_ENV.allowLatest)),
    insecureHosts: flags.ociAllowedInsecure ?? list(firstEnv(env, OCI_ENV.allowedInsecure)),
    mirrors: parseMirrors(flags.ociMirror ?? list(firstEnv(env, OCI_ENV.mirror))),
    ...(user === undefined ? {} : { user }),
    ...(password === undefined ? {} : { password }),
    dockerConfigPath: path.join(dockerDir ?? path.join(homedir(), ".docker"), "config.json"),
    builtinAliases: flags.builtinAliases ?? (aliases === undefined ? true : truthy(aliases)),
  };
}

const TARGET_RE = /^[a-z0-9_]+-[a-z0-9_]+$/;

/** Registers `trellis push`. */
export function registerOciCommands(program: Command, ctx: CliContext): void {
  addOciFlags(
    program
      .command("push")
      .description("publish a component (.wasm) or a capability provider (an executable, or a folder of {arch}-{os} executables) to an OCI registry")
      .argument("<file>", "component file, provider executable, or provider folder")
      .argument("<ref>", "registry/repository:tag")
      .option("--provider", "treat FILE as a capability provider even if it looks like a component")
      .option("--target <arch-os>", `platform of a single provider executable (default ${hostTarget()})`)
      .option("--annotation <k=v>", "manifest annotation; repeatable", collect),
  ).action(
    ctx.action(async (file: string, ref: string, flags: OciFlags & { provider?: boolean; target?: string; annotation?: string[] }) => {
      const cacheDir = path.join(homedir(), ".cache", "trellis");
      const registry = new OciRegistry(compileOciOptions(ociOptionsFrom(flags, ctx.env, cacheDir)));
      const st = await stat(file).catch(() => undefined);
      if (!st) throw new InvalidArgumentError("file", `${file} does not exist`);
      let kind: "component" | "provider";
      let digest: string;
      if (st.isDirectory()) {
        const targets: Record<string, Uint8Array> = {};
        for (const name of await readdir(file)) {
          const t = name.replace(/\.bin$/, "");
          if (TARGET_RE.test(t)) targets[t] = await readFile(path.join(file, name));
        }
        if (Object.keys(targets).length === 0) throw new InvalidArgumentError("file", `${file} holds no {arch}-{os} executable (e.g. x86_64-linux)`);
        kind = "provider";
        digest = await pushProvider(registry, ref, targets);
      } else {
        const bytes = await readFile(file);
        if (!flags.provider && classifyWasm(bytes) === "component") {
          const types = readComponentTypes(bytes);
          kind = "component";
          digest = await pushComponent(registry, ref, bytes, { imports: Object.keys(types.imports), exports: Object.keys(types.exports) }, flags.annotation ? parsePairs("--annotation", flags.annotation) : undefined);
        } else {
          const target = flags.target ?? hostTarget();
          if (!TARGET_RE.test(target)) throw new InvalidArgumentError("target", `--target must be {arch}-{os} such as x86_64-linux, got ${JSON.stringify(target)}`);
          kind = "provider";
          digest = await pushProvider(registry, ref, { [target]: bytes });
        }
      }
      return { text: `pushed ${kind} ${ref}@${digest}`, json: { success: true, kind, ref, digest } };
    }),
  );
}
