/**
 * The Redis backend of the kv-redis provider: one ioredis connection per link.
 *
 * Mapping: bucket `b` opened with `open("b")` holds Redis keys `b:<key>`; the empty bucket name uses keys as they are.
 * Counters are Redis integers (`INCRBY`), i.e. decimal strings, the same format kv-memory and kv-nats store.
 * @module
 */
import { Redis } from "ioredis";
import { U64_MAX, type KeyPage, type KvBackend, type Logger } from "trellis/provider-sdk";

/** Default Redis URL when neither the link nor the provider config gives one. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
/** Default time limit of one Redis command, in milliseconds. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
/** Keys returned per `list-keys` page (a SCAN `COUNT` hint). */
const SCAN_COUNT = 1000;
const S64_MAX = (1n << 63n) - 1n;

/** Settings of one link's connection. */
export interface RedisSettings {
  /** `redis://[user:password@]host:port[/db]` (link config `url` or `URL`). */
  url: string;
  /** Time limit of one command in ms (link config `command_timeout_ms`). @default 2000 */
  commandTimeoutMs: number;
  /** Redis AUTH password (from the link's secrets); never logged. */
  password?: string;
}

/**
 * Reads the connection settings from a link's target config, falling back to the provider's config, then defaults.
 * Keys are matched case-insensitively (wasmCloud's keyvalue-redis reads `URL`).
 */
export function redisSettings(
  link: Readonly<Record<string, string>>,
  provider: Readonly<Record<string, string>> = {},
  secrets: { password?: string | undefined; url?: string | undefined } = {},
): RedisSettings {
  const find = (m: Readonly<Record<string, string>>, key: string) => Object.entries(m).find(([k]) => k.toLowerCase() === key)?.[1];
  const get = (key: string) => find(link, key) ?? find(provider, key);
  const timeout = Number(get("command_timeout_ms"));
  const out: RedisSettings = {
    url: secrets.url ?? get("url") ?? DEFAULT_REDIS_URL,
    commandTimeoutMs: Number.isSafeInteger(timeout) && timeout > 0 ? timeout : DEFAULT_COMMAND_TIMEOUT_MS,
  };
  if (secrets.password !== undefined) out.password = secrets.password;
  return out;
}

/** `redis://user:secret@host` → `redis://user:***@host`, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1:***@");
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

/** A {@link KvBackend} on one Redis connection. */
export class RedisBackend implements KvBackend {
  readonly settings: RedisSettings;
  readonly redis: Redis;
  #closed = false;

  /** Opens the connection in the background (commands wait for it, up to the command timeout). */
  constructor(settings: RedisSettings, logger: Logger) {
    this.settings = settings;
    this.redis = new Redis(settings.url, {
      lazyConnect: false,
      connectTimeout: settings.commandTimeoutMs,
      commandTimeout: settings.commandTimeoutMs,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(100 * times, 2_000),
      enableOfflineQueue: true,
      ...(settings.password !== undefined ? { password: settings.password } : {}),
    });
    let warned = false;
    this.redis.on("error", (err: Error) => {
      if (!warned) logger.warn("redis connection error (retrying)", { url: redactUrl(settings.url), error: err.message });
      warned = true;
    });
    this.redis.on("ready", () => {
      if (warned) logger.info("redis connection ready", { url: redactUrl(settings.url) });
      warned = false;
    });
  }

  /** `ready`, `connecting`, `reconnecting`, `end`, … (ioredis status). */
  get status(): string {
    return this.redis.status;
  }

  #key(bucket: string, key: string): string {
    return bucket === "" ? key : `${bucket}:${key}`;
  }

  async open(): Promise<void> {
    // Redis has no buckets to create; a bucket is a key prefix.
  }

  async get(bucket: string, key: string): Promise<Uint8Array | undefined> {
    return (await this.redis.getBuffer(this.#key(bucket, key))) ?? undefined;
  }

  async set(bucket: string, key: string, value: Uint8Array): Promise<void> {
    await this.redis.set(this.#key(bucket, key), Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.redis.del(this.#key(bucket, key));
  }

  async exists(bucket: string, key: string): Promise<boolean> {
    return (await this.redis.exists(this.#key(bucket, key))) > 0;
  }

  async listKeys(bucket: string, cursor: bigint | undefined): Promise<KeyPage> {
    const prefix = bucket === "" ? "" : `${bucket}:`;
    const [next, keys] = await this.redis.scan((cursor ?? 0n).toString(), "MATCH", `${escapeGlob(prefix)}*`, "COUNT", SCAN_COUNT);
    const page: KeyPage = { keys: keys.map((k) => k.slice(prefix.length)) };
    if (next !== "0") page.cursor = BigInt(next);
    return page;
  }

  async increment(bucket: string, key: string, delta: bigint): Promise<bigint> {
    if (delta > S64_MAX) throw new Error(`delta ${delta} is larger than Redis integers allow (2^63-1)`);
    const v = BigInt(await this.redis.incrby(this.#key(bucket, key), delta.toString()));
    if (v < 0n || v > U64_MAX) throw new Error(`value of ${key} is out of the u64 range`);
    return v;
  }

  async getMany(bucket: string, keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const values = await this.redis.mgetBuffer(...keys.map((k) => this.#key(bucket, k)));
    return values.map((v) => v ?? undefined);
  }

  async setMany(bucket: string, entries: readonly [string, Uint8Array][]): Promise<void> {
    if (entries.length === 0) return;
    await this.redis.mset(...entries.flatMap(([k, v]) => [this.#key(bucket, k), Buffer.from(v.buffer, v.byteOffset, v.byteLength)]));
  }

  async deleteMany(bucket: string, keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.redis.del(...keys.map((k) => this.#key(bucket, k)));
  }

  /** Closes the connection (QUIT, then disconnect if Redis does not answer within 1 s). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await Promise.race([this.redis.quit(), new Promise((r) => setTimeout(r, 1_000).unref())]);
    } catch {
      // already gone
    } finally {
      this.redis.disconnect();
    }
  }
}
