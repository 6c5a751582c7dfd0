#!/usr/bin/env node
/**
 * http-client: a first-party capability provider serving `wasi:http/outgoing-handler` in the carried form
 * (docs/protocol.md §9): what components' outgoing HTTP requests reach through a link
 * (`trellis link put my-component http-client wasi http --interface outgoing-handler`). See ./client.ts for the
 * link config (`base_url`, `timeout_ms`, `max_response_bytes`) and the error mapping.
 *
 * Start it from a host: `trellis start provider http-client http-client`; or by hand (a remote provider):
 * `node providers/http-client/main.ts --provider-id http-client --lattice default --nats-url nats://127.0.0.1:4222`.
 * @module
 */
import { ErrorCode, OUTGOING_HANDLER_TYPE, runProvider, TrellisError, type HttpRequest, type ProviderDefinition } from "trellis/provider-sdk";
import { clientSettings, LinkHttpClient } from "./client.ts";

type Call = { resource: LinkHttpClient | undefined; request: { timeoutMs: number | undefined } };

/** The provider definition (exported for tests that run it in-process). */
export function httpClientProvider(): ProviderDefinition<LinkHttpClient> {
  return {
    name: "http-client",
    linkPutAsTarget(link, ctx) {
      const settings = clientSettings(link.config, ctx.config());
      ctx.logger.info("http client for link", { source_id: link.sourceId, link_name: link.name, base_url: settings.baseUrl?.href });
      return new LinkHttpClient(settings);
    },
    exports: [
      {
        type: OUTGOING_HANDLER_TYPE,
        handlers: {
          handle: (request: HttpRequest, call: Call) => {
            const client = call.resource;
            if (!client) throw new TrellisError(ErrorCode.LinkNotFound, "no http-client link for this caller");
            const budget = call.request.timeoutMs;
            return client.send(request, budget === undefined ? undefined : Math.max(1, budget - 50));
          },
        },
      },
    ],
  };
}

if (import.meta.main) await runProvider(httpClientProvider());
