/**
 * The first-party secrets backend (reference §6.5, docs/adr/0017-secrets.md): answers
 * `{topic}.v1alpha1.{backend}.server_xkey` with its xkey public key and `{topic}.v1alpha1.{backend}.get` with a
 * secret sealed to the requester's one-time xkey. A request must carry a valid entity JWT (a signed component or
 * provider) and a valid host JWT; the entity's issuer must be allowed by the backend and, when the secret has an
 * allow list, its issuer or subject must be on it. Values are kept sealed at rest in KV ({@link SecretStore}).
 *
 * Runs in any process with a NATS connection: `trellis secret serve`, or embedded (tests, `Host` option).
 * @module
 */
import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { KeyPair } from "@nats-io/nkeys";
import { decodeJwt, verifyJwt } from "../claims/jwt.ts";
import { InvalidArgumentError, NotFoundError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { secretsSubjects } from "../core/subjects.ts";
import { SecretStore } from "./store.ts";
import { DEFAULT_SECRETS_BACKEND, HOST_XKEY_HEADER, RESPONSE_XKEY_HEADER, type SecretRequest, type SecretResponse } from "./types.ts";
import { checkXKeyPublic, openJson, sealJson } from "./xkey.ts";

/** Options of {@link SecretsServer.start}. */
export interface SecretsServerOptions {
  nc: NatsConnection;
  /** Subject prefix, e.g. `wasmcloud.secrets` (what hosts get as `--secrets-topic`). */
  topic: string;
  /** Backend name in subjects and references. @default "nats-kv" */
  backend?: string;
  /** The backend's curve key pair (from its key file): seals values at rest and replies. */
  xkey: KeyPair;
  /** When non-empty, only entities signed by these issuers (`A…`) get secrets. @default [] (any valid signature) */
  allowedIssuers?: string[];
  logger: Logger;
}

type ServerConfig = Required<SecretsServerOptions>;

/** A running backend. */
export class SecretsServer {
  readonly #o: ServerConfig;
  readonly #store: SecretStore;
  readonly #subs: Subscription[] = [];

  private constructor(o: ServerConfig, store: SecretStore) {
    this.#o = o;
    this.#store = store;
  }

  /**
   * Opens the bucket and subscribes (queue group per backend, so several replicas share the load).
   * @throws InvalidArgumentError for a bad topic or backend name; TrellisError `LATTICE_ERROR` without JetStream.
   */
  static async start(opts: SecretsServerOptions): Promise<SecretsServer> {
    const backend = opts.backend ?? DEFAULT_SECRETS_BACKEND;
    if (!/^[A-Za-z0-9_-]+$/.test(backend)) throw new InvalidArgumentError("backend", `backend must be a subject token, got ${JSON.stringify(backend)}`);
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(opts.topic)) throw new InvalidArgumentError("topic", `topic must be a subject prefix, got ${JSON.stringify(opts.topic)}`);
    const store = await SecretStore.open(opts.nc, backend, opts.xkey);
    const s = new SecretsServer({ ...opts, backend, allowedIssuers: opts.allowedIssuers ?? [], logger: opts.logger.child({ component: "secrets-backend", backend }) }, store);
    const queue = `${opts.topic}.${backend}`;
    s.#subs.push(
      opts.nc.subscribe(secretsSubjects.serverXkey(opts.topic, backend), { queue, callback: (_e, m) => void m.respond(opts.xkey.getPublicKey()) }),
      opts.nc.subscribe(secretsSubjects.get(opts.topic, backend), { queue, callback: (_e, m) => void s.#onGet(m) }),
    );
    await opts.nc.flush();
    return s;
  }

  /** The store behind the backend (for operators' tools in the same process). */
  get store(): SecretStore {
    return this.#store;
  }

  /** The backend's public xkey. */
  get publicXKey(): string {
    return this.#o.xkey.getPublicKey();
  }

  async #onGet(m: Msg): Promise<void> {
    const log = this.#o.logger;
    let requester: string;
    try {
      requester = checkXKeyPublic(m.headers?.get(HOST_XKEY_HEADER) ?? "");
    } catch {
      m.respond(JSON.stringify({ error: "InvalidHeaders" } satisfies SecretResponse));
      return;
    }
    const reply = (resp: SecretResponse) => {
      const h = natsHeaders();
      h.set(RESPONSE_XKEY_HEADER, this.#o.xkey.getPublicKey());
      m.respond(sealJson(resp, this.#o.xkey, requester), { headers: h });
    };
    let req: SecretRequest;
    try {
      req = openJson<SecretRequest>(m.data, this.#o.xkey, requester);
      if (typeof req.key !== "string" || typeof req.context !== "object" || req.context === null) throw new Error("bad request");
    } catch {
      reply({ error: "InvalidPayload" });
      return;
    }
    let entity: { iss: string; sub: string };
    try {
      entity = verifyJwt(req.context.entity_jwt ?? "");
    } catch (err) {
      log.info("secret request refused: invalid entity claims", { key: req.key, error: (err as Error).message });
      reply({ error: { InvalidEntityJWT: (err as Error).message } });
      return;
    }
    try {
      verifyJwt(req.context.host_jwt ?? "");
    } catch (err) {
      reply({ error: { InvalidHostJWT: (err as Error).message } });
      return;
    }
    if (this.#o.allowedIssuers.length > 0 && !this.#o.allowedIssuers.includes(entity.iss)) {
      log.info("secret request refused: issuer not allowed", { key: req.key, subject: entity.sub, issuer: entity.iss });
      reply({ error: "Unauthorized" });
      return;
    }
    if (req.field) {
      reply({ error: { Other: "fields are not supported by this backend: store one value per key" } });
      return;
    }
    try {
      const s = await this.#store.get(req.key, req.version ?? undefined);
      if (s.allow && s.allow.length > 0 && !s.allow.includes(entity.iss) && !s.allow.includes(entity.sub)) {
        log.info("secret request refused: entity not on the secret's allow list", { key: req.key, subject: entity.sub, issuer: entity.iss });
        reply({ error: "Unauthorized" });
        return;
      }
      log.debug("secret delivered", { key: req.key, version: s.version, subject: entity.sub, host: subjectOf(req.context.host_jwt) });
      reply({
        secret: {
          version: s.version,
          string_secret: s.string_secret ?? null,
          binary_secret: s.binary_secret !== undefined ? [...Buffer.from(s.binary_secret, "base64")] : null,
        },
      });
    } catch (err) {
      if (err instanceof NotFoundError) reply({ error: "SecretNotFound" });
      else {
        log.warn("secret request failed", { key: req.key, error: (err as Error).message });
        reply({ error: { UpstreamError: (err as Error).message } });
      }
    }
  }

  /** Unsubscribes. */
  async stop(): Promise<void> {
    for (const s of this.#subs) s.unsubscribe();
    this.#subs.length = 0;
    await this.#o.nc.flush().catch(() => undefined);
  }
}

function subjectOf(jwt: string): string | undefined {
  try {
    return decodeJwt(jwt).sub;
  } catch {
    return undefined;
  }
}
