/**
 * The host side of secrets (reference §6.5, §6.3, docs/adr/0017-secrets.md): resolves `SECRET_…` references from
 * config, fetches each secret from its backend with the entity's claims JWT and the host's self-signed JWT (requests
 * and replies sealed with one-time xkeys), and holds the values in a {@link SecretBundle} that only ever leaves this
 * module sealed to a recipient xkey. Nothing here logs a value; errors name the secret, never its value.
 * @module
 */
import { inspect } from "node:util";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { createAccount, type KeyPair } from "@nats-io/nkeys";
import { encodeJwt, newClaims } from "../claims/jwt.ts";
import { ErrorCode, TrellisError } from "../core/errors.ts";
import type { ConfigSource } from "../core/ports.ts";
import { secretsSubjects } from "../core/subjects.ts";
import { configToReference, HOST_XKEY_HEADER, isSecretName, RESPONSE_XKEY_HEADER, type SecretReference, type SecretRequest, type SecretResponse, type SecretValue } from "./types.ts";
import { checkXKeyPublic, newXKey, openJson, sealJson, xkeyFromSeed } from "./xkey.ts";

/** Secrets failure (code `SECRETS_ERROR`); the message names the secret, never a value. */
export class SecretsError extends TrellisError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.Secrets, message, details ? { details } : undefined);
    this.name = "SecretsError";
  }
}

/**
 * Secret values by name. Opaque outside src/secrets: `toJSON`, `toString` and `util.inspect` show names only; the
 * values leave only sealed ({@link SecretBundle.sealFor}).
 */
export class SecretBundle {
  readonly #values: Map<string, SecretValue>;

  constructor(values: Map<string, SecretValue> = new Map()) {
    this.#values = values;
  }

  /** Number of secrets. */
  get size(): number {
    return this.#values.size;
  }

