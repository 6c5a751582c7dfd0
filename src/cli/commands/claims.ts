/**
 * `trellis claims sign|inspect|keygen`: a thin shell over src/claims (docs/security.md, docs/adr/0016-claims.md).
 * @module
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import {
  type Claims,
  decodeJwt,
  extractClaims,
  findClaimsJwt,
  newIssuer,
  providerClaimsPath,
  readProviderClaims,
  signComponent,
  signProvider,
  type SignOptions,
  validateJwt,
} from "../../claims/index.ts";
import { InvalidArgumentError, NotFoundError } from "../../core/errors.ts";
import { type CliContext, type CommandResult } from "../context.ts";
import { ENV } from "../env.ts";
import { inventories } from "../placement.ts";

interface SignFlags {
  issuer?: string;
  subject?: string;
  name?: string;
  ver?: string;
  rev?: string;
  tag?: string[];
  callAlias?: string;
  vendor?: string;
  expires?: string;
  notBefore?: string;
  destination?: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

function isWasm(file: string): boolean {
  const b = readFileSync(file).subarray(0, 4);
  return b.length === 4 && b[0] === 0x00 && b[1] === 0x61 && b[2] === 0x73 && b[3] === 0x6d;
}

/** The issuer seed from `--issuer` (a seed, or a file holding one) or `TRELLIS_CLAIMS_ISSUER`. Never printed. */
function issuerSeed(flag: string | undefined, envValue: string | undefined): string {
  const v = flag ?? envValue;
  if (!v) throw new InvalidArgumentError("--issuer", `--issuer is required: an account seed (SA…) or a file holding one (${ENV.claimsIssuer})`);
  if (/^SA[A-Z2-7]{56}$/.test(v.trim())) return v.trim();
  if (existsSync(v) && statSync(v).isFile()) return readFileSync(v, "utf8").trim();
  throw new InvalidArgumentError("--issuer", "--issuer must be an account seed (SA…) or the path of a file holding one");
}

function days(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(flag, `${flag} must be a non-negative number of days, got ${JSON.stringify(v)}`);
  return n;
}

function describe(jwt: string, claims: Claims<unknown>, extra: Record<string, unknown>): CommandResult {
  const v = validateJwt(jwt);
  const meta = (claims.wascap ?? {}) as Record<string, unknown>;
  const kind = "target_hashes" in meta ? "provider" : "component";
  const json = {
    kind,
    issuer: claims.iss,
    subject: claims.sub,
    issued_at: new Date(claims.iat * 1000).toISOString(),
    expires: v.expires_human,
    not_before: v.not_before_human,
    signature_valid: v.signature_valid,
    expired: v.expired,
    cannot_use_yet: v.cannot_use_yet,
    metadata: meta,
    ...extra,
  };
  const lines = [
    `${kind} claims`,
    `  issuer:      ${claims.iss}`,
    `  subject:     ${claims.sub}`,
    ...(meta.name !== undefined ? [`  name:        ${String(meta.name)}`] : []),
    ...(meta.ver !== undefined ? [`  version:     ${String(meta.ver)}`] : []),
    ...(meta.rev !== undefined ? [`  revision:    ${String(meta.rev)}`] : []),
    ...(Array.isArray(meta.tags) ? [`  tags:        ${meta.tags.join(", ")}`] : []),
    ...(meta.hash !== undefined ? [`  hash:        ${String(meta.hash)}`] : []),
    ...(meta.target_hashes !== undefined ? Object.entries(meta.target_hashes as Record<string, string>).map(([t, h]) => `  target:      ${t} ${h}`) : []),
    `  issued:      ${json.issued_at}`,
    `  expires:     ${v.expires_human}${v.expired ? " (EXPIRED)" : ""}`,
    `  not before:  ${v.not_before_human}${v.cannot_use_yet ? " (NOT YET VALID)" : ""}`,
    `  signature:   ${v.signature_valid ? "valid" : "INVALID"}`,
    ...Object.entries(extra).map(([k, x]) => `  ${k}: ${String(x)}`),
  ];
  return { text: lines.join("\n"), json };
}

function inspectFile(file: string): CommandResult {
  if (file.endsWith(".jwt")) {
    const jwt = readFileSync(file, "utf8").trim();
    return describe(jwt, decodeJwt(jwt), {});
  }
  if (isWasm(file)) {
    const jwt = findClaimsJwt(readFileSync(file));
    if (jwt === undefined) throw new NotFoundError(`${file} has no embedded claims (it is not signed)`, { file });
    let hash = "matches the module";
    try {
      extractClaims(readFileSync(file));
    } catch (err) {
      hash = `MISMATCH: ${(err as Error).message}`;
    }
    return describe(jwt, decodeJwt(jwt), { module_hash: hash });
  }
  const claimsFile = providerClaimsPath(file);
  if (!existsSync(claimsFile)) throw new NotFoundError(`${file} is not a component and has no claims file ${claimsFile} (it is not signed)`, { file });
  const jwt = readFileSync(claimsFile, "utf8").trim();
  let hash = "matches the executable";
  try {
    readProviderClaims(file, { verify: false });
  } catch (err) {
    hash = `MISMATCH: ${(err as Error).message}`;
  }
  return describe(jwt, decodeJwt(jwt), { executable_hash: hash });
}

