/**
 * The first-party backend's storage (docs/adr/0017-secrets.md): one JetStream KV bucket, `TRELLIS_SECRETS_{backend}`,
 * whose values are sealed by the backend's xkey to itself (NaCl box, reference §6.3). The key material — the
 * backend's xkey seed — is held by the backend (and the operator's key file), never in the bucket; a dump of the
 * bucket shows only ciphertext. The secret's version is its KV revision.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import type { KeyPair } from "@nats-io/nkeys";
import { ErrorCode, InvalidArgumentError, NotFoundError, TrellisError } from "../core/errors.ts";
import { openBucket } from "../lattice/kv.ts";
import { openJson, sealJson } from "./xkey.ts";

/** A stored secret, as the backend holds it once opened. */
export interface StoredSecret {
  string_secret?: string;
  /** Bytes, base64. */
  binary_secret?: string;
  /**
   * Who may fetch it: issuer (`A…`) or subject (`M…`/`V…`) public keys of entity claims. Empty: any entity with valid
   * claims that the backend accepts.
   */
  allow?: string[];
}

/** A secret read back: value, allow list and version. */
export interface SecretEntry extends StoredSecret {
  key: string;
  version: string;
}

/** The bucket name of a backend: `TRELLIS_SECRETS_{backend}` (non `[A-Za-z0-9_-]` characters as `_`). */
export function secretsBucket(backend: string): string {
  return `TRELLIS_SECRETS_${backend.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

const KEY_RE = /^[-/_=.a-zA-Z0-9]+$/;

function checkKey(key: string): string {
  if (!KEY_RE.test(key) || key.startsWith(".") || key.endsWith(".")) {
    throw new InvalidArgumentError("key", `secret key ${JSON.stringify(key)} must be letters, digits and - / _ = . (not starting or ending with a dot)`);
  }
  return key;
}

/** Reads and writes sealed secrets in the backend's bucket. */
export class SecretStore {
  readonly #kv: KV;
  readonly #xkey: KeyPair;

  private constructor(kv: KV, xkey: KeyPair) {
    this.#kv = kv;
    this.#xkey = xkey;
  }

  /**
   * Opens (creating when missing) the bucket of `backend`.
   * @param xkey the backend's curve key pair: values are sealed to and opened by it.
   * @throws TrellisError `LATTICE_ERROR` without JetStream.
   */
  static async open(nc: NatsConnection, backend: string, xkey: KeyPair): Promise<SecretStore> {
    return new SecretStore(await openBucket(nc, secretsBucket(backend)), xkey);
  }

  /**
   * Stores a value (exactly one of `string_secret` / `binary_secret`); returns the new version.
   * @throws InvalidArgumentError for a bad key or value.
   */
  async put(key: string, value: StoredSecret): Promise<string> {
    checkKey(key);
    if ((value.string_secret === undefined) === (value.binary_secret === undefined)) {
      throw new InvalidArgumentError("value", "a secret has exactly one of a string or a binary value");
    }
    const rev = await this.#kv.put(key, sealJson(value, this.#xkey, this.#xkey.getPublicKey()));
    return String(rev);
  }

  /**
   * Reads and opens a secret (a given `version` = KV revision, else the latest).
   * @throws NotFoundError when missing or deleted; TrellisError `SECRETS_ERROR` when it cannot be opened with this key.
   */
  async get(key: string, version?: string): Promise<SecretEntry> {
    checkKey(key);
    let e;
    if (version !== undefined) {
      const rev = Number(version);
      if (!Number.isInteger(rev) || rev <= 0) throw new InvalidArgumentError("version", `version must be a positive integer, got ${JSON.stringify(version)}`);
      e = await this.#kv.get(key, { revision: rev });
    } else {
      e = await this.#kv.get(key);
    }
    if (!e || e.operation !== "PUT" || e.value.length === 0) throw new NotFoundError(`secret ${key}${version ? ` version ${version}` : ""} not found`, { key });
    let s: StoredSecret;
    try {
      s = openJson<StoredSecret>(e.value, this.#xkey, this.#xkey.getPublicKey());
    } catch (err) {
      throw new TrellisError(ErrorCode.Secrets, `secret ${key} cannot be opened with this backend's key (${(err as Error).message})`);
    }
    return { ...s, key, version: String(e.revision) };
  }

  /** Deletes a secret (no error when missing). */
  async delete(key: string): Promise<void> {
    await this.#kv.delete(checkKey(key));
  }

  /** Keys and versions of every stored secret (values are not opened). */
  async list(): Promise<{ key: string; version: string }[]> {
    const keys: string[] = [];
    for await (const k of await this.#kv.keys()) keys.push(k);
    const out: { key: string; version: string }[] = [];
    for (const k of keys.sort()) {
      const e = await this.#kv.get(k);
      if (e && e.operation === "PUT") out.push({ key: k, version: String(e.revision) });
    }
    return out;
  }
}
