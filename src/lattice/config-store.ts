/**
 * Named config in `CONFIGDATA_{lattice}` (reference §1.4 config verbs, §3.3): string → string maps stored verbatim as
 * JSON, watched by every host so that components and providers see changes live.
 * @module
 */
import type { KV, KvEntry } from "@nats-io/kv";
import type { ConfigSource } from "../core/ports.ts";
import type { Logger } from "../core/logger.ts";
import { InvalidArgumentError, NotFoundError } from "../core/errors.ts";
import { type BucketWatch, liveValue, watchBucket } from "./kv.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Checks that `value` is a JSON object whose values are all strings (reference §1.4 `config.put`).
 * @throws InvalidArgumentError (`field` = `config`) naming the first non-string value.
 */
export function parseConfigMap(value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError("config", "config data should be a map of string -> string (a JSON object)");
  }
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") {
      throw new InvalidArgumentError(
        "config",
        `config data should be a map of string -> string; the value of ${JSON.stringify(k)} is ${v === null ? "null" : typeof v}`,
      );
    }
  }
  return { ...(value as Record<string, string>) };
}

/** Named config over a KV bucket, with a watched in-memory copy. */
export class ConfigStore implements ConfigSource {
  readonly #kv: KV;
  readonly #logger: Logger;
  readonly #values = new Map<string, Record<string, string>>();
  readonly #listeners = new Set<(name: string) => void>();
  #watch: BucketWatch | undefined;

  private constructor(kv: KV, logger: Logger) {
    this.#kv = kv;
    this.#logger = logger;
  }

  /** Loads every config of the bucket, then follows it. @param kv the `CONFIGDATA_{lattice}` bucket. */
  static async open(kv: KV, logger: Logger): Promise<ConfigStore> {
    const store = new ConfigStore(kv, logger);
    store.#watch = await watchBucket(
      kv,
      (e) => store.#apply(e),
      (err) => {
        if (err !== undefined) logger.warn("CONFIGDATA watch failed", { error: String(err) });
      },
      { logger },
    );
    return store;
  }

  #apply(entry: KvEntry): void {
    const bytes = liveValue(entry);
    if (bytes) {
      try {
        this.#values.set(entry.key, parseConfigMap(JSON.parse(decoder.decode(bytes))));
      } catch (err) {
        this.#logger.warn("malformed config in KV; ignoring it", { config: entry.key, error: String(err) });
        return;
      }
    } else {
      this.#values.delete(entry.key);
    }
    for (const l of this.#listeners) {
      try {
        l(entry.key);
      } catch (err) {
        this.#logger.error("config listener failed", { error: String(err) });
      }
    }
  }

  /** Stores `values` under `name`, replacing what was there. Returns the KV revision. */
  async put(name: string, values: Record<string, string>): Promise<number> {
    return this.#kv.put(name, encoder.encode(JSON.stringify(values)));
  }

  /** Reads `name` from KV; undefined when it does not exist. */
  async get(name: string): Promise<Record<string, string> | undefined> {
    const bytes = liveValue(await this.#kv.get(name));
    return bytes ? parseConfigMap(JSON.parse(decoder.decode(bytes))) : undefined;
  }

  /** Purges `name` (reference §1.4: `config.del` is a KV purge); succeeds when it does not exist. */
  async delete(name: string): Promise<void> {
    await this.#kv.purge(name);
  }

  /** Names of every config that exists now, read from KV. */
  async names(): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await this.#kv.keys()) out.push(k);
    return out.sort();
  }

  /**
   * {@inheritDoc ConfigSource.resolve}
   * Reads KV so that a config put a moment ago on another host is seen.
   */
  async resolve(names: readonly string[]): Promise<Record<string, string>> {
    const maps = await Promise.all(
      names.map(async (n) => {
        const v = await this.get(n);
        if (v === undefined) throw new NotFoundError(`config ${n} does not exist`, { config: n });
        return v;
      }),
    );
    return Object.assign({}, ...maps) as Record<string, string>;
  }

  /** {@inheritDoc ConfigSource.current} */
  current(names: readonly string[]): Record<string, string> {
    return Object.assign({}, ...names.map((n) => this.#values.get(n) ?? {})) as Record<string, string>;
  }

  /** {@inheritDoc ConfigSource.onChange} */
  onChange(listener: (name: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Waits until this host's copy reflects every config write made before the call. */
  async sync(timeoutMs = 2000): Promise<void> {
    await this.#watch?.sync(timeoutMs);
  }

  /** Stops the watch. */
  close(): void {
    this.#watch?.stop();
  }
}