/** Registers the `claims` commands. */
export function registerClaimsCommands(program: Command, ctx: CliContext): void {
  const claims = program.command("claims").description("sign components and providers, inspect their claims (wascap-compatible)");
  claims
    .command("sign <file>")
    .description(
      "sign a component (embeds a wasmcloud_jwt section, writes <name>_s.wasm) or a provider executable (writes <file>.claims.jwt)",
    )
    .option("--issuer <seed>", `issuer account seed SA…, or a file holding it (${ENV.claimsIssuer})`)
    .option("--subject <key>", "keep this subject public key (M… for components, V… for providers); default a new one")
    .option("--name <name>", "display name")
    .option("--ver <version>", "version string")
    .option("--rev <n>", "revision (integer)")
    .option("--tag <tag>", "tag (repeat; components)", collect)
    .option("--call-alias <alias>", "call alias (components)")
    .option("--vendor <vendor>", "vendor (providers; default unknown)")
    .option("--expires <days>", "days until the claims expire (default never)")
    .option("--not-before <days>", "days until the claims become valid (default now)")
    .option("--destination <file>", "where to write the signed component (default <name>_s.wasm beside it)")
    .action(
      ctx.action(async (file: string, f: SignFlags) => {
        if (!existsSync(file)) throw new NotFoundError(`no such file: ${file}`, { file });
        const rev = f.rev === undefined ? undefined : Number(f.rev);
        const opts: SignOptions = {
          issuerSeed: issuerSeed(f.issuer, ctx.env[ENV.claimsIssuer]),
          ...(f.subject ? { subject: f.subject } : {}),
          ...(f.name !== undefined ? { name: f.name } : {}),
          ...(f.ver !== undefined ? { ver: f.ver } : {}),
          ...(rev !== undefined ? { rev } : {}),
          ...(f.tag ? { tags: f.tag } : {}),
          ...(f.callAlias !== undefined ? { callAlias: f.callAlias } : {}),
          ...(f.vendor !== undefined ? { vendor: f.vendor } : {}),
          expiresInDays: days("--expires", f.expires),
          notBeforeDays: days("--not-before", f.notBefore),
        };
        if (isWasm(file)) {
          const out = signComponent(readFileSync(file), opts);
          const dest = f.destination ?? path.join(path.dirname(file), `${path.basename(file, ".wasm")}_s.wasm`);
          await writeFile(dest, out.bytes);
          const json = { kind: "component", file: dest, issuer: out.claims.iss, subject: out.claims.sub, hash: out.claims.wascap?.hash };
          return { text: `signed component written to ${dest}\n  issuer:  ${json.issuer}\n  subject: ${json.subject}\n  hash:    ${json.hash}`, json };
        }
        const out = signProvider(file, opts);
        const dest = providerClaimsPath(file);
        await writeFile(dest, `${out.jwt}\n`);
        const json = { kind: "provider", file: dest, issuer: out.claims.iss, subject: out.claims.sub, target_hashes: out.claims.wascap?.target_hashes };
        return { text: `provider claims written to ${dest}\n  issuer:  ${json.issuer}\n  subject: ${json.subject}`, json };
      }),
    );
  claims
    .command("inspect <fileOrId>")
    .description("show the claims of a file (component, provider executable or .jwt) or of a running component/provider id or subject key")
    .action(
      ctx.action(async (target: string) => {
        if (existsSync(target) && statSync(target).isFile()) return inspectFile(target);
        const client = await ctx.client();
        let subject = target;
        for (const inv of await inventories(client)) {
          for (const d of [...inv.components, ...inv.providers]) if (d.id === target && d.subject) subject = d.subject;
        }
        const found = (await client.getClaims()).find((c) => c.sub === subject || c.subject === subject);
        if (!found) throw new NotFoundError(`no file ${target}, and no claims for a running component, provider or subject ${target} in the lattice`, { target });
        return { text: Object.entries(found).map(([k, v]) => `${k}: ${v}`).join("\n"), json: found };
      }),
    );
  claims
    .command("keygen")
    .description("make a new issuer (account) key; prints the seed — keep it secret")
    .action(
      ctx.action(async () => {
        const k = newIssuer();
        return { text: `public key: ${k.publicKey}\nseed:       ${k.seed}`, json: { public_key: k.publicKey, seed: k.seed } };
      }),
    );
}
