/**
 * The dashboard's HTTP side (docs/dashboard.md, ADR 0027): a hono app that serves the static page (`web/` and the ESM
 * files of preact, htm and cytoscape from node_modules), the lattice picture as JSON and as a Server-Sent Events
 * stream, and a few state-changing endpoints that call the same {@link CtlClient} methods as the CLI.
 *
 * Guards: every request must name this server in `Host` (no DNS rebinding); every state-changing request must carry
 * the per-process token in `X-Trellis-Token` (the page reads it from its own HTML) and, when the browser sends one, an
 * `Origin` equal to this server's. NATS credentials never leave the process.
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Hono, type Context } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import type { CtlClient } from "../control/client.ts";
import { TrellisError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { LatticeView, ViewEvent } from "./view.ts";

/** The page's directory (`web/` at the repository root). */
export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "web");

/** Header carrying the per-process token on state-changing requests. */
export const TOKEN_HEADER = "x-trellis-token";

/** Minimum gap between two state snapshots sent on one stream, in ms. */
export const SNAPSHOT_THROTTLE_MS = 150;

/** The directory of an installed npm package (where `import` finds it). */
function packageDir(name: string): string {
  const entry = fileURLToPath(import.meta.resolve(name));
  const marker = `${path.sep}node_modules${path.sep}${name}${path.sep}`;
  const i = entry.lastIndexOf(marker);
  if (i < 0) throw new TrellisError("INTERNAL", `cannot find the package directory of ${name}`);
  return entry.slice(0, i + marker.length - 1);
}

/** Files the page may load: URL path → file. Nothing else is served from disk. */
function staticFiles(): Record<string, string> {
  return {
    "/app.js": path.join(WEB_DIR, "app.js"),
    "/graph.js": path.join(WEB_DIR, "graph.js"),
    "/style.css": path.join(WEB_DIR, "style.css"),
    "/vendor/preact.mjs": path.join(packageDir("preact"), "dist", "preact.mjs"),
    "/vendor/preact-hooks.mjs": path.join(packageDir("preact"), "hooks", "dist", "hooks.mjs"),
    "/vendor/htm.mjs": path.join(packageDir("htm"), "dist", "htm.mjs"),
    "/vendor/cytoscape.mjs": path.join(packageDir("cytoscape"), "dist", "cytoscape.esm.min.mjs"),
  };
}

const TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

const linkBody = z.object({
  source_id: z.string().min(1),
  target: z.string().min(1),
  wit_namespace: z.string().min(1),
  wit_package: z.string().min(1),
  interfaces: z.array(z.string().min(1)).min(1),
  name: z.string().min(1).optional(),
  source_config: z.array(z.string()).optional(),
  target_config: z.array(z.string()).optional(),
});
const linkKeyBody = z.object({
  source_id: z.string().min(1),
  wit_namespace: z.string().min(1),
  wit_package: z.string().min(1),
  name: z.string().min(1).optional(),
  target: z.string().min(1).optional(),
});
const configBody = z.object({ name: z.string().min(1), values: z.record(z.string(), z.string()) });
const scaleBody = z.object({
  host_id: z.string().min(1),
  component_id: z.string().min(1),
  component_ref: z.string().min(1),
  count: z.number().int().min(0).max(10_000),
});

/** What {@link createDashboardApp} needs. */
export interface DashboardAppOptions {
  view: LatticeView;
  client: CtlClient;
  logger: Logger;
  /** The per-process token state-changing requests must carry. */
  token: string;
  /** `Host` header values this server answers to (e.g. `127.0.0.1:8088`, `localhost:8088`); checked lower-case. */
  hosts: () => readonly string[];
}

/** The app plus `closeStreams()`, which ends every open event stream (for shutdown). */
export interface DashboardApp {
  app: Hono;
  closeStreams(): void;
}

function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function fail(c: Context, status: 400 | 403 | 404 | 500 | 502, code: string, message: string): Response {
  return c.json({ success: false, error: { code, message } }, status);
}

