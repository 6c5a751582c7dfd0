/**
 * `trellis start provider REF ID` and `trellis stop provider ID` (issue 4 §8; docs/protocol.md "Provider contract").
 *
 * Start sends `provider.start` to a host, then waits for the provider's first health answer
 * (`health_check_passed`, or `health_check_failed` / `provider_start_failed`) so that the command tells whether the
 * provider actually works. Stop sends `provider.stop` to every host that runs the id (or the one given).
 * @module
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { looksLikeOciRef } from "../../oci/index.ts";
import type { CtlClient } from "../../control/client.ts";
import { auctionHost, inventories } from "../placement.ts";
import { ErrorCode, NotFoundError, TrellisError } from "../../core/errors.ts";
import { EventType, type CloudEvent } from "../../core/events.ts";
import { eventSubject } from "../../core/subjects.ts";
import { type CliContext, parsePairs, parsePositiveInt } from "../context.ts";

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Default wait for the first health answer after a start, in milliseconds. */
const DEFAULT_WAIT_MS = 15_000;

/**
 * The reference as the host should see it: a relative path becomes absolute (the host resolves paths in its own
 * working directory); first-party names, absolute paths, URLs and OCI references pass unchanged.
 */
export function hostProviderRef(ref: string, cwd = process.cwd()): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref) || path.isAbsolute(ref) || (looksLikeOciRef(ref) && !existsSync(path.resolve(cwd, ref)))) return ref;
  if (ref.includes("/") || ref.startsWith(".")) return path.resolve(cwd, ref);
  return ref;
}

/** Hosts whose inventory lists provider `id`, with its status. */
async function hostsRunning(client: CtlClient, id: string): Promise<{ hostId: string; status: string | undefined }[]> {
  return (await inventories(client)).flatMap((inv) =>
    inv.providers.filter((p) => p.id === id).map((p) => ({ hostId: inv.host_id, status: p.status })),
  );
}

type Outcome = { kind: "healthy" | "unhealthy" | "failed"; data: Record<string, unknown> } | { kind: "timeout" };

/** Subscribes to the provider's outcome events, runs `send`, and waits up to `waitMs` for the first outcome. */
async function startAndWait(client: CtlClient, id: string, waitMs: number, send: () => Promise<string>): Promise<{ message: string; outcome: Outcome }> {
  const kinds: [string, "healthy" | "unhealthy" | "failed"][] = [
    [EventType.HealthCheckPassed, "healthy"],
    [EventType.HealthCheckFailed, "unhealthy"],
    [EventType.ProviderStartFailed, "failed"],
  ];
  const subs = kinds.map(([name]) => client.nc.subscribe(eventSubject(client.lattice, name)));
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = new Promise<Outcome>((resolve) => {
      subs.forEach((sub, i) => {
        void (async () => {
          for await (const m of sub) {
            const ev = m.json<CloudEvent>();
            if (ev.data["provider_id"] === id) return resolve({ kind: kinds[i]![1], data: ev.data });
          }
        })();
      });
      timer = setTimeout(() => resolve({ kind: "timeout" }), waitMs);
    });
    await client.nc.flush();
    const message = await send();
    return { message, outcome: await outcome };
  } finally {
    clearTimeout(timer);
    for (const s of subs) s.unsubscribe();
  }
}

/** Registers `start provider` and `stop provider`. */
export function registerProviderCommands(program: Command, ctx: CliContext): void {
  const start = program.commands.find((c) => c.name() === "start") ?? program.command("start").description("start a workload");
  start
    .command("provider <ref> <id>")
    .description(
      "start a capability provider (provider.start): REF is a path or file:// URL to any executable, or a first-party " +
        "provider name (kv-memory, …); waits for its first health answer",
    )
    .option("--config <name>", "the provider's named config, merged left to right (repeat)", collect)
    .option("--annotation <key=value>", "annotation (repeat)", collect)
    .option("--host-id <id>", "host to run on (default: the first host that bids in a provider.auction)")
    .option("-c, --constraint <label=value>", "without --host-id: only hosts with this label bid in the auction (repeat)", collect)
    .option("--wait-ms <ms>", `how long to wait for the first health answer, ms (default ${DEFAULT_WAIT_MS})`)
    .action(
      ctx.action(async (ref: string, id: string, o: { config?: string[]; annotation?: string[]; hostId?: string; waitMs?: string; constraint?: string[] }) => {
        const waitMs = o.waitMs === undefined ? DEFAULT_WAIT_MS : parsePositiveInt("--wait-ms", o.waitMs);
        const annotations = parsePairs("--annotation", o.annotation ?? []);
        const client = await ctx.client();
        const providerRef = hostProviderRef(ref);
        const hostId = o.hostId ?? (await auctionHost(client, "provider", providerRef, id, parsePairs("--constraint", o.constraint ?? [])));
        const { outcome } = await startAndWait(client, id, waitMs, () =>
          client.startProvider(hostId, { provider_id: id, provider_ref: providerRef, ...(o.config ? { config: o.config } : {}), ...(Object.keys(annotations).length ? { annotations } : {}) }),
        );
        if (outcome.kind === "failed") {
          throw new TrellisError(ErrorCode.Provider, `provider ${id} failed to start on host ${hostId}: ${String(outcome.data["error"])}`, { details: outcome.data });
        }
        if (outcome.kind === "unhealthy") {
          throw new TrellisError(ErrorCode.Provider, `provider ${id} started on host ${hostId} but is unhealthy: ${String(outcome.data["message"] ?? "no message")}`, { details: outcome.data });
        }
        const status = outcome.kind === "healthy" ? "running" : ((await client.getInventory(hostId)).providers.find((p) => p.id === id)?.status ?? "unknown");
        const text =
          outcome.kind === "healthy"
            ? `provider ${id} started on host ${hostId} and is healthy`
            : `provider ${id} started on host ${hostId}; no health answer within ${waitMs} ms (status: ${status}; see \`trellis get inventory\`)`;
        return { text, json: { success: true, host_id: hostId, provider_id: id, provider_ref: providerRef, status } };
      }),
    );

  const stop = program.commands.find((c) => c.name() === "stop") ?? program.command("stop").description("stop a workload");
  stop
    .command("provider <id>")
    .description("stop a capability provider (provider.stop) on every host that runs it, or on --host-id")
    .option("--host-id <id>", "only this host")
    .action(
      ctx.action(async (id: string, o: { hostId?: string }) => {
        const client = await ctx.client();
        const hosts = o.hostId ? [o.hostId] : (await hostsRunning(client, id)).map((h) => h.hostId);
        if (hosts.length === 0) throw new NotFoundError(`provider ${id} is not running in lattice ${client.lattice}`);
        for (const h of hosts) await client.stopProvider(h, id);
        return { text: `provider ${id} stopped on ${hosts.join(", ")}`, json: { success: true, provider_id: id, hosts } };
      }),
    );
}
