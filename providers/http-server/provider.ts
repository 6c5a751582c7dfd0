/**
 * The HTTP server provider: the source of `wasi:http/incoming-handler` links. Every link from this provider to a
 * component opens one listener on the address of the link's source config (`address=127.0.0.1:8000`), so several
 * components are served side by side behind separate links; deleting the link closes its listener
 * (docs/adr/0007-first-party-providers.md).
 *
 * ```sh
 * trellis start provider http-server http-server
 * trellis config put hello-http address=127.0.0.1:8080
 * trellis link put http-server hello wasi http --interface incoming-handler --source-config hello-http
 * curl http://127.0.0.1:8080/
 * ```
 * @module
 */
import type { HealthStatus, ProviderContext, ProviderDefinition, ProviderLink } from "trellis/provider-sdk";
import { HttpListener } from "./listener.ts";
import { listenerSettings } from "./settings.ts";

/** True for a link this provider serves: `wasi:http` with the `incoming-handler` interface. */
export function isIncomingHandlerLink(link: ProviderLink): boolean {
  return link.namespace === "wasi" && link.package === "http" && link.interfaces.includes("incoming-handler");
}

/**
 * The provider definition; the per-link resource is the link's {@link HttpListener} (closed by the SDK when the
 * link is deleted). A put whose address cannot be bound fails (logged; a later put retries it).
 */
export function httpServerProvider(): ProviderDefinition<HttpListener> {
  const listeners = new Set<HttpListener>();
  return {
    name: "http-server",
    async linkPutAsSource(link: ProviderLink, ctx: ProviderContext<HttpListener>): Promise<HttpListener | undefined> {
      if (!isIncomingHandlerLink(link)) {
        ctx.logger.warn("ignoring a link that is not wasi:http/incoming-handler", { target: link.target, package: `${link.namespace}:${link.package}` });
        return undefined;
      }
      const settings = listenerSettings(link.config, ctx.config());
      const listener = await HttpListener.start(
        settings,
        { nc: ctx.nc, lattice: ctx.lattice, providerId: ctx.providerId, componentId: link.target, linkName: link.name, tracing: ctx.tracing },
        ctx.logger.child({ component_id: link.target, link_name: link.name }),
      );
      listeners.add(listener);
      return listener;
    },
    async linkDeleted(_link, listener) {
      if (!listener) return;
      listeners.delete(listener);
      await listener.close();
    },
    health(): HealthStatus {
      const parts = [...listeners].map((l) => `${l.url} → ${l.target.componentId} (${l.stats.requests} requests)`);
      return { healthy: true, message: parts.length ? parts.join("; ") : "no links" };
    },
    async shutdown() {
      await Promise.allSettled([...listeners].map((l) => l.close(500)));
      listeners.clear();
    },
  };
}