/** Builds the dashboard's hono app over a started {@link LatticeView}. */
export async function createDashboardApp(opts: DashboardAppOptions): Promise<DashboardApp> {
  const { view, client, logger, token } = opts;
  const files = new Map<string, { body: string; type: string }>();
  for (const [url, file] of Object.entries(staticFiles())) {
    // preact's hooks import the bare specifier "preact": point it at our copy (no import map, so the CSP needs no inline script).
    const body = (await readFile(file, "utf8")).replace(/from\s*(["'])preact\1/g, 'from"/vendor/preact.mjs"');
    files.set(url, { body, type: TYPES[path.extname(file)] ?? "application/octet-stream" });
  }
  const indexHtml = (await readFile(path.join(WEB_DIR, "index.html"), "utf8")).replace("__TRELLIS_TOKEN__", token);
  const closers = new Set<() => void>();
  const app = new Hono();

  app.use("*", async (c, next) => {
    const host = (c.req.header("host") ?? "").toLowerCase();
    if (!opts.hosts().includes(host)) return fail(c, 403, "FORBIDDEN", "unexpected Host header");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("X-Frame-Options", "DENY");
    c.header("Referrer-Policy", "no-referrer");
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      const origin = c.req.header("origin");
      if (origin !== undefined && origin.toLowerCase() !== `http://${host}`) return fail(c, 403, "FORBIDDEN", "cross-origin request refused");
      if (!sameToken(c.req.header(TOKEN_HEADER), token)) return fail(c, 403, "FORBIDDEN", `missing or wrong ${TOKEN_HEADER} header`);
      if (!(c.req.header("content-type") ?? "").startsWith("application/json") && c.req.method !== "DELETE") {
        return fail(c, 400, "INVALID_ARGUMENT", "expected a JSON body");
      }
    }
    await next();
  });

  app.get("/", (c) => {
    c.header("Cache-Control", "no-store");
    c.header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'");
    return c.html(indexHtml);
  });
  app.get("*", async (c, next) => {
    const f = files.get(c.req.path);
    if (!f) return next();
    c.header("Content-Type", f.type);
    c.header("Cache-Control", "no-cache");
    return c.body(f.body);
  });

  app.get("/api/state", (c) => c.json(view.snapshot()));
  app.get("/api/events", (c) => c.json(view.recentEvents()));

  app.get("/api/stream", (c) =>
    streamSSE(c, async (stream) => {
      let closed = false;
      let timer: NodeJS.Timeout | undefined;
      let last = 0;
      const queue: Promise<void>[] = [];
      const send = (event: string, data: unknown) => {
        if (closed) return;
        queue.push(stream.writeSSE({ event, data: JSON.stringify(data) }).catch(() => undefined));
      };
      const sendState = () => {
        timer = undefined;
        last = Date.now();
        send("state", view.snapshot());
      };
      const offChange = view.onChange(() => {
        if (timer) return;
        timer = setTimeout(sendState, Math.max(0, SNAPSHOT_THROTTLE_MS - (Date.now() - last)));
      });
      const offEvent = view.onEvent((e: ViewEvent) => send("event", e));
      send("events", view.recentEvents());
      sendState();
      const ping = setInterval(() => send("ping", Date.now()), 15_000);
      await new Promise<void>((resolve) => {
        const end = () => {
          closed = true;
          resolve();
        };
        closers.add(end);
        stream.onAbort(end);
      });
      clearInterval(ping);
      if (timer) clearTimeout(timer);
      offChange();
      offEvent();
      await Promise.all(queue);
    }),
  );

  const act = async (c: Context, fn: () => Promise<string>): Promise<Response> => {
    try {
      return c.json({ success: true, message: await fn() });
    } catch (err) {
      const e = TrellisError.from(err);
      logger.info("dashboard: request failed", { path: c.req.path, code: e.code, error: e.message });
      return fail(c, e.code === "INVALID_ARGUMENT" ? 400 : 502, e.code, e.message);
    }
  };
  const body = async <T>(c: Context, schema: z.ZodType<T>): Promise<T | Response> => {
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      return fail(c, 400, "INVALID_ARGUMENT", "the body is not JSON");
    }
    const r = schema.safeParse(raw);
    if (!r.success) return fail(c, 400, "INVALID_ARGUMENT", r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "));
    return r.data;
  };

  app.post("/api/links", async (c) => {
    const l = await body(c, linkBody);
    return l instanceof Response ? l : act(c, () => client.putLink(l));
  });
  app.post("/api/links/delete", async (c) => {
    const k = await body(c, linkKeyBody);
    return k instanceof Response ? k : act(c, () => client.deleteLink(k));
  });
  app.post("/api/configs", async (c) => {
    const b = await body(c, configBody);
    return b instanceof Response ? b : act(c, () => client.putConfig(b.name, b.values));
  });
  app.delete("/api/configs/:name", (c) => act(c, () => client.deleteConfig(c.req.param("name"))));
  app.post("/api/components/scale", async (c) => {
    const b = await body(c, scaleBody);
    if (b instanceof Response) return b;
    return act(c, async () => {
      const message = await client.scaleComponent(b.host_id, { component_ref: b.component_ref, component_id: b.component_id, count: b.count });
      view.refreshHostSoon(b.host_id, 300);
      return message;
    });
  });

  app.notFound((c) => fail(c, 404, "NOT_FOUND", "not found"));
  return {
    app,
    closeStreams: () => {
      for (const end of closers) end();
      closers.clear();
    },
  };
}