  /** Names of the secrets (not their values). */
  names(): string[] {
    return [...this.#values.keys()].sort();
  }

  /**
   * The JSON map `{name: {kind, value}}` sealed from `sender` (the host xkey) to `recipient` (a public `X…` key), as
   * bytes; `null` when empty (reference §2.2: empty secret maps are sent as null).
   */
  sealFor(sender: KeyPair, recipient: string): number[] | null {
    if (this.#values.size === 0) return null;
    return [...sealJson(Object.fromEntries(this.#values), sender, checkXKeyPublic(recipient))];
  }

  /**
   * Sealed for a component's worker thread (plain data that crosses `postMessage`): the map sealed from `sender` to a
   * one-time xkey whose seed travels alongside, so that the value never sits in a plain structure, a log or a
   * message outside src/secrets. The worker opens it with {@link openGuestSecrets}. Undefined when empty.
   */
  sealForGuest(sender: KeyPair): GuestSecrets | undefined {
    if (this.#values.size === 0) return undefined;
    const oneTime = newXKey();
    const sealed = sealJson(Object.fromEntries(this.#values), sender, oneTime.getPublicKey());
    return { sealed, sender: sender.getPublicKey(), seed: new TextDecoder().decode(oneTime.getSeed()) };
  }

  /**
   * The plain map `{name: {kind, value}}` for a provider's own host data, which goes only to the provider process's
   * stdin, as in 1.x (reference §4.2, §6.3 "not sealed: provider's own secrets in host data"). Never log it.
   */
  forProviderStdin(): Record<string, SecretValue> {
    return Object.fromEntries(this.#values);
  }

  /** A bundle holding this one's and `other`'s secrets (`other` wins on equal names). */
  merge(other: SecretBundle): SecretBundle {
    return new SecretBundle(new Map([...this.#values, ...other.#values]));
  }

  toJSON(): string {
    return `[${this.#values.size} secrets]`;
  }

  toString(): string {
    return this.toJSON();
  }

  [inspect.custom](): string {
    return `SecretBundle(${this.names().join(", ")})`;
  }
}

/** Secrets on their way to a component's worker thread: see {@link SecretBundle.sealForGuest}. */
export interface GuestSecrets {
  sealed: Uint8Array;
  /** Public xkey of the sealing host. */
  sender: string;
  /** Seed of the one-time recipient key. */
  seed: string;
}

/**
 * Opens {@link GuestSecrets} in the worker: secret values by name, for `wasmcloud:secrets/store`.
 * @throws TrellisError `SECRETS_ERROR` when they cannot be opened.
 */
export function openGuestSecrets(g: GuestSecrets | undefined): Map<string, SecretValue> {
  if (!g) return new Map();
  const values = openJson<Record<string, SecretValue>>(g.sealed, xkeyFromSeed(g.seed), g.sender);
  return new Map(Object.entries(values));
}

/** The host's identity towards secrets backends: its xkey and a self-signed host JWT (reference §6.1). */
export interface HostSecretsIdentity {
  /** The host xkey (curve): seals secrets to providers; its public key goes in host data. */
  xkey: KeyPair;
  /** A host JWT (subject = host id) signed by an ephemeral account key, labels `{"self_signed": "true"}`. */
  jwt: string;
}

/** Makes the host's xkey and self-signed JWT (reference §6.1 "Host self-identity"). */
export function hostSecretsIdentity(hostId: string, friendlyName: string): HostSecretsIdentity {
  const account = createAccount();
  const jwt = encodeJwt(newClaims({ issuer: account.getPublicKey(), subject: hostId, metadata: { name: friendlyName, labels: { self_signed: "true" } } }), account);
  account.clear();
  return { xkey: newXKey(), jwt };
}

/** Options of {@link SecretsClient}. */
export interface SecretsClientOptions {
  nc: NatsConnection;
  /** The secrets topic prefix; undefined: any secret reference fails with a clear error. */
  topic: string | undefined;
  identity: HostSecretsIdentity;
  config: ConfigSource;
  /** Time limit of each backend request, in milliseconds. @default 5000 */
  timeoutMs?: number;
}

/** Resolves secret references and fetches secrets for one host. */
export class SecretsClient {
  readonly #o: SecretsClientOptions;
  readonly #serverKeys = new Map<string, string>();

  constructor(o: SecretsClientOptions) {
    this.#o = o;
  }

  /** The host's identity (xkey, JWT). */
  get identity(): HostSecretsIdentity {
    return this.#o.identity;
  }

  /**
   * Fetches the secrets named by the `SECRET_…` entries of `names` (other names are ignored).
   * @param entityJwt the claims JWT of the component or provider the secrets are for.
   * @param application the app name (annotation `wasmcloud.dev/appspec`), sent to the backend.
   * @throws SecretsError naming the reference when: no secrets topic is set, the entity is unsigned, a reference
   *   config is missing or malformed, the backend does not answer, or it refuses.
   */
  async fetch(names: readonly string[], entityJwt: string | undefined, application?: string): Promise<SecretBundle> {
    const refs = names.filter(isSecretName);
    if (refs.length === 0) return new SecretBundle();
    if (!this.#o.topic) throw new SecretsError(`secret ${refs[0]} cannot be fetched: this host has no secrets topic (--secrets-topic)`, { secret: refs[0] });
    if (!entityJwt) {
      throw new SecretsError(`secret ${refs[0]} cannot be fetched: the entity is not signed, and secrets are only given to signed components and providers (trellis claims sign)`, { secret: refs[0] });
    }
    const out = new Map<string, SecretValue>();
    for (const configName of refs) {
      let map: Record<string, string>;
      try {
        map = await this.#o.config.resolve([configName]);
      } catch {
        throw new SecretsError(`secret reference ${configName} does not exist`, { secret: configName });
      }
      let ref: SecretReference;
      try {
        ref = configToReference(configName, map);
      } catch (err) {
        throw new SecretsError((err as Error).message, { secret: configName });
      }
      out.set(ref.name, await this.#get(configName, ref, entityJwt, application));
    }
    return new SecretBundle(out);
  }

  async #serverKey(backend: string): Promise<string> {
    const known = this.#serverKeys.get(backend);
    if (known) return known;
    const topic = this.#o.topic!;
    let key: string;
    try {
      const r = await this.#o.nc.request(secretsSubjects.serverXkey(topic, backend), new Uint8Array(0), { timeout: this.#o.timeoutMs ?? 5000 });
      key = checkXKeyPublic(r.string().trim());
    } catch (err) {
      throw new SecretsError(`secrets backend ${backend} does not answer on ${secretsSubjects.serverXkey(topic, backend)}: ${(err as Error).message}`, { backend });
    }
    this.#serverKeys.set(backend, key);
    return key;
  }

  async #get(configName: string, ref: SecretReference, entityJwt: string, application: string | undefined): Promise<SecretValue> {
    const server = await this.#serverKey(ref.backend);
    const oneTime = newXKey();
    const req: SecretRequest = {
      key: ref.key,
      field: ref.field ?? null,
      version: ref.version ?? null,
      context: { entity_jwt: entityJwt, host_jwt: this.#o.identity.jwt, application: { name: application ?? null, policy: ref.policy } },
    };
    const h = natsHeaders();
    h.set(HOST_XKEY_HEADER, oneTime.getPublicKey());
    let resp: SecretResponse;
    try {
      const r = await this.#o.nc.request(secretsSubjects.get(this.#o.topic!, ref.backend), sealJson(req, oneTime, server), { headers: h, timeout: this.#o.timeoutMs ?? 5000 });
      const sender = r.headers?.get(RESPONSE_XKEY_HEADER);
      resp = sender ? openJson<SecretResponse>(r.data, oneTime, checkXKeyPublic(sender)) : (JSON.parse(r.string()) as SecretResponse);
    } catch (err) {
      throw new SecretsError(`secret ${configName} (key ${ref.key}, backend ${ref.backend}) could not be fetched: ${(err as Error).message}`, { secret: configName });
    } finally {
      oneTime.clear();
    }
    if (resp.error === "SecretNotFound") {
      throw new SecretsError(`secret ${configName} (key ${ref.key}) does not exist in secrets backend ${ref.backend}`, { secret: configName });
    }
    if (resp.error !== undefined && resp.error !== null) {
      throw new SecretsError(`secret ${configName} (key ${ref.key}, backend ${ref.backend}) refused by the backend: ${JSON.stringify(resp.error)}`, { secret: configName });
    }
    const s = resp.secret;
    if (s && typeof s.string_secret === "string") return { kind: "String", value: s.string_secret };
    if (s && Array.isArray(s.binary_secret)) return { kind: "Bytes", value: s.binary_secret };
    throw new SecretsError(`secret ${configName} (key ${ref.key}) has no value`, { secret: configName });
  }
}
