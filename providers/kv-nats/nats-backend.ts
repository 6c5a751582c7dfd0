/**
 * The NATS JetStream KV backend of the kv-nats provider.
 *
 * Mapping: every link uses one JetStream KV bucket (link config `bucket`, default `wasi_keyvalue`, created when
 * missing); a `wasi:keyvalue` bucket `b` opened with `open("b")` holds KV keys `b.<key>`. Key parts that are not
 * valid NATS KV tokens (`[-_=/A-Za-z0-9]`, not starting with `=`) are stored as `=` + base64url of their UTF-8, so any
 * string works as a bucket name or key. Counters are decimal strings, updated with compare-and-set.
 * @module
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { U64_MAX, parseCounter, type KeyPage, type KvBackend } from "trellis/provider-sdk";

/** JetStream KV bucket used when the link config names none. */
export const DEFAULT_BUCKET = "wasi_keyvalue";
/** Keys per `list-keys` page. */
export const PAGE_SIZE = 1000;
/** Compare-and-set attempts of one increment before it gives up. */
const MAX_CAS_ATTEMPTS = 50;

/** Settings of one link. */
export interface NatsKvSettings {
  /** JetStream KV bucket (link config `bucket`). */
  bucket: string;
  /** NATS URL of the server holding the bucket (link config `url`); absent: the provider's own connection. */
  url?: string;
  /** JetStream domain (link config `js_domain`). */
  domain?: string;
}

/** Reads a link's target config, falling back to the provider's config, then defaults. */
export function natsKvSettings(link: Readonly<Record<string, string>>, provider: Readonly<Record<string, string>> = {}): NatsKvSettings {
  const get = (k: string) => link[k] ?? provider[k];
  const bucket = get("bucket") ?? DEFAULT_BUCKET;
  if (!/^[-\w]+$/.test(bucket)) throw new Error(`kv-nats link config bucket=${JSON.stringify(bucket)}: use letters, digits, '-' and '_'`);
  const s: NatsKvSettings = { bucket };
  const url = get("url");
  if (url) s.url = url;
  const domain = get("js_domain");
  if (domain) s.domain = domain;
  return s;
}

const TOKEN = /^[-\w/]+$/;

/** One key part as a NATS KV token (see the module doc). */
export function encodePart(s: string): string {
  if (TOKEN.test(s) && !s.startsWith("=")) return s;
  return `=${Buffer.from(s, "utf8").toString("base64url")}`;
}

/** Inverse of {@link encodePart}. */
export function decodePart(s: string): string {
  return s.startsWith("=") ? Buffer.from(s.slice(1), "base64url").toString("utf8") : s;
}

/** A {@link KvBackend} on one JetStream KV bucket. */
export class NatsKvBackend implements KvBackend {
  readonly settings: NatsKvSettings;
  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;
  readonly #kv: Promise<KV>;
  #closed = false;

  private constructor(settings: NatsKvSettings, nc: NatsConnection, owns: boolean) {
    this.settings = settings;
    this.#nc = nc;
    this.#ownsConnection = owns;
    const js = jetstream(nc, settings.domain ? { domain: settings.domain } : {});
    this.#kv = new Kvm(js).create(settings.bucket, { history: 1 });
    this.#kv.catch(() => undefined); // reported by the first call that needs it
  }

  /**
   * Binds (creating if missing) the link's bucket, on `providerNc` or on its own connection when `settings.url` is set.
   * @throws Error when the own connection cannot be made.
   */
  static async open(settings: NatsKvSettings, providerNc: NatsConnection): Promise<NatsKvBackend> {
    if (!settings.url) return new NatsKvBackend(settings, providerNc, false);
    const nc = await connect({ servers: settings.url.split(",").map((s) => s.trim()), name: "trellis-kv-nats-link", maxReconnectAttempts: -1 });
    return new NatsKvBackend(settings, nc, true);
  }

  #key(bucket: string, key: string): string {
    return `${encodePart(bucket)}.${encodePart(key)}`;
  }

  async open(): Promise<void> {
    await this.#kv;
  }

  async get(bucket: string, key: string): Promise<Uint8Array | undefined> {
    const e = await (await this.#kv).get(this.#key(bucket, key));
    return e && e.operation === "PUT" ? e.value : undefined;
  }

  async set(bucket: string, key: string, value: Uint8Array): Promise<void> {
    await (await this.#kv).put(this.#key(bucket, key), value);
  }

  async delete(bucket: string, key: string): Promise<void> {
    await (await this.#kv).delete(this.#key(bucket, key));
  }

  async exists(bucket: string, key: string): Promise<boolean> {
    return (await this.get(bucket, key)) !== undefined;
  }

  async listKeys(bucket: string, cursor: bigint | undefined): Promise<KeyPage> {
    const prefix = `${encodePart(bucket)}.`;
    const all: string[] = [];
    for await (const k of await (await this.#kv).keys(`${prefix}>`)) all.push(decodePart(k.slice(prefix.length)));
    all.sort();
    const from = Number(cursor ?? 0n);
    const page: KeyPage = { keys: all.slice(from, from + PAGE_SIZE) };
    if (from + PAGE_SIZE < all.length) page.cursor = BigInt(from + PAGE_SIZE);
    return page;
  }

  async increment(bucket: string, key: string, delta: bigint): Promise<bigint> {
    const kv = await this.#kv;
    const k = this.#key(bucket, key);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const e = await kv.get(k);
      const live = e && e.operation === "PUT";
      const next = parseCounter(key, live ? e.value : undefined) + delta;
      if (next > U64_MAX) throw new Error(`increment of ${key} overflows u64`);
      const bytes = new TextEncoder().encode(next.toString());
      try {
        if (live) await kv.update(k, bytes, e.revision);
        else await kv.create(k, bytes);
        return next;
      } catch (err) {
        if (!/wrong last sequence|key exists/i.test(String((err as Error).message))) throw err;
        // another writer won the race: read again
      }
    }
    throw new Error(`increment of ${key} lost ${MAX_CAS_ATTEMPTS} compare-and-set races in a row`);
  }

  async getMany(bucket: string, keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return Promise.all(keys.map((k) => this.get(bucket, k)));
  }

  async setMany(bucket: string, entries: readonly [string, Uint8Array][]): Promise<void> {
    await Promise.all(entries.map(([k, v]) => this.set(bucket, k, v)));
  }

  async deleteMany(bucket: string, keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map((k) => this.delete(bucket, k)));
  }

  /** Closes the link's own connection, if it has one. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsConnection) await this.#nc.close().catch(() => undefined);
  }
}
