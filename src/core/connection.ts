/**
 * The one place NATS connection options are built (issue 8 §1, docs/security.md, docs/adr/0008-nats-credentials.md).
 *
 * Three forms, one path:
 * 1. {@link NatsAuthOptions}: what a user gives (file paths, user/password, token), validated with zod by
 *    {@link parseNatsAuth} into a frozen {@link NatsAuth}.
 * 2. {@link NatsConnectData}: the same after the files were read (JWT, nkey seed, PEM texts) — plain data that can be
 *    posted to a component worker thread or written into a spawned provider's host data. Built by
 *    {@link resolveNatsConnection}.
 * 3. `ConnectionOptions` of `@nats-io/transport-node` ({@link connectionOptions}): an authenticator built from the
 *    plain data, and `tls` with the CA / client certificate.
 *
 * Secrets (password, token, seed, JWT, private key) never leave these shapes in a log line, an event or an error
 * message: {@link redactUrl} removes credentials from URLs, {@link describeNatsAuth} names the method only.
 * @module
 */
import { readFile } from "node:fs/promises";
import {
  connect,
  credsAuthenticator,
  jwtAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
  type TlsOptions,
} from "@nats-io/transport-node";
import { fromSeed } from "@nats-io/nkeys";
import { z } from "zod";
import { ErrorCode, InvalidArgumentError, TrellisError } from "./errors.ts";

const path = z.string().trim().min(1, "must be a non-empty file path");
const secret = z.string().min(1, "must not be empty");

/** Schema of {@link NatsAuthOptions}. Unknown keys are refused. */
export const natsAuthSchema = z
  .object({
    /** A NATS `.creds` file (user JWT + nkey seed), for servers in operator/JWT mode. (`--nats-creds`, `TRELLIS_NATS_CREDS`) */
    credsFile: path.optional(),
    /** A file holding a user nkey seed (`SU…`), for nkey users in the server config. (`--nats-nkey`, `TRELLIS_NATS_NKEY`) */
    nkeyFile: path.optional(),
    /** User name, with {@link password}. (`--nats-user`, `TRELLIS_NATS_USER`) */
    user: secret.optional(),
    /** Password of {@link user}. (`--nats-password`, `TRELLIS_NATS_PASSWORD`) */
    password: secret.optional(),
    /** An authorization token. (`--nats-token`, `TRELLIS_NATS_TOKEN`) */
    token: secret.optional(),
    /** PEM file of the CA that signed the server's certificate; implies TLS. (`--nats-tls-ca`, `TRELLIS_NATS_TLS_CA`) */
    tlsCaFile: path.optional(),
    /** PEM client certificate for mutual TLS, with {@link tlsKeyFile}. (`--nats-tls-cert`, `TRELLIS_NATS_TLS_CERT`) */
    tlsCertFile: path.optional(),
    /** PEM private key of {@link tlsCertFile}. (`--nats-tls-key`, `TRELLIS_NATS_TLS_KEY`) */
    tlsKeyFile: path.optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const methods = (["credsFile", "nkeyFile", "user", "token"] as const).filter((k) => o[k] !== undefined);
    if (methods.length > 1) {
      ctx.addIssue({ code: "custom", path: [methods[1]!], message: `give one way to authenticate, not ${methods.join(" and ")}` });
    }
    if ((o.user === undefined) !== (o.password === undefined)) {
      ctx.addIssue({ code: "custom", path: [o.user === undefined ? "user" : "password"], message: "user and password go together" });
    }
    if ((o.tlsCertFile === undefined) !== (o.tlsKeyFile === undefined)) {
      ctx.addIssue({ code: "custom", path: [o.tlsCertFile === undefined ? "tlsCertFile" : "tlsKeyFile"], message: "tlsCertFile and tlsKeyFile go together" });
    }
  });

/** How a Trellis process authenticates to NATS and checks its TLS; every field optional (none: anonymous, plain TCP). */
export type NatsAuthOptions = z.input<typeof natsAuthSchema>;
/** {@link NatsAuthOptions} after {@link parseNatsAuth}. */
export type NatsAuth = Readonly<z.output<typeof natsAuthSchema>>;

/**
 * Validates auth options once, at start.
 * @param field name reported in errors. @default "natsAuth"
 * @throws InvalidArgumentError naming the bad field (two methods at once, a password without user, a certificate
 *   without key, an unknown key). Values are never echoed.
 */
