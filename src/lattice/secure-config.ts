/**
 * One NATS account per lattice, with least-privilege nkey users per role (issue 8 §3, docs/security.md,
 * docs/adr/0009-lattice-accounts.md). Writes nats-server configuration text — nats-server's own mechanisms (accounts,
 * nkey users, subject permissions) enforce everything; Trellis only generates the file and the keys.
 *
 * Works on nats-server 2.9 (Debian's 2.9.10) without an operator or resolver: nkey users in an `accounts {}` block.
 * @module
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { createUser } from "@nats-io/nkeys";
import { validateId } from "../core/ids.ts";
import { appsBucket, configDataBucket, ctl, ctlRoot, EVENT_PREFIX, INVOCATION_PREFIX, latticeDataBucket, PROVIDER_RPC_PREFIX } from "../core/subjects.ts";

/** Roles of {@link rolePermissions}. */
export type LatticeRole = "host" | "provider" | "reader" | "admin";

/** Every role, in the order files are written. */
export const LATTICE_ROLES: readonly LatticeRole[] = Object.freeze(["host", "provider", "reader", "admin"]);

/** nats-server user permissions: subjects a user may publish to and subscribe to. */
export interface SubjectPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
}

/**
 * What each role may do inside the lattice's account (docs/security.md "Roles"):
 * - `host`: everything a host and the providers it spawns need — control interface, events, provider contract,
 *   invocations, JetStream API and the lattice's KV buckets, inboxes;
 * - `provider`: a remote capability provider — the provider contract subjects (receive), invocations (serve and
 *   call), `link.get` / `config.get` (read its links and config), inboxes; no control verb that changes anything;
 * - `reader`: a read-only operator — `host.ping`, `host.get`, `link.get`, `config.get`, events; refused by the
 *   server on `link.put`, `config.put`, `component.scale` and every other write;
 * - `admin`: everything in the account (the CLI of an operator who changes the lattice).
 *
 * `opts.providerId` narrows a `provider` user to one provider id: it may then subscribe only to that id's contract and
 * invocation subjects, so it cannot read or answer calls meant for another target (docs/security.md "Trust model").
 * @throws InvalidArgumentError for a bad lattice name or provider id.
 */
export function rolePermissions(role: LatticeRole, lattice: string, opts: { providerId?: string } = {}): SubjectPermissions {
  validateId("lattice", lattice);
  if (opts.providerId !== undefined) validateId("providerId", opts.providerId);
  const root = ctlRoot(lattice);
  const inbox = "_INBOX.>";
  switch (role) {
    case "host": {
      const all = [
        `${root}.>`,
        `${EVENT_PREFIX}.${lattice}.>`,
        `${PROVIDER_RPC_PREFIX}.${lattice}.>`,
        `${INVOCATION_PREFIX}.${lattice}.>`,
        "$JS.API.>",
        "$JS.FC.>",
        "$JS.ACK.>",
        `$KV.${latticeDataBucket(lattice)}.>`,
        `$KV.${configDataBucket(lattice)}.>`,
        `$KV.${appsBucket(lattice)}.>`,
        inbox,
      ];
      return { publish: { allow: all }, subscribe: { allow: all } };
    }
    case "provider":
      return {
        publish: {
          allow: [`${INVOCATION_PREFIX}.${lattice}.>`, ctl.linkGet(lattice), `${root}.config.get.*`, inbox],
        },
        subscribe: {
          allow: opts.providerId
            ? [`${PROVIDER_RPC_PREFIX}.${lattice}.${opts.providerId}.>`, `${INVOCATION_PREFIX}.${lattice}.${opts.providerId}.>`, inbox]
            : [`${PROVIDER_RPC_PREFIX}.${lattice}.>`, `${INVOCATION_PREFIX}.${lattice}.>`, inbox],
        },
      };
    case "reader":
      return {
        publish: { allow: [ctl.hostPing(lattice), `${root}.host.get.*`, ctl.linkGet(lattice), `${root}.config.get.*`] },
        subscribe: { allow: [`${EVENT_PREFIX}.${lattice}.>`, inbox] },
      };
    case "admin":
      return { publish: { allow: [">"] }, subscribe: { allow: [">"] } };
  }
}

/** A user of {@link accountConfig}: its role, nkey public key (`U…`) and, for a narrowed provider, its provider id. */
export interface AccountUser {
  role: LatticeRole;
  nkey: string;
  providerId?: string;
}

const q = (s: string) => JSON.stringify(s);

/**
 * The text of one account entry for a nats-server `accounts { … }` block: the lattice's account (named after the
 * lattice) with JetStream enabled and one nkey user per entry, with its role's permissions.
 * ```
 * accounts {
 *   include "./lattice-prod.conf"     # ← this text
 * }
 * ```
 * @throws InvalidArgumentError for a bad lattice name.
 */
export function accountConfig(lattice: string, users: readonly AccountUser[]): string {
  validateId("lattice", lattice);
  const lines = [`# Trellis lattice ${lattice}: one account, one nkey user per role (docs/security.md)`, `${q(lattice)}: {`, "  jetstream: enabled", "  users: ["];
  for (const u of users) {
    const p = rolePermissions(u.role, lattice, u.providerId ? { providerId: u.providerId } : {});
    lines.push(
      `    # ${u.role}${u.providerId ? ` ${u.providerId}` : ""}`,
      `    { nkey: ${q(u.nkey)}, permissions: {`,
      `        publish: { allow: [${p.publish.allow.map(q).join(", ")}] }`,
      `        subscribe: { allow: [${p.subscribe.allow.map(q).join(", ")}] }`,
      "    } }",
    );
  }
  lines.push("  ]", "}", "");
  return lines.join("\n");
}

