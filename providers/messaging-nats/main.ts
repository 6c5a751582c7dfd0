#!/usr/bin/env node
/**
 * messaging-nats: a first-party capability provider for `wasmcloud:messaging@0.2.0` on NATS (see ./README.md).
 *
 * - As a link **target** (component → provider, interface `consumer`): the component publishes and requests;
 *   `publish(msg)` publishes `msg.body` on `msg.subject` (with `msg.reply-to` as the reply subject), `request`
 *   sends a request and answers the reply as a broker message.
 * - As a link **source** (provider → component, interface `handler`): the provider subscribes to the link's
 *   `subscriptions` (comma-separated subjects, wildcards allowed), in queue group `queue_group` when given, and
 *   calls the component's `handle-message` for every message.
 * - Both connect to `cluster_uris` (comma-separated NATS URLs) when the link's config names them, else they use the
 *   lattice's own NATS connection.
 *
 * Start it from a host: `trellis start provider messaging-nats messaging`; or by hand (a remote provider):
 * `node providers/messaging-nats/main.ts --provider-id messaging --lattice default --nats-url nats://127.0.0.1:4222`.
 * @module
 */
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { runProvider, type ProviderContext, type ProviderDefinition, type ProviderLink } from "trellis/provider-sdk";
import { CONSUMER, HANDLER, type BrokerMessage } from "./wit.ts";
import { messagingSettings } from "./settings.ts";

/** What one link holds: a connection (its own, or the lattice's) and, for handler links, its subscriptions. */
export class MessagingLink {
  readonly nc: NatsConnection;
  readonly #own: boolean;
  readonly #subs: Subscription[] = [];
  constructor(nc: NatsConnection, own: boolean) {
    this.nc = nc;
    this.#own = own;
  }
  /** Keeps a subscription to stop on close. */
  add(sub: Subscription): void {
    this.#subs.push(sub);
  }
  /** Unsubscribes; drains the connection when it is the link's own. */
  async close(): Promise<void> {
    for (const s of this.#subs) s.unsubscribe();
    this.#subs.length = 0;
    if (this.#own && !this.nc.isClosed()) await this.nc.drain().catch(() => undefined);
  }
}

async function open(uris: string[], ctx: ProviderContext<MessagingLink>, link: ProviderLink): Promise<MessagingLink> {
  if (uris.length === 0) return new MessagingLink(ctx.nc, false);
  const nc = await connect({ servers: uris, name: `trellis-messaging-${ctx.providerId}-${link.peerId}`, maxReconnectAttempts: -1 });
  return new MessagingLink(nc, true);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The provider definition (exported for tests that run it in-process). */
export function messagingNatsProvider(): ProviderDefinition<MessagingLink> {
  return {
    name: "messaging-nats",
    async linkPutAsTarget(link, ctx) {
      const s = messagingSettings(link.config, ctx.config());
      const ml = await open(s.clusterUris, ctx, link);
      ctx.logger.info("messaging consumer link", { source_id: link.sourceId, link_name: link.name, own_connection: s.clusterUris.length > 0 });
      return ml;
    },
    async linkPutAsSource(link, ctx) {
      const s = messagingSettings(link.config, ctx.config());
      const ml = await open(s.clusterUris, ctx, link);
      for (const subject of s.subscriptions) {
        const sub = ml.nc.subscribe(subject, {
          ...(s.queueGroup ? { queue: s.queueGroup } : {}),
          callback: (err, m) => {
            if (err) return;
            const msg: BrokerMessage = { subject: m.subject, body: m.data, replyTo: m.reply || undefined };
            ctx
              .call(link, HANDLER.name, "handle-message", HANDLER.functions["handle-message"]!, [msg], { timeoutMs: s.handlerTimeoutMs })
              .then((r) => {
                const res = r as { tag: string; val?: string };
                if (res.tag === "err") ctx.logger.warn("handle-message answered an error", { target: link.target, subject: m.subject, error: res.val });
              })
              .catch((e: unknown) => ctx.logger.warn("handle-message failed", { target: link.target, subject: m.subject, error: errText(e) }));
          },
        });
        ml.add(sub);
      }
      await ml.nc.flush();
      ctx.logger.info("messaging handler link", { target: link.target, link_name: link.name, subscriptions: s.subscriptions, queue_group: s.queueGroup });
      return ml;
    },
    exports: [
      {
        type: CONSUMER,
        handlers: {
          publish: async (msg: BrokerMessage, call: { resource: MessagingLink | undefined }) => {
            const ml = call.resource!;
            try {
              ml.nc.publish(msg.subject, msg.body, msg.replyTo ? { reply: msg.replyTo } : undefined);
              await ml.nc.flush();
              return { tag: "ok" };
            } catch (e) {
              return { tag: "err", val: errText(e) };
            }
          },
          request: async (subject: string, body: Uint8Array, timeoutMs: number, call: { resource: MessagingLink | undefined }) => {
            const ml = call.resource!;
            try {
              const m = await ml.nc.request(subject, body, { timeout: Math.max(1, timeoutMs) });
              return { tag: "ok", val: { subject: m.subject, body: m.data, replyTo: m.reply || undefined } satisfies BrokerMessage };
            } catch (e) {
              return { tag: "err", val: errText(e) };
            }
          },
        },
      },
    ],
  };
}

if (import.meta.main) await runProvider(messagingNatsProvider());