export function parseNatsAuth(input: unknown = {}, field = "natsAuth"): NatsAuth {
  const r = natsAuthSchema.safeParse(input ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const where = issue.path.length ? `${field}.${issue.path.join(".")}` : field;
    throw new InvalidArgumentError(where, `${where}: ${issue.message}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.data)) if (v !== undefined) out[k] = v;
  return Object.freeze(out) as NatsAuth;
}

/**
 * A NATS connection's settings with every file read: plain data (structured-clone safe) for worker threads and
 * spawned providers. Secrets live in it; never log it — log {@link describeNatsAuth} instead.
 */
export interface NatsConnectData {
  /** Server URLs without credentials (`nats://h:p`, `tls://h:p`). */
  servers: string[];
  /** Require TLS: a `tls://` URL or any TLS file was given. */
  tls: boolean;
  user?: string;
  pass?: string;
  token?: string;
  /** User JWT (from a `.creds` file). */
  jwt?: string;
  /** User nkey seed (`SU…`), from a `.creds` or nkey file. */
  seed?: string;
  /** PEM of the CA. */
  tlsCa?: string;
  /** PEM client certificate. */
  tlsCert?: string;
  /** PEM client key. */
  tlsKey?: string;
}

const CREDS_BLOCK = /-{3,}[^\n]*BEGIN[^\n]*-{3,}\r?\n\s*([\w\-.=]+)\s*\r?\n\s*-{3,}[^\n]*END[^\n]*-{3,}/g;
const USER_SEED = /\bSU[A-Z2-7]{56}\b/;

/**
 * Splits a `.creds` file into its user JWT and nkey seed.
 * @throws InvalidArgumentError (`field`) when the file does not hold both blocks or the seed is not a user seed.
 */
export function parseCredsText(text: string, field = "credsFile"): { jwt: string; seed: string } {
  const blocks = [...text.matchAll(CREDS_BLOCK)].map((m) => m[1]!);
  const [jwt, seed] = blocks;
  if (!jwt || !seed || !seed.startsWith("SU")) {
    throw new InvalidArgumentError(field, `${field} is not a NATS .creds file (expected a USER JWT block and a USER NKEY SEED block)`);
  }
  checkSeed(seed, field);
  return { jwt, seed };
}

/**
 * Finds the user nkey seed (`SU…`) in an nkey file (the seed alone, or with comment lines).
 * @throws InvalidArgumentError (`field`) when there is none or it does not decode.
 */
export function parseNkeyText(text: string, field = "nkeyFile"): string {
  const m = USER_SEED.exec(text);
  if (!m) throw new InvalidArgumentError(field, `${field} holds no user nkey seed (a line starting with SU)`);
  checkSeed(m[0], field);
  return m[0];
}

function checkSeed(seed: string, field: string): void {
  try {
    fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  } catch {
    throw new InvalidArgumentError(field, `${field} holds a malformed nkey seed`);
  }
}

async function readText(file: string, field: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(field, `cannot read ${field} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Splits a comma-separated URL list and takes credentials out of any `user:pass@` / `token@` part. */
function splitUrls(url: string): { servers: string[]; userinfo: { user?: string; pass?: string; token?: string } } {
  const userinfo: { user?: string; pass?: string; token?: string } = {};
  const servers = url
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = /^([a-z][a-z0-9+.-]*:\/\/)?([^@/]*)@(.*)$/i.exec(s);
      if (!m) return s;
      const [, scheme = "", info = "", rest = ""] = m;
      const i = info.indexOf(":");
      if (i >= 0) {
        userinfo.user = decodeURIComponent(info.slice(0, i));
        userinfo.pass = decodeURIComponent(info.slice(i + 1));
      } else if (info) userinfo.token = decodeURIComponent(info);
      return `${scheme}${rest}`;
    });
  if (servers.length === 0) throw new InvalidArgumentError("natsUrl", "natsUrl must name at least one server");
  return { servers, userinfo };
}

/**
 * Reads the files of `auth` and merges credentials embedded in `url` (`nats://user:pass@h:p`, `nats://token@h:p`).
 * @param url NATS URL(s), comma-separated; `tls://` requires TLS.
 * @throws InvalidArgumentError naming the option whose file cannot be read or does not parse, or when the URL holds
 *   credentials and options give others too.
 */
export async function resolveNatsConnection(url: string, auth: NatsAuth = {}): Promise<NatsConnectData> {
  const { servers, userinfo } = splitUrls(url);
  const data: NatsConnectData = { servers, tls: servers.some((s) => /^(tls|wss):\/\//i.test(s)) };
  const explicit = auth.credsFile ?? auth.nkeyFile ?? auth.user ?? auth.token;
  if (userinfo.user !== undefined || userinfo.token !== undefined) {
    if (explicit !== undefined) throw new InvalidArgumentError("natsUrl", "natsUrl holds credentials and other credentials were given too");
    Object.assign(data, userinfo);
  }
  if (auth.credsFile) Object.assign(data, parseCredsText(await readText(auth.credsFile, "credsFile")));
  if (auth.nkeyFile) data.seed = parseNkeyText(await readText(auth.nkeyFile, "nkeyFile"));
  if (auth.user !== undefined) {
    data.user = auth.user;
    data.pass = auth.password;
  }
  if (auth.token !== undefined) data.token = auth.token;
  if (auth.tlsCaFile) data.tlsCa = await readText(auth.tlsCaFile, "tlsCaFile");
  if (auth.tlsCertFile) data.tlsCert = await readText(auth.tlsCertFile, "tlsCertFile");
  if (auth.tlsKeyFile) data.tlsKey = await readText(auth.tlsKeyFile, "tlsKeyFile");
  if (data.tlsCa || data.tlsCert) data.tls = true;
  return data;
}

/**
 * `ConnectionOptions` for `@nats-io/transport-node` from plain data: servers, an authenticator (JWT+seed, nkey,
 * user/password or token), and `tls` (CA, client certificate) when TLS is required.
 * @param extra further options (name, timeout, reconnect…); they win over nothing security-related.
 */
export function connectionOptions(data: NatsConnectData, extra: Partial<ConnectionOptions> = {}): ConnectionOptions {
  const enc = new TextEncoder();
  let authenticator: Authenticator | undefined;
  if (data.jwt && data.seed) authenticator = jwtAuthenticator(data.jwt, enc.encode(data.seed));
  else if (data.seed) authenticator = nkeyAuthenticator(enc.encode(data.seed));
  else if (data.user !== undefined) authenticator = usernamePasswordAuthenticator(data.user, data.pass);
  else if (data.token !== undefined) authenticator = tokenAuthenticator(data.token);
  const tls: TlsOptions | undefined = data.tls
    ? {
        ...(data.tlsCa ? { ca: data.tlsCa } : {}),
        ...(data.tlsCert ? { cert: data.tlsCert } : {}),
        ...(data.tlsKey ? { key: data.tlsKey } : {}),
      }
    : undefined;
  return {
    ...extra,
    servers: data.servers,
    ...(authenticator ? { authenticator } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** `credsAuthenticator` re-exported for callers holding raw `.creds` bytes. */
export { credsAuthenticator };

/**
 * Connects with {@link connectionOptions}.
 * @throws TrellisError `LATTICE_ERROR` naming the (redacted) servers and the failure (e.g. `Authorization
 *   Violation`), never a credential.
 */
export async function connectNats(data: NatsConnectData, extra: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  try {
    return await connect(connectionOptions(data, extra));
  } catch (err) {
    throw new TrellisError(
      ErrorCode.Lattice,
      `cannot connect to NATS at ${data.servers.join(",")} (${describeNatsAuth(data)}): ${redactSecrets((err as Error).message, data)}`,
      { cause: err },
    );
  }
}

/**
 * Removes credentials from every URL of a comma-separated list: `nats://alice:pw@h:4222` → `nats://***@h:4222`.
 * Strings that are not URLs are returned with any `…@` prefix replaced the same way.
 */
export function redactUrl(url: string): string {
  return url
    .split(",")
    .map((s) => s.replace(/^(\s*(?:[a-z][a-z0-9+.-]*:\/\/)?)[^@/\s]*@/i, "$1***@"))
    .join(",");
}

/** Names the authentication method and TLS, with no secret: `nkey UABC…`, `user alice`, `token`, `jwt`, `anonymous`, `+tls`. */
export function describeNatsAuth(data: NatsConnectData): string {
  let what = "anonymous";
  if (data.jwt && data.seed) what = "user JWT";
  else if (data.seed) {
    try {
      what = `nkey ${fromSeed(new TextEncoder().encode(data.seed)).getPublicKey()}`;
    } catch {
      what = "nkey";
    }
  } else if (data.user !== undefined) what = `user ${data.user}`;
  else if (data.token !== undefined) what = "token";
  return data.tls ? `${what}, TLS` : what;
}

/** Replaces every secret of `data` that occurs in `text` by `***` (for error messages from libraries). */
export function redactSecrets(text: string, data: Partial<NatsConnectData>): string {
  let out = text;
  for (const s of [data.pass, data.token, data.seed, data.jwt, data.tlsKey]) {
    if (s && s.length >= 4) out = out.split(s).join("***");
  }
  return out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, "$1***@");
}
