/**
 * The web dashboard (`trellis ui`, docs/dashboard.md, ADR 0027): a local HTTP server that follows one lattice and shows
 * it live — the link graph, hosts, components, providers, configs, apps, events and per-component / per-link figures —
 * and can put and delete links and configs and scale components.
 *
 * ```ts
 * const ui = await startDashboard({ natsUrl: "nats://127.0.0.1:4222", lattice: "default" });
 * console.log(ui.url); // http://127.0.0.1:8088/
 * await ui.close();
 * ```
 * @module
 */
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { serve, type ServerType } from "@hono/node-server";
import { z } from "zod";
import { CtlClient } from "../control/client.ts";
import type { NatsAuthOptions } from "../core/connection.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { type Logger, silentLogger } from "../core/logger.ts";
import { DEFAULT_UI_LISTEN } from "./defaults.ts";
import { createDashboardApp } from "./server.ts";
import { LatticeView } from "./view.ts";

export { LatticeView, linkKey, mergeFigures, parseMetrics, redactConfig } from "./view.ts";
export type { CallFigures, HostMetrics, LinkFigures, ViewApp, ViewConfig, ViewEvent, ViewFigures, ViewHost, ViewSnapshot } from "./view.ts";
export { TOKEN_HEADER } from "./server.ts";

export { DEFAULT_UI_LISTEN } from "./defaults.ts";

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /**
   * `HOST:PORT` to listen on (`[::1]:PORT` for IPv6; port 0 picks a free one). Anything but a loopback address lets
   * whoever reaches it see and change the lattice: the logger is warned. @default {@link DEFAULT_UI_LISTEN}
   */
  listen?: string;
  /** NATS URL(s), comma-separated. @default "nats://127.0.0.1:4222" */
  natsUrl?: string;
  /** Lattice name. @default "default" */
  lattice?: string;
  /** Credentials and TLS of the NATS connection (the CLI's global `--nats-*` options); never sent to the page. */
  natsAuth?: NatsAuthOptions;
  /** Timeout of each control request, in ms. @default 2000 */
  timeoutMs?: number;
  /** An existing control client to use instead of connecting (it is not closed by `close()`). */
  client?: CtlClient;
  /** Period of `host.ping` + `host.get` polling (inventories and their `metrics`), in ms (≥ 200). @default 2000 */
  inventoryIntervalMs?: number;
  /** Period of app status polling, in ms (≥ 500). @default 5000 */
  appsIntervalMs?: number;
  /** @default a silent logger */
  logger?: Logger;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://HOST:PORT/` (the port actually bound). */
  url: string;
  /** Stops the server, its event streams, the lattice view and (unless it was given) the control client. */
  close(): Promise<void>;
}

const optionsSchema = z.object({
  listen: z.string().min(1),
  inventoryIntervalMs: z.number().int().min(200).optional(),
  appsIntervalMs: z.number().int().min(500).optional(),
});

/**
 * Parses `HOST:PORT` (`[v6]:PORT` for IPv6).
 * @throws InvalidArgumentError (`listen`) for anything else or a port outside 0–65535.
 */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65_535) throw new InvalidArgumentError("listen", `--listen must be HOST:PORT (e.g. ${DEFAULT_UI_LISTEN}), got ${JSON.stringify(listen)}`);
  return { host: (m[1] ?? m[2])!, port };
}

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The `Host` header values a server bound to `host`:`port` answers to: the bound name; for loopback also `localhost`,
 * `127.0.0.1` and `[::1]`; for a wildcard bind (`0.0.0.0`, `::`) every address of this machine's interfaces and its
 * host name. Anything else is refused (DNS rebinding).
 */
export function hostHeaders(host: string, port: number): string[] {
  const name = (h: string) => `${h.includes(":") ? `[${h}]` : h}:${port}`.toLowerCase();
  const out = new Set([name(host)]);
  if (isLoopback(host) || host === "0.0.0.0" || host === "::") for (const h of ["localhost", "127.0.0.1", "::1"]) out.add(name(h));
  if (host === "0.0.0.0" || host === "::") {
    out.add(name(os.hostname()));
    for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) out.add(name(a.address.replace(/%.*$/, "")));
  }
  return [...out];
}

/**
 * Starts the dashboard: connects to the lattice (unless `client` is given), loads the picture, and serves it.
 * @throws InvalidArgumentError for a bad `listen` or interval; TrellisError `LATTICE_ERROR` when NATS cannot be reached;
 *   the listen error (`EADDRINUSE`, …) when the address cannot be bound.
 */
export async function startDashboard(opts: DashboardOptions = {}): Promise<Dashboard> {
  const parsed = optionsSchema.safeParse({ listen: opts.listen ?? DEFAULT_UI_LISTEN, inventoryIntervalMs: opts.inventoryIntervalMs, appsIntervalMs: opts.appsIntervalMs });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidArgumentError(String(issue.path[0] ?? "options"), `${String(issue.path[0] ?? "options")}: ${issue.message}`);
  }
  const { host, port } = parseListen(parsed.data.listen);
  const logger = opts.logger ?? silentLogger;
  if (!isLoopback(host)) logger.warn("the dashboard listens beyond loopback: whoever reaches it can see and change the lattice", { listen: parsed.data.listen });
  const client =
    opts.client ?? (await CtlClient.connect({ natsUrl: opts.natsUrl, lattice: opts.lattice, timeoutMs: opts.timeoutMs, natsAuth: opts.natsAuth }));
  const view = new LatticeView({
    client,
    logger,
    ...(parsed.data.inventoryIntervalMs ? { inventoryIntervalMs: parsed.data.inventoryIntervalMs } : {}),
    ...(parsed.data.appsIntervalMs ? { appsIntervalMs: parsed.data.appsIntervalMs } : {}),
  });
  let server: ServerType | undefined;
  let closeStreams = () => {};
  try {
    await view.start();
    let hostNames: string[] = [];
    const web = await createDashboardApp({ view, client, logger, token: randomBytes(32).toString("base64url"), hosts: () => hostNames });
    closeStreams = web.closeStreams;
    server = await new Promise<ServerType>((resolve, reject) => {
      const s = serve({ fetch: web.app.fetch, hostname: host, port }, () => resolve(s));
      s.once("error", reject);
    });
    const bound = (server.address() as AddressInfo).port;
    const shown = host.includes(":") ? `[${host}]` : host;
    hostNames = hostHeaders(host, bound);
    const url = `http://${shown}:${bound}/`;
    logger.info("dashboard listening", { url, lattice: client.lattice });
    const srv = server;
    return {
      url,
      close: async () => {
        closeStreams();
        view.stop();
        await new Promise<void>((resolve) => {
          srv.close(() => resolve());
          if ("closeAllConnections" in srv) srv.closeAllConnections();
        });
        if (!opts.client) await client.close();
      },
    };
  } catch (err) {
    closeStreams();
    view.stop();
    server?.close();
    if (!opts.client) await client.close();
    throw err;
  }
}
