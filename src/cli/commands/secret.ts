/**
 * `trellis secret keygen|serve|put|get|del|list`: the operator's side of the first-party secrets backend
 * (docs/security.md, docs/adr/0017-secrets.md). A thin shell over src/secrets. The backend's key file (an xkey seed,
 * `SX…`) is what encrypts values at rest; `put`/`get`/`del`/`list` work on the bucket directly with that key, so no
 * secret crosses NATS in the clear. `put` also writes the reference `SECRET_{name}` that links and configs name.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { createLogger } from "../../core/logger.ts";
import { InvalidArgumentError, NotFoundError } from "../../core/errors.ts";
import { SecretsServer } from "../../secrets/server.ts";
import { SecretStore } from "../../secrets/store.ts";
import { DEFAULT_SECRETS_BACKEND, policyString, referenceToConfig, SECRET_PREFIX } from "../../secrets/types.ts";
import { newXKey, xkeyFromSeed, xkeySeed } from "../../secrets/xkey.ts";
import type { CliContext } from "../context.ts";
import { ENV } from "../env.ts";

const collect = (v: string, prev: string[] = []) => [...prev, v];
const DEFAULT_TOPIC = "wasmcloud.secrets";

function keyFile(flag: string | undefined, ctx: CliContext): string {
  const f = flag ?? ctx.env[ENV.secretsKeyFile];
  if (!f) throw new InvalidArgumentError("--key-file", `--key-file is required: the backend's key file (${ENV.secretsKeyFile}); make one with \`trellis secret keygen FILE\``);
  if (!existsSync(f)) throw new NotFoundError(`key file ${f} does not exist; make one with \`trellis secret keygen ${f}\``, { file: f });
  return f;
}

function loadKey(file: string) {
  return xkeyFromSeed(readFileSync(file, "utf8"));
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString("utf8").replace(/\r?\n$/, "");
}

/** Registers the `secret` commands. */
export function registerSecretCommands(program: Command, ctx: CliContext): void {
  const secret = program.command("secret").description("secrets of the first-party backend (sealed at rest, delivered sealed)");
  const backendOpt = (c: Command) => c.option("--backend <name>", `backend name (default ${DEFAULT_SECRETS_BACKEND})`).option("--key-file <file>", `the backend's key file (${ENV.secretsKeyFile})`);

  secret
    .command("keygen <file>")
    .description("write a new backend key (xkey seed) to FILE, readable only by you; keep it secret")
    .action(
      ctx.action(async (file: string) => {
        if (existsSync(file)) throw new InvalidArgumentError("file", `${file} exists; refusing to overwrite a key (values sealed with it would be lost)`);
        const kp = newXKey();
        await writeFile(file, `${xkeySeed(kp)}\n`, { mode: 0o600 });
        return { text: `backend key written to ${file} (public key ${kp.getPublicKey()})`, json: { file, public_key: kp.getPublicKey() } };
      }),
    );

  backendOpt(
    secret
      .command("serve")
      .description("run the backend: answer hosts' sealed requests on {topic}.v1alpha1.{backend}.server_xkey and .get until Ctrl-C")
      .option("--topic <prefix>", `subject prefix (${ENV.secretsTopic}; default ${DEFAULT_TOPIC})`)
      .option("--allowed-issuer <key>", "only entities signed by this issuer get secrets (repeat)", collect),
  ).action(
    ctx.action(async (f: { backend?: string; keyFile?: string; topic?: string; allowedIssuer?: string[] }) => {
      const client = await ctx.client();
      const topic = f.topic ?? ctx.env[ENV.secretsTopic] ?? ctx.env.WASMCLOUD_SECRETS_TOPIC ?? DEFAULT_TOPIC;
      const server = await SecretsServer.start({
        nc: client.nc,
        topic,
        backend: f.backend ?? DEFAULT_SECRETS_BACKEND,
        xkey: loadKey(keyFile(f.keyFile, ctx)),
        allowedIssuers: f.allowedIssuer ?? [],
        logger: createLogger({ level: "info", json: ctx.globals().output === "json" }),
      });
      process.stderr.write(`secrets backend ${f.backend ?? DEFAULT_SECRETS_BACKEND} serving on ${topic} (xkey ${server.publicXKey}); Ctrl-C stops it\n`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await server.stop();
      return undefined;
    }),
  );

  backendOpt(
    secret
      .command("put <name> [value]")
      .description("store a secret (value from the argument or --stdin) and write the reference SECRET_<name> that links and configs name")
      .option("--stdin", "read the value from standard input (keeps it out of the process list)")
      .option("--key <key>", "backend key to store it under (default: the name)")
      .option("--allow <key>", "only entities with this issuer (A…) or subject (M…/V…) may fetch it (repeat)", collect),
  ).action(
    ctx.action(async (name: string, value: string | undefined, f: { backend?: string; keyFile?: string; stdin?: boolean; key?: string; allow?: string[] }) => {
      const backend = f.backend ?? DEFAULT_SECRETS_BACKEND;
      const v = f.stdin ? await readStdin() : value;
      if (v === undefined) throw new InvalidArgumentError("value", "give the value as an argument or with --stdin");
      const key = f.key ?? name;
      const client = await ctx.client();
      const store = await SecretStore.open(client.nc, backend, loadKey(keyFile(f.keyFile, ctx)));
      const version = await store.put(key, { string_secret: v, ...(f.allow?.length ? { allow: f.allow } : {}) });
      await client.putConfig(`${SECRET_PREFIX}${name}`, referenceToConfig({ name, backend, key, policy: policyString() }));
      return { text: `stored secret ${name} (key ${key}, version ${version}); reference ${SECRET_PREFIX}${name}`, json: { name, key, version, reference: `${SECRET_PREFIX}${name}` } };
    }),
  );

  backendOpt(secret.command("get <key>").description("show a stored secret's value (needs the key file)").option("--version <n>", "a given version")).action(
    ctx.action(async (key: string, f: { backend?: string; keyFile?: string; version?: string }) => {
      const client = await ctx.client();
      const store = await SecretStore.open(client.nc, f.backend ?? DEFAULT_SECRETS_BACKEND, loadKey(keyFile(f.keyFile, ctx)));
      const s = await store.get(key, f.version);
      const value = s.string_secret ?? `base64:${s.binary_secret ?? ""}`;
      return { text: value, json: { key, version: s.version, value, allow: s.allow ?? [] } };
    }),
  );

  backendOpt(secret.command("del <name>").description("delete a secret and its reference SECRET_<name>").option("--key <key>", "backend key (default: the name)")).action(
    ctx.action(async (name: string, f: { backend?: string; keyFile?: string; key?: string }) => {
      const client = await ctx.client();
      const store = await SecretStore.open(client.nc, f.backend ?? DEFAULT_SECRETS_BACKEND, loadKey(keyFile(f.keyFile, ctx)));
      await store.delete(f.key ?? name);
      await client.deleteConfig(`${SECRET_PREFIX}${name}`);
      return { text: `deleted secret ${name}`, json: { name } };
    }),
  );

  backendOpt(secret.command("list").description("list stored secrets: keys and versions, never values")).action(
    ctx.action(async (f: { backend?: string; keyFile?: string }) => {
      const client = await ctx.client();
      const store = await SecretStore.open(client.nc, f.backend ?? DEFAULT_SECRETS_BACKEND, loadKey(keyFile(f.keyFile, ctx)));
      const all = await store.list();
      return { text: all.map((s) => `${s.key}\tversion ${s.version}`).join("\n") || "no secrets", json: all };
    }),
  );
}
