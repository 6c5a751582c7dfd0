/**
 * Test harness: a nats-server with TLS and accounts — one account per lattice with nkey users per role (host,
 * provider, reader, admin; src/lattice/secure-config.ts) plus a second account holding a user of "another tenant".
 * Certificates (a CA, a server certificate for 127.0.0.1/localhost, a client certificate) are made with `openssl` in a
 * temporary directory that `stop()` removes.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { NatsAuthOptions } from "../core/connection.ts";
import { startNatsServer, type NatsServerHandle } from "../lattice/nats-server.ts";
import { type AccountUser, LATTICE_ROLES, type LatticeRole, accountConfig, newUserKey } from "../lattice/secure-config.ts";

const run = promisify(execFile);

/** PEM files made by {@link makeTestCertificates}. */
export interface TestCertificates {
  dir: string;
  caFile: string;
  caKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

/**
 * Makes a throwaway CA (EC P-256), a server certificate for `127.0.0.1` and `localhost`, and a client certificate,
 * with the `openssl` command.
 * @throws Error when openssl is missing or fails (its stderr in the message).
 */
export async function makeTestCertificates(dir: string): Promise<TestCertificates> {
  const f = (n: string) => path.join(dir, n);
  const ossl = async (...args: string[]) => {
    try {
      await run("openssl", args, { cwd: dir });
    } catch (err) {
      throw new Error(`openssl ${args[0]} failed: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err });
    }
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await ossl("req", "-x509", ...ec, "-keyout", f("ca-key.pem"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=trellis test CA");
  await writeFile(f("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  await writeFile(f("client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const who of ["server", "client"] as const) {
    await ossl("req", ...ec, "-keyout", f(`${who}-key.pem`), "-out", f(`${who}.csr`), "-subj", `/CN=trellis test ${who}`);
    await ossl("x509", "-req", "-in", f(`${who}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca-key.pem"), "-CAcreateserial", "-out", f(`${who}.pem`), "-days", "2", "-extfile", f(`${who}.ext`));
  }
  return {
    dir,
    caFile: f("ca.pem"),
    caKeyFile: f("ca-key.pem"),
    serverCertFile: f("server.pem"),
    serverKeyFile: f("server-key.pem"),
    clientCertFile: f("client.pem"),
    clientKeyFile: f("client-key.pem"),
  };
}

/** A running secured nats-server for one lattice. */
export interface SecureTestNats {
  /** `tls://127.0.0.1:<port>`. */
  readonly url: string;
  /** WebSocket URL (`ws://…`, plain, same users) when asked for. */
  readonly websocketUrl?: string;
  /** The lattice whose account the role users live in. */
  readonly lattice: string;
  readonly certs: TestCertificates;
  /** Nkey seed file per role of the lattice's account. */
  readonly nkeyFiles: Readonly<Record<LatticeRole, string>>;
  /** Public nkey per role. */
  readonly publicKeys: Readonly<Record<LatticeRole, string>>;
  /** Seed file of a user in another account (`OTHER`), with every permission there. */
  readonly otherNkeyFile: string;
  /** Every secret of the set-up (seeds, private keys' PEM bodies), for tests that check none leaks. */
  readonly secrets: readonly string[];
  /** Auth options of a role: its nkey, the CA and (when the server demands them) the client certificate. */
  auth(role: LatticeRole | "other"): NatsAuthOptions;
  readonly server: NatsServerHandle;
  /** Stops the server and removes the certificates and keys. Never rejects. */
  stop(): Promise<void>;
}

/** Options of {@link startSecureTestNats}. */
export interface SecureTestNatsOptions {
  /** Demand client certificates (mutual TLS). @default false */
  verifyClients?: boolean;
  /** Open a plain WebSocket listener on a free port (same accounts and users). @default false */
  websocket?: boolean;
}

/**
 * Starts a nats-server on 127.0.0.1 with TLS required, JetStream, the lattice's account (nkey users for every
 * {@link LATTICE_ROLES} role, with their permissions) and an `OTHER` account; no anonymous access.
 * @throws NatsServerError when the server does not start; Error when openssl fails.
 */
export async function startSecureTestNats(lattice: string, opts: SecureTestNatsOptions = {}): Promise<SecureTestNats> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "trellis-secure-"));
  try {
    const certs = await makeTestCertificates(dir);
    const users: AccountUser[] = [];
    const nkeyFiles = {} as Record<LatticeRole, string>;
    const publicKeys = {} as Record<LatticeRole, string>;
    const secrets: string[] = [];
    for (const role of LATTICE_ROLES) {
      const k = newUserKey();
      nkeyFiles[role] = path.join(dir, `${role}.nk`);
      publicKeys[role] = k.publicKey;
      await writeFile(nkeyFiles[role], `${k.seed}\n`, { mode: 0o600 });
      users.push({ role, nkey: k.publicKey });
      secrets.push(k.seed);
    }
    const other = newUserKey();
    const otherNkeyFile = path.join(dir, "other.nk");
    await writeFile(otherNkeyFile, `${other.seed}\n`, { mode: 0o600 });
    secrets.push(other.seed);
    const accountFile = path.join(dir, `${lattice}.accounts.conf`);
    const otherAccount = `OTHER: { jetstream: enabled, users: [ { nkey: ${JSON.stringify(other.publicKey)} } ] }\n`;
    await writeFile(accountFile, accountConfig(lattice, users) + otherAccount);
    const server = await startNatsServer({
      ...(opts.websocket ? { websocketPort: 0 } : {}),
      accountFiles: [accountFile],
      extraConfig: [
        "tls {",
        `  cert_file: ${JSON.stringify(certs.serverCertFile)}`,
        `  key_file: ${JSON.stringify(certs.serverKeyFile)}`,
        `  ca_file: ${JSON.stringify(certs.caFile)}`,
        ...(opts.verifyClients ? ["  verify: true"] : []),
        "}",
      ],
    });
    const url = server.url.replace(/^nats:/, "tls:");
    const auth = (role: LatticeRole | "other"): NatsAuthOptions => ({
      nkeyFile: role === "other" ? otherNkeyFile : nkeyFiles[role],
      tlsCaFile: certs.caFile,
      ...(opts.verifyClients ? { tlsCertFile: certs.clientCertFile, tlsKeyFile: certs.clientKeyFile } : {}),
    });
    let stopping: Promise<void> | undefined;
    return {
      url,
      ...(server.websocketUrl ? { websocketUrl: server.websocketUrl } : {}),
      lattice,
      certs,
      nkeyFiles,
      publicKeys,
      otherNkeyFile,
      secrets,
      auth,
      server,
      stop: () =>
        (stopping ??= (async () => {
          await server.stop();
          await rm(dir, { recursive: true, force: true }).catch(() => undefined);
        })()),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}
