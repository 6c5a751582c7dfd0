#!/usr/bin/env node
/**
 * kv-nats: a first-party capability provider serving `wasi:keyvalue` `store`, `atomics` and `batch`
 * @0.2.0-draft from a NATS JetStream KV bucket (link target config `bucket`, default `wasi_keyvalue`; `url` to use
 * another NATS server than the lattice's; `js_domain`). See ./nats-backend.ts for the key mapping.
 *
 * Start it from a host: `trellis start provider kv-nats kv-nats`; or by hand (a remote provider):
 * `node providers/kv-nats/main.ts --provider-id kv-nats --lattice default --nats-url nats://127.0.0.1:4222`.
 * @module
 */
import { keyvalueExports, LinkDrain, runProvider, type ProviderDefinition } from "trellis/provider-sdk";
import { NatsKvBackend, natsKvSettings } from "./nats-backend.ts";

/**
 * The provider definition (exported for tests that run it in-process).
 * @param opts.drainMs how long a deleted link's backend keeps answering, in ms. @default DRAIN_MS (3000)
 */
export function kvNatsProvider(opts: { drainMs?: number } = {}): ProviderDefinition<NatsKvBackend> {
  const drain = new LinkDrain<NatsKvBackend>(opts.drainMs);
  return {
    name: "kv-nats",
    async linkPutAsTarget(link, ctx) {
      const settings = natsKvSettings(link.config, ctx.config());
      const b = await NatsKvBackend.open(settings, ctx.nc);
      ctx.logger.info("JetStream KV bucket for link", { source_id: link.sourceId, link_name: link.name, bucket: settings.bucket });
      return drain.wrap(link.sourceId, link.name, b);
    },
    async shutdown() {
      await drain.closeAll();
    },
    health: (ctx) => (ctx.nc.isClosed() ? { healthy: false, message: "NATS connection closed" } : { healthy: true }),
    exports: keyvalueExports(drain) as ProviderDefinition<NatsKvBackend>["exports"],
  };
}

if (import.meta.main) await runProvider(kvNatsProvider());
