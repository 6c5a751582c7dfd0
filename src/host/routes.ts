/**
 * Control-interface handlers for the verbs the host itself answers: host, label, link and config
 * (reference §1.4). Component and provider verbs are delegated to the workload managers.
 * @module
 */
import { type CtlResponse, ok } from "../core/envelope.ts";
import { EventType } from "../core/events.ts";
import { ErrorCode, InvalidArgumentError, TrellisError } from "../core/errors.ts";
import { validateId, validateLabel } from "../core/ids.ts";
import type { EventPublisher } from "../core/ports.ts";
import type { HostInfo, HostInventory } from "../core/host.ts";
import type { LinkService } from "../link/service.ts";
import { type ConfigStore, parseConfigMap } from "../lattice/config-store.ts";
import { type CtlHandler, type CtlRoutes, parseJsonBody, parseObjectBody } from "./control-server.ts";
import { withKvDeadline } from "../lattice/kv.ts";
import type { ComponentManager, ProviderManager } from "./workloads.ts";
import type { ClaimsStore } from "../lattice/claims-store.ts";

/** What the handlers need from the host. */
export interface RouteContext {
  hostId: string;
  info(): HostInfo;
  inventory(): HostInventory;
  labels: Map<string, string>;
  links: LinkService;
  config: ConfigStore;
  events: EventPublisher;
  components(): ComponentManager | undefined;
  providers(): ProviderManager | undefined;
  /** Stored claims (`CLAIMS_{subject}`), for `claims.get`. */
  claims?: ClaimsStore;
  /** Stops the host after the reply has gone out; `timeoutMs` bounds the shutdown. */
  requestStop(timeoutMs: number | undefined): void;
}

function requireString(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (v === undefined || v === null) throw new InvalidArgumentError(field, `${field} is required`);
  if (typeof v !== "string") throw new InvalidArgumentError(field, `${field} must be a string, got ${typeof v}`);
  return v;
}

function notAvailable(what: string): CtlResponse {
  throw new TrellisError(ErrorCode.IllegalState, `${what} are not available on this host`);
}

/**
 * Reads a `ComponentAuctionRequest` / `ProviderAuctionRequest` (reference §1.4): `{kind}_ref` (default ""),
 * `{kind}_id` (required), `constraints` (required map string → string).
 * @throws InvalidArgumentError naming the bad field; TrellisError `INVALID_ARGUMENT` "unsupported subject" when the
 *   subject had a token after `auction`.
 */
function parseAuction(
  payload: Uint8Array,
  kind: "component" | "provider",
  arg: string | undefined,
): { ref: string; id: string; constraints: Record<string, string> } {
  // `{kind}.auction.{host}` reaches a host through its per-host subscription; auctions are not host-addressed.
  if (arg !== undefined) throw new TrellisError(ErrorCode.InvalidArgument, "unsupported subject", { details: { subject: `${kind}.auction.${arg}` } });
  const body = parseObjectBody(payload, `${kind}.auction`);
  const refField = `${kind}_ref`;
  const ref = body[refField] ?? "";
  if (typeof ref !== "string") throw new InvalidArgumentError(refField, `${refField} must be a string, got ${typeof ref}`);
  const id = validateId(`${kind}_id`, requireString(body, `${kind}_id`));
  const c = body.constraints;
  if (c === undefined || c === null) throw new InvalidArgumentError("constraints", "constraints is required (a map of label → value; {} matches every host)");
  if (typeof c !== "object" || Array.isArray(c)) throw new InvalidArgumentError("constraints", "constraints must be a map of label → value");
  const constraints: Record<string, string> = {};
  for (const [k, v] of Object.entries(c)) {
    if (typeof v !== "string") throw new InvalidArgumentError("constraints", `constraint ${k} must have a string value`);
    constraints[k] = v;
  }
  return { ref, id, constraints };
}

/** Every constraint key is a label of this host with exactly that value (reference §1.4 auctions). */
function labelsMatch(labels: ReadonlyMap<string, string>, constraints: Record<string, string>): boolean {
  return Object.entries(constraints).every(([k, v]) => labels.get(k) === v);
}

/**
 * Deadline of a control operation on lattice data (link and config verbs), in ms: shorter than the control client's
 * default 2000 ms timeout, so that while JetStream is unavailable (leader election, no quorum) the client gets a
 * `JETSTREAM_UNAVAILABLE` error envelope instead of silence (ADR 0015).
 */
export const CTL_KV_DEADLINE_MS = 1_500;

/** Wraps a handler whose work is on JetStream KV with {@link withKvDeadline}. */
function onKv(verb: string, handler: CtlHandler, deadlineMs = CTL_KV_DEADLINE_MS): CtlHandler {
  return (payload, arg) => withKvDeadline(verb, deadlineMs, async () => handler(payload, arg));
}

