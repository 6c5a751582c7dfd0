/**
 * Stored claims: `CLAIMS_{subject}` entries in `LATTICEDATA_{lattice}` (reference §3.2), written when a signed
 * component or provider starts, and read for `claims.get` (reference §1.4).
 * @module
 */
import type { KV } from "@nats-io/kv";
import { CLAIMS_KEY_PREFIX, claimsKey } from "../core/subjects.ts";
import type { Logger } from "../core/logger.ts";
import { liveValue } from "./kv.ts";

const decoder = new TextDecoder();

/** Reads and writes `CLAIMS_{subject}` entries. */
export class ClaimsStore {
  readonly #kv: KV;
  readonly #logger: Logger;

  /** @param kv the `LATTICEDATA_{lattice}` bucket. */
  constructor(kv: KV, logger: Logger) {
    this.#kv = kv;
    this.#logger = logger;
  }

  /**
   * Writes the stored form of one subject's claims (a map with `sub`/`subject`).
   * @throws TrellisError-wrapped KV errors are not caught: the caller decides (a start does not fail for it).
   */
  async put(stored: Record<string, string>): Promise<void> {
    const sub = stored.subject ?? stored.sub;
    if (!sub) throw new Error("stored claims need a subject");
    await this.#kv.put(claimsKey(sub), JSON.stringify(stored));
  }

  /** Every stored claims map, in key order. Entries that are not JSON objects are skipped with a warning. */
  async list(): Promise<Record<string, string>[]> {
    const keys: string[] = [];
    for await (const k of await this.#kv.keys()) if (k.startsWith(CLAIMS_KEY_PREFIX)) keys.push(k);
    keys.sort();
    const out: Record<string, string>[] = [];
    for (const k of keys) {
      const v = liveValue(await this.#kv.get(k));
      if (!v) continue;
      try {
        const m = JSON.parse(decoder.decode(v)) as unknown;
        if (typeof m !== "object" || m === null || Array.isArray(m)) throw new Error("not an object");
        out.push(normalize(m as Record<string, unknown>));
      } catch (err) {
        this.#logger.warn("ignoring malformed stored claims", { key: k, error: (err as Error).message });
      }
    }
    return out;
  }
}

/** Fills short and long key names both ways and turns values into strings, as 1.x `claims.get` answers. */
function normalize(m: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (v === undefined || v === null) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(",") : typeof v === "string" ? v : JSON.stringify(v);
  }
  for (const [short, long] of [["iss", "issuer"], ["sub", "subject"], ["rev", "revision"]] as const) {
    if (out[long] === undefined && out[short] !== undefined) out[long] = out[short];
    if (out[short] === undefined && out[long] !== undefined) out[short] = out[long];
  }
  return out;
}
