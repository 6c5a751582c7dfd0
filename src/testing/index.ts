/**
 * Test harness for Trellis (`import … from "trellis/testing"`): throwaway NATS (JetStream +
 * WebSocket) and Redis servers, unique lattice names and async wait helpers.
 */
import { randomBytes } from "node:crypto";

export { startTestNats, type TestNats, type TestNatsOptions } from "./nats.ts";
export {
  startNatsServer,
  isNatsReachable,
  NatsServerError,
  type NatsServerHandle,
  type NatsServerOptions,
} from "../lattice/nats-server.ts";
export { startTestNatsCluster, type TestNatsCluster, type TestNatsClusterOptions, type TestNatsNode } from "./nats-cluster.ts";
export { startSecureTestNats, makeTestCertificates, type SecureTestNats, type SecureTestNatsOptions, type TestCertificates } from "./nats-secure.ts";
export { startTestRedis, pingRedis, TestRedisError, type TestRedis, type TestRedisOptions } from "./redis.ts";
export { startTestRegistry, type TestRegistry, type TestRegistryOptions } from "./oci-registry.ts";

// ---- small async helpers for tests -------------------------------------------------------------

/**
 * A random lattice name that is safe as a single NATS subject token and as a JetStream
 * stream/KV bucket name: `<prefix>_` followed by 10 random base36 characters, e.g. `t_k3x9q0a1zz`.
 *
 * @param prefix letters, digits, `_` or `-`; default `"t"`.
 * @throws {RangeError} if `prefix` contains other characters.
 */
export function uniqueLattice(prefix = "t"): string {
  if (!/^[A-Za-z0-9_-]*$/.test(prefix)) {
    throw new RangeError(`uniqueLattice: prefix must match [A-Za-z0-9_-]*, got ${JSON.stringify(prefix)}`);
  }
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
  let suffix = "";
  for (const byte of randomBytes(10)) suffix += alphabet[byte % 36];
  return `${prefix}_${suffix}`;
}

/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds. Default `5000`. */
  timeoutMs?: number;
  /** Milliseconds between polls. Default `20`. */
  intervalMs?: number;
  /** Text for the timeout error. Default `"condition"`. */
  message?: string;
}

/**
 * Poll `predicate` until it returns a truthy value (or a promise of one) and return that value.
 * A predicate that throws counts as "not yet"; its last error becomes the timeout error's `cause`.
 *
 * @throws {Error} `waitFor: timed out after <timeoutMs> ms waiting for <message>`.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v as Exclude<T, false | 0 | "" | null | undefined>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `waitFor: timed out after ${timeoutMs} ms waiting for ${opts.message ?? "condition"}`,
        lastError === undefined ? undefined : { cause: lastError },
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}

/** Thrown by {@link collect} on timeout; `items` holds what had arrived. */
export class CollectTimeoutError<T = unknown> extends Error {
  readonly items: T[];
  constructor(message: string, items: T[]) {
    super(message);
    this.name = "CollectTimeoutError";
    this.items = items;
  }
}

/**
 * Take the first `n` items of an (async) iterable, e.g. a NATS subscription.
 * On success the iterator is left open (a subscription keeps running); on timeout it is closed
 * via `return()` so that a pending read cannot swallow a later item.
 *
 * @param n number of items to take (`0` resolves immediately with `[]`).
 * @param timeoutMs overall timeout in milliseconds, default `5000`.
 * @returns exactly `n` items; fewer if the iterable ends early.
 * @throws {CollectTimeoutError} if `n` items did not arrive within `timeoutMs`.
 */
export async function collect<T>(
  iterable: AsyncIterable<T> | Iterable<T>,
  n: number,
  timeoutMs = 5000,
): Promise<T[]> {
  const items: T[] = [];
  if (n <= 0) return items;
  const it: AsyncIterator<T> | Iterator<T> =
    Symbol.asyncIterator in iterable ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    while (items.length < n) {
      const r = await Promise.race([it.next(), timeout]);
      if (r === "timeout") {
        void Promise.resolve(it.return?.()).catch(() => undefined);
        throw new CollectTimeoutError(`collect: got ${items.length} of ${n} items within ${timeoutMs} ms`, items);
      }
      if (r.done === true) break;
      items.push(r.value);
    }
    return items;
  } finally {
    clearTimeout(timer);
  }
}
