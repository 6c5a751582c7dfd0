#!/usr/bin/env node
/**
 * kv-redis: a first-party capability provider serving `wasi:keyvalue` `store`, `atomics` and `batch`
 * @0.2.0-draft from Redis. Each link to it gets its own connection to the URL of its target config (`url=redis://…`;
 * default `redis://127.0.0.1:6379`), opened by the link put and closed by the link delete (after a short drain, see
 * the provider SDK's keyvalue/exports.ts). A link's target secrets `password` (or `redis_password`; Redis AUTH) or `url` (a URL with credentials) override
 * the config (the provider's own secret `default_redis_password` is the fallback password); they arrive sealed and are
 * never logged.
 *
 * Start it from a host: `trellis start provider kv-redis kv-redis`; or by hand (a remote provider):
 * `node providers/kv-redis/main.ts --provider-id kv-redis --lattice default --nats-url nats://127.0.0.1:4222`.
 * @module
 */
import { keyvalueExports, LinkDrain, runProvider, secretString, type HealthStatus, type ProviderDefinition } from "trellis/provider-sdk";
import { RedisBackend, redactUrl, redisSettings } from "./redis-backend.ts";

/**
 * The provider definition (exported for tests that run it in-process).
 * @param opts.drainMs how long a deleted link's connection keeps answering, in ms. @default DRAIN_MS (3000)
 */
export function kvRedisProvider(opts: { drainMs?: number } = {}): ProviderDefinition<RedisBackend> {
  const backends = new Set<RedisBackend>();
  const drain = new LinkDrain<RedisBackend>(opts.drainMs);
  return {
    name: "kv-redis",
    linkPutAsTarget(link, ctx) {
      // Secrets (docs/security.md): `password` for the Redis AUTH password, or `url` for a whole URL with credentials.
      const settings = redisSettings(link.config, ctx.config(), {
        password:
          secretString(link.secrets, "password") ??
          secretString(link.secrets, "redis_password") ??
          secretString(ctx.secrets(), "default_redis_password"),
        url: secretString(link.secrets, "url"),
      });
      const b = new RedisBackend(settings, ctx.logger.child({ source_id: link.sourceId, link_name: link.name }));
      backends.add(b);
      ctx.logger.info("redis connection for link", { source_id: link.sourceId, link_name: link.name, url: redactUrl(settings.url) });
      return drain.wrap(link.sourceId, link.name, b);
    },
    linkDeleted(_link, b) {
      if (b) backends.delete(b);
    },
    async shutdown() {
      await drain.closeAll();
    },
    health(): HealthStatus {
      const down = [...backends].filter((b) => b.status !== "ready");
      if (down.length === 0) return { healthy: true, message: `${backends.size} connection(s) ready` };
      return { healthy: false, message: down.map((b) => `${redactUrl(b.settings.url)}: ${b.status}`).join("; ") };
    },
    exports: keyvalueExports(drain) as ProviderDefinition<RedisBackend>["exports"],
  };
}

if (import.meta.main) await runProvider(kvRedisProvider());