/** The routing table of the control server (`noun.verb` → handler). */
export function hostRoutes(ctx: RouteContext): CtlRoutes {
  const routes: CtlRoutes = {
    "host.ping": () => ok("", ctx.info()),
    "host.get": () => ok("", ctx.inventory()),
    "host.stop": (payload) => {
      const body = parseObjectBody(payload, "host.stop", false);
      if (body.host_id !== undefined && body.host_id !== "" && body.host_id !== ctx.hostId) {
        throw new InvalidArgumentError("host_id", `invalid host_id [${String(body.host_id)}]: this host is ${ctx.hostId}`);
      }
      const t = body.timeout;
      if (t !== undefined && t !== null && (typeof t !== "number" || !Number.isFinite(t) || t < 0)) {
        throw new InvalidArgumentError("timeout", "timeout must be a non-negative number of milliseconds");
      }
      ctx.requestStop(typeof t === "number" ? t : undefined);
      return ok("successfully handled stop host");
    },

    "label.put": (payload) => {
      const body = parseObjectBody(payload, "label.put");
      const key = requireString(body, "key");
      const value = requireString(body, "value");
      if (!key) throw new InvalidArgumentError("key", "key must not be empty");
      if (key.toLowerCase().startsWith("hostcore.")) {
        throw new InvalidArgumentError("key", "hostcore.* labels cannot be set dynamically");
      }
      validateLabel("key", key, value);
      ctx.labels.set(key, value);
      ctx.events.publish(EventType.LabelsChanged, { host_id: ctx.hostId, labels: Object.fromEntries(ctx.labels) });
      return ok("successfully put label");
    },
    "label.del": (payload) => {
      const body = parseObjectBody(payload, "label.del");
      const key = requireString(body, "key");
      if (key.toLowerCase().startsWith("hostcore.")) {
        throw new InvalidArgumentError("key", "hostcore.* labels cannot be deleted");
      }
      if (!ctx.labels.delete(key)) return ok("successfully deleted label (no such label)");
      ctx.events.publish(EventType.LabelsChanged, { host_id: ctx.hostId, labels: Object.fromEntries(ctx.labels) });
      return ok("successfully deleted label");
    },

    "link.put": async (payload) => {
      const { outcome, warnings } = await ctx.links.putChecked(parseJsonBody(payload, "link.put"));
      const message = outcome === "created" ? "successfully set link" : "successfully set link (identical link already exists)";
      return ok(warnings.length ? `${message}; warning: ${warnings.map((w) => w.message).join("; ")}` : message);
    },
    "link.del": async (payload) => {
      const removed = await ctx.links.delete(parseJsonBody(payload, "link.del"));
      return ok(removed.length > 0 ? "successfully deleted link" : "successfully deleted link (spec doesn't exist)");
    },
    "link.get": async () => ok("successfully retrieved links", await ctx.links.list()),
    "link.replace": async (payload) => {
      const res = await ctx.links.replace(parseJsonBody(payload, "link.replace"));
      return ok(`successfully replaced link (${res.removed.length} deleted, new link ${res.outcome})`);
    },

    "config.put": async (payload, name) => {
      const n = validateId("config name", name);
      const values = parseConfigMap(parseJsonBody(payload, "config.put"));
      await ctx.config.put(n, values);
      ctx.events.publish(EventType.ConfigSet, { config_name: n });
      return ok("successfully put config");
    },
    "config.get": async (_payload, name) => {
      const n = validateId("config name", name);
      const values = await ctx.config.get(n);
      return values === undefined ? ok("Configuration not found") : ok("successfully retrieved config", values);
    },
    "config.del": async (_payload, name) => {
      const n = validateId("config name", name);
      await ctx.config.delete(n);
      ctx.events.publish(EventType.ConfigDeleted, { config_name: n });
      return ok("successfully deleted config");
    },

    "component.auction": (payload, arg) => {
      const req = parseAuction(payload, "component", arg);
      const running = ctx.components()?.inventory().some((c) => c.id === req.id) ?? false;
      if (ctx.components() === undefined || running || !labelsMatch(ctx.labels, req.constraints)) return undefined;
      return ok("", { component_ref: req.ref, component_id: req.id, host_id: ctx.hostId, constraints: req.constraints });
    },
    "provider.auction": (payload, arg) => {
      const req = parseAuction(payload, "provider", arg);
      const running = ctx.providers()?.inventory().some((p) => p.id === req.id) ?? false;
      if (ctx.providers() === undefined || running || !labelsMatch(ctx.labels, req.constraints)) return undefined;
      return ok("", { host_id: ctx.hostId, provider_ref: req.ref, provider_id: req.id, constraints: req.constraints });
    },
    "claims.get": async () => ok("successfully retrieved claims", (await ctx.claims?.list()) ?? []),

    "component.scale": (payload) => ctx.components()?.handleScale(payload) ?? notAvailable("components"),
    "component.update": (payload) => ctx.components()?.handleUpdate(payload) ?? notAvailable("components"),
    "provider.start": (payload) => ctx.providers()?.handleStart(payload) ?? notAvailable("capability providers"),
    "provider.stop": (payload) => ctx.providers()?.handleStop(payload) ?? notAvailable("capability providers"),
  };
  for (const key of Object.keys(routes)) {
    if (key.startsWith("link.") || key.startsWith("config.")) routes[key] = onKv(key, routes[key]!);
  }
  return routes;
}

