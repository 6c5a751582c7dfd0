/**
 * The provider's NATS connection settings (docs/security.md): credentials and TLS from host data (spawned mode) or
 * from flags / `TRELLIS_NATS_*` environment variables / code (remote mode). The SDK's own small copy of the host's
 * connection shape (src/core/connection.ts), so that the SDK stands alone.
 *
 * Host data fields read: `lattice_rpc_url`, `lattice_rpc_user_jwt` + `lattice_rpc_user_seed` (JWT user), the seed
 * alone (nkey user), and the Trellis extensions `lattice_rpc_user`/`lattice_rpc_password`, `lattice_rpc_token`,
 * `lattice_rpc_tls_ca`, `lattice_rpc_tls_cert`/`lattice_rpc_tls_key` (PEM texts).
 * @module
 */
import { readFileSync } from "node:fs";
import {
  jwtAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type ConnectionOptions,
} from "@nats-io/transport-node";
import type { HostData } from "../../wire/src/provider/host-data.ts";

/** The connection fields of host data (all strings; `""` or absent when unused; reference §4.2 and docs/security.md). */
export type HostDataConnection = Pick<
  HostData,
  | "lattice_rpc_url"
  | "lattice_rpc_user_jwt"
  | "lattice_rpc_user_seed"
  | "lattice_rpc_user"
  | "lattice_rpc_password"
  | "lattice_rpc_token"
  | "lattice_rpc_tls_ca"
  | "lattice_rpc_tls_cert"
  | "lattice_rpc_tls_key"
>;

/**
 * Credentials and TLS of a remote provider: file paths and values as the CLI takes them. Flags `--nats-creds`,
 * `--nats-nkey`, `--nats-user`, `--nats-password`, `--nats-token`, `--nats-tls-ca`, `--nats-tls-cert`,
 * `--nats-tls-key`; environment `TRELLIS_NATS_CREDS`, `…_NKEY`, `…_USER`, `…_PASSWORD`, `…_TOKEN`, `…_TLS_CA`,
 * `…_TLS_CERT`, `…_TLS_KEY`. At most one of creds, nkey, user, token.
 */
export interface ProviderNatsAuth {
  credsFile?: string;
  nkeyFile?: string;
  user?: string;
  password?: string;
  token?: string;
  tlsCaFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** Flag name, environment variable and field of each {@link ProviderNatsAuth} setting. */
export const NATS_AUTH_SETTINGS = [
  { flag: "nats-creds", env: "TRELLIS_NATS_CREDS", key: "credsFile" },
  { flag: "nats-nkey", env: "TRELLIS_NATS_NKEY", key: "nkeyFile" },
  { flag: "nats-user", env: "TRELLIS_NATS_USER", key: "user" },
  { flag: "nats-password", env: "TRELLIS_NATS_PASSWORD", key: "password" },
  { flag: "nats-token", env: "TRELLIS_NATS_TOKEN", key: "token" },
  { flag: "nats-tls-ca", env: "TRELLIS_NATS_TLS_CA", key: "tlsCaFile" },
  { flag: "nats-tls-cert", env: "TRELLIS_NATS_TLS_CERT", key: "tlsCertFile" },
  { flag: "nats-tls-key", env: "TRELLIS_NATS_TLS_KEY", key: "tlsKeyFile" },
] as const satisfies readonly { flag: string; env: string; key: keyof ProviderNatsAuth }[];

/** Thrown for bad connection settings; names the setting, never its value. */
export class ProviderAuthError extends Error {
  readonly code = "INVALID_ARGUMENT";
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = "ProviderAuthError";
    this.field = field;
  }
}

const CREDS_BLOCK = /-{3,}[^\n]*BEGIN[^\n]*-{3,}\r?\n\s*([\w\-.=]+)\s*\r?\n\s*-{3,}[^\n]*END[^\n]*-{3,}/g;
const USER_SEED = /\bSU[A-Z2-7]{56}\b/;