/** Options of {@link serverConfig}. */
export interface ServerConfigOptions {
  /** Client listener. @default "127.0.0.1:4222" */
  listen?: string;
  /** JetStream store directory. */
  storeDir: string;
  /** Account files to include in the `accounts {}` block, relative to the config file (nats-server 2.9 resolves `include` so). */
  accountFiles: readonly string[];
  /** TLS of the client listener: PEM files; `verify` demands client certificates. */
  tls?: { certFile: string; keyFile: string; caFile?: string; verify?: boolean };
  /** WebSocket listener (it asks for the same users as the client listener). Absent: none. */
  websocket?: { listen: string; tls?: { certFile: string; keyFile: string } };
}

/** A complete nats-server config: loopback listener, JetStream, the lattices' accounts, optional TLS and WebSocket. */
export function serverConfig(o: ServerConfigOptions): string {
  const lines = [
    "# nats-server configuration written by `trellis lattice secure init` (docs/security.md)",
    `listen: ${q(o.listen ?? "127.0.0.1:4222")}`,
    `jetstream { store_dir: ${q(o.storeDir)} }`,
    "accounts {",
    ...o.accountFiles.map((f) => `  include ${q(f)}`),
    "}",
  ];
  if (o.tls) {
    lines.push(
      "tls {",
      `  cert_file: ${q(o.tls.certFile)}`,
      `  key_file: ${q(o.tls.keyFile)}`,
      ...(o.tls.caFile ? [`  ca_file: ${q(o.tls.caFile)}`] : []),
      ...(o.tls.verify ? ["  verify: true"] : []),
      "}",
    );
  }
  if (o.websocket) {
    lines.push("websocket {", `  listen: ${q(o.websocket.listen)}`);
    if (o.websocket.tls) lines.push("  tls {", `    cert_file: ${q(o.websocket.tls.certFile)}`, `    key_file: ${q(o.websocket.tls.keyFile)}`, "  }");
    else lines.push("  no_tls: true");
    lines.push("}");
  }
  return `${lines.join("\n")}\n`;
}

/** A new user nkey: seed (`SU…`, secret) and public key (`U…`). */
export function newUserKey(): { seed: string; publicKey: string } {
  const kp = createUser();
  return { seed: new TextDecoder().decode(kp.getSeed()), publicKey: kp.getPublicKey() };
}

/** What {@link initSecureLattice} wrote. */
export interface SecureLatticeFiles {
  /** The account entry to include in `accounts {}`. */
  accountFile: string;
  /** A complete server config that includes it (loopback, JetStream). */
  serverConfigFile: string;
  /** Nkey seed file per role (mode 0600). */
  nkeyFiles: Record<LatticeRole, string>;
  /** Public key per role. */
  publicKeys: Record<LatticeRole, string>;
  /** Seed file per narrowed provider user (`<lattice>-provider-<id>.nk`), by provider id. */
  providerNkeyFiles: Record<string, string>;
}

/**
 * Writes, into `dir` (created when missing), the account file `<lattice>.accounts.conf`, a server config
 * `nats-server.conf` including it, and `<lattice>-<role>.nk` seed files (mode 0600) for host, provider, reader and admin,
 * plus `<lattice>-provider-<id>.nk` for each of `opts.providerIds` (a provider user narrowed to that id).
 * Existing files of the same names are overwritten.
 * @param opts.listen client listener of the server config. @default "127.0.0.1:4222"
 * @throws InvalidArgumentError for a bad lattice name or provider id; file system errors as they come.
 */
export async function initSecureLattice(dir: string, lattice: string, opts: { listen?: string; providerIds?: readonly string[] } = {}): Promise<SecureLatticeFiles> {
  validateId("lattice", lattice);
  for (const id of opts.providerIds ?? []) validateId("providerId", id);
  const abs = path.resolve(dir);
  await mkdir(abs, { recursive: true, mode: 0o700 });
  const users: AccountUser[] = [];
  const nkeyFiles = {} as Record<LatticeRole, string>;
  const publicKeys = {} as Record<LatticeRole, string>;
  for (const role of LATTICE_ROLES) {
    const k = newUserKey();
    const file = path.join(abs, `${lattice}-${role}.nk`);
    await writeFile(file, `${k.seed}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    nkeyFiles[role] = file;
    publicKeys[role] = k.publicKey;
    users.push({ role, nkey: k.publicKey });
  }
  const providerNkeyFiles: Record<string, string> = {};
  for (const id of opts.providerIds ?? []) {
    const k = newUserKey();
    const file = path.join(abs, `${lattice}-provider-${id}.nk`);
    await writeFile(file, `${k.seed}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    providerNkeyFiles[id] = file;
    users.push({ role: "provider", nkey: k.publicKey, providerId: id });
  }
  const accountFile = path.join(abs, `${lattice}.accounts.conf`);
  await writeFile(accountFile, accountConfig(lattice, users));
  const serverConfigFile = path.join(abs, "nats-server.conf");
  await writeFile(serverConfigFile, serverConfig({ ...(opts.listen ? { listen: opts.listen } : {}), storeDir: path.join(abs, "jetstream"), accountFiles: [path.basename(accountFile)] }));
  return { accountFile, serverConfigFile, nkeyFiles, publicKeys, providerNkeyFiles };
}