function read(file: string, field: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ProviderAuthError(field, `cannot read ${field} ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/**
 * Turns remote settings into the host data connection fields, reading the files. Credentials in the URL
 * (`nats://user:pass@h:p`, `nats://token@h:p`) are moved out of it.
 * @throws ProviderAuthError naming the setting (two methods at once, password without user, certificate without key,
 *   unreadable file, a file that holds no credentials).
 */
export function remoteConnectionFields(natsUrl: string, auth: ProviderNatsAuth): HostDataConnection {
  const methods = (["credsFile", "nkeyFile", "user", "token"] as const).filter((k) => auth[k]);
  if (methods.length > 1) throw new ProviderAuthError(methods[1]!, `give one way to authenticate, not ${methods.join(" and ")}`);
  if (!auth.user !== !auth.password) throw new ProviderAuthError(auth.user ? "password" : "user", "user and password go together");
  if (!auth.tlsCertFile !== !auth.tlsKeyFile) throw new ProviderAuthError(auth.tlsCertFile ? "tlsKeyFile" : "tlsCertFile", "tlsCertFile and tlsKeyFile go together");
  const { url, userinfo } = stripUserinfo(natsUrl);
  if ((userinfo.user || userinfo.token) && methods.length) throw new ProviderAuthError("natsUrl", "natsUrl holds credentials and other credentials were given too");
  const out: HostDataConnection = { lattice_rpc_url: url, lattice_rpc_user_jwt: "", lattice_rpc_user_seed: "" };
  if (userinfo.user !== undefined) Object.assign(out, { lattice_rpc_user: userinfo.user, lattice_rpc_password: userinfo.pass ?? "" });
  if (userinfo.token !== undefined) out.lattice_rpc_token = userinfo.token;
  if (auth.credsFile) {
    const [jwt, seed] = [...read(auth.credsFile, "credsFile").matchAll(CREDS_BLOCK)].map((m) => m[1]!);
    if (!jwt || !seed?.startsWith("SU")) throw new ProviderAuthError("credsFile", "credsFile is not a NATS .creds file");
    out.lattice_rpc_user_jwt = jwt;
    out.lattice_rpc_user_seed = seed;
  }
  if (auth.nkeyFile) {
    const m = USER_SEED.exec(read(auth.nkeyFile, "nkeyFile"));
    if (!m) throw new ProviderAuthError("nkeyFile", "nkeyFile holds no user nkey seed (a line starting with SU)");
    out.lattice_rpc_user_seed = m[0];
  }
  if (auth.user) Object.assign(out, { lattice_rpc_user: auth.user, lattice_rpc_password: auth.password ?? "" });
  if (auth.token) out.lattice_rpc_token = auth.token;
  if (auth.tlsCaFile) out.lattice_rpc_tls_ca = read(auth.tlsCaFile, "tlsCaFile");
  if (auth.tlsCertFile) out.lattice_rpc_tls_cert = read(auth.tlsCertFile, "tlsCertFile");
  if (auth.tlsKeyFile) out.lattice_rpc_tls_key = read(auth.tlsKeyFile, "tlsKeyFile");
  return out;
}

function stripUserinfo(url: string): { url: string; userinfo: { user?: string; pass?: string; token?: string } } {
  const userinfo: { user?: string; pass?: string; token?: string } = {};
  const parts = url.split(",").map((s) => {
    const m = /^\s*([a-z][a-z0-9+.-]*:\/\/)?([^@/]*)@(.*)$/i.exec(s);
    if (!m) return s.trim();
    const [, scheme = "", info = "", rest = ""] = m;
    const i = info.indexOf(":");
    if (i >= 0) Object.assign(userinfo, { user: decodeURIComponent(info.slice(0, i)), pass: decodeURIComponent(info.slice(i + 1)) });
    else if (info) userinfo.token = decodeURIComponent(info);
    return `${scheme}${rest}`;
  });
  return { url: parts.join(","), userinfo };
}

/**
 * `ConnectionOptions` from the host data connection fields: servers, an authenticator (JWT + seed, nkey seed,
 * user/password or token) and TLS (required for `tls://` URLs or when a CA or client certificate is given).
 */
export function providerConnectionOptions(hd: HostDataConnection, extra: Partial<ConnectionOptions> = {}): ConnectionOptions {
  const enc = new TextEncoder();
  const servers = hd.lattice_rpc_url.split(",").map((s) => s.trim()).filter(Boolean);
  let authenticator: Authenticator | undefined;
  if (hd.lattice_rpc_user_jwt && hd.lattice_rpc_user_seed) authenticator = jwtAuthenticator(hd.lattice_rpc_user_jwt, enc.encode(hd.lattice_rpc_user_seed));
  else if (hd.lattice_rpc_user_seed) authenticator = nkeyAuthenticator(enc.encode(hd.lattice_rpc_user_seed));
  else if (hd.lattice_rpc_user) authenticator = usernamePasswordAuthenticator(hd.lattice_rpc_user, hd.lattice_rpc_password ?? "");
  else if (hd.lattice_rpc_token) authenticator = tokenAuthenticator(hd.lattice_rpc_token);
  const tls = servers.some((s) => /^tls:\/\//i.test(s)) || !!hd.lattice_rpc_tls_ca || !!hd.lattice_rpc_tls_cert;
  return {
    ...extra,
    servers,
    ...(authenticator ? { authenticator } : {}),
    ...(tls
      ? {
          tls: {
            ...(hd.lattice_rpc_tls_ca ? { ca: hd.lattice_rpc_tls_ca } : {}),
            ...(hd.lattice_rpc_tls_cert ? { cert: hd.lattice_rpc_tls_cert } : {}),
            ...(hd.lattice_rpc_tls_key ? { key: hd.lattice_rpc_tls_key } : {}),
          },
        }
      : {}),
  };
}

/** Removes credentials from URLs (`nats://a:b@h` → `nats://***@h`) for messages and logs. */
export function redactUrl(url: string): string {
  return url
    .split(",")
    .map((s) => s.replace(/^(\s*(?:[a-z][a-z0-9+.-]*:\/\/)?)[^@/\s]*@/i, "$1***@"))
    .join(",");
}

/** Replaces every secret of the connection fields found in `text` (e.g. a library error message) by `***`. */
export function redactConnectionSecrets(text: string, hd: Partial<HostDataConnection>): string {
  let out = text;
  for (const s of [hd.lattice_rpc_password, hd.lattice_rpc_token, hd.lattice_rpc_user_seed, hd.lattice_rpc_user_jwt, hd.lattice_rpc_tls_key]) {
    if (s && s.length >= 4) out = out.split(s).join("***");
  }
  return out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, "$1***@");
}
