/**
 * `trellis start|stop|scale|update component …` and `trellis call` (issue 3 §8).
 *
 * Start/stop/scale/update send `component.scale` / `component.update` to a host and wait for the outcome event
 * (`component_scaled` or `component_scale_failed`). `trellis call` sends one invocation in the JSON form
 * (docs/protocol.md §6): the target types the arguments by its own WIT, so the CLI needs no types.
 * wash 1.x spellings (docs/from-wasmcloud.md): `--max-instances`/`--max`/`--max-concurrent` for `--count`, `-c` for
 * `--constraint` on start and for the count on scale, `scale component HOST_ID COMPONENT_REF COMPONENT_ID`,
 * `stop component --host-id`.
 * @module
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { type Command, Option } from "commander";
import { looksLikeOciRef } from "../../oci/index.ts";
import type { CtlClient } from "../../control/client.ts";
import { auctionHost, inventories } from "../placement.ts";
import { ErrorCode, InvalidArgumentError, NotFoundError, TimeoutError, TrellisError } from "../../core/errors.ts";
import { EventType, type CloudEvent } from "../../core/events.ts";
import { eventSubject } from "../../core/subjects.ts";
import { invokeJson } from "../../../packages/wire/src/invocation/client.ts";
import { WORLD_IFACE } from "../../../packages/wire/src/invocation/server.ts";
import { type CliContext, parsePairs, parsePositiveInt } from "../context.ts";

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** How long to wait for a component to start (fetch + compile + instantiate), in milliseconds. */
const START_WAIT_MS = 60_000;

const FN_RE = /^(?:\[(?:method|static)\][a-z0-9-]+\.[a-z0-9-]+|\[constructor\][a-z0-9-]+|[a-z][a-z0-9-]*)$/i;
const IFACE_RE = /^[a-z0-9-]+:[a-z0-9-]+\/[a-z0-9-]+(?:@\d+\.\d+\.\d+(?:-[0-9a-z.-]+)?(?:\+[0-9a-z.-]+)?)?$/i;

/**
 * Splits `namespace:package/interface[@version].function`, e.g. `docs:adder/add@0.1.0.add` →
 * `["docs:adder/add@0.1.0", "add"]`; the function may be `[method]bucket.get`.
 * @throws InvalidArgumentError when no split gives a valid interface and function name.
 */
export function splitCallTarget(s: string): [iface: string, fn: string] {
  // a bare function name is a world-level export (`export add: func(…)`), served under the interface token `world`
  if (!s.includes(":") && !s.includes("/") && /^[a-z][a-z0-9-]*$/.test(s)) return [WORLD_IFACE, s];
  const slash = s.indexOf("/");
  for (let i = s.indexOf(".", slash); i > 0; i = s.indexOf(".", i + 1)) {
    const iface = s.slice(0, i);
    const fn = s.slice(i + 1);
    if (IFACE_RE.test(iface) && FN_RE.test(fn)) return [iface, fn];
  }
  throw new InvalidArgumentError(
    "INTERFACE.FUNCTION",
    `expected namespace:package/interface[@version].function (e.g. docs:adder/add@0.1.0.add) or a world-level function name (e.g. add), got ${JSON.stringify(s)}`,
  );
}

/**
 * The JSON arguments of `trellis call` / `trellis explain`: `[]` when absent or blank, else the parsed JSON (an array
 * in parameter order, checked later against the function's WIT type).
 * @throws InvalidArgumentError (`ARGS_JSON`) when `args` is not JSON.
 */
export function parseCallArgs(args: string | undefined): unknown {
  if (args === undefined || args.trim() === "") return [];
  try {
    return JSON.parse(args);
  } catch (err) {
    throw new InvalidArgumentError("ARGS_JSON", `arguments must be JSON (an array in parameter order): ${(err as Error).message}`);
  }
}

/** A local path becomes absolute (the host resolves it on its own file system); URLs and OCI references pass unchanged. */
function absoluteRef(ref: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) || (looksLikeOciRef(ref) && !existsSync(ref)) ? ref : path.resolve(ref);
}

/** Hosts running component `id`, from their inventories. */
async function hostsRunning(client: CtlClient, id: string): Promise<{ hostId: string; imageRef: string; count: number }[]> {
  return (await inventories(client)).flatMap((inv) =>
    inv.components.filter((c) => c.id === id).map((c) => ({ hostId: inv.host_id, imageRef: c.image_ref, count: c.max_instances })),
  );
}

/**
 * Sends a request and waits for the component's next `component_scaled` (matching `expect`) or
 * `component_scale_failed` event; with `skipWait` (wash's `--skip-wait`) returns after the host's acknowledgement,
 * with empty `data`.
 */
async function awaitScaled(
  client: CtlClient,
  componentId: string,
  expect: (data: Record<string, unknown>) => boolean,
  send: () => Promise<string>,
  skipWait = false,
): Promise<{ message: string; data: Record<string, unknown> }> {
  if (skipWait) return { message: await send(), data: {} };
  const nc = client.nc;
  const subs = [EventType.ComponentScaled, EventType.ComponentScaleFailed].map((n) => nc.subscribe(eventSubject(client.lattice, n)));
  try {
    const outcome = new Promise<{ failed: boolean; data: Record<string, unknown> }>((resolve) => {
      subs.forEach((sub, i) => {
        void (async () => {
          for await (const m of sub) {
            const ev = m.json<CloudEvent>();
            if (ev.data["component_id"] !== componentId) continue;
            if (i === 1 || expect(ev.data)) {
              resolve({ failed: i === 1, data: ev.data });
              return;
            }
          }
        })();
      });
    });
    await nc.flush();
    const message = await send();
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      outcome,
      new Promise<never>((_r, reject) => {
        timer = setTimeout(
          () => reject(new TimeoutError(`no component_scaled event for ${componentId} within ${START_WAIT_MS} ms`, START_WAIT_MS)),
          START_WAIT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    if (r.failed) throw new TrellisError(ErrorCode.ComponentLoad, `component ${componentId}: ${String(r.data["error"])}`, { details: r.data });
    return { message, data: r.data };
  } finally {
    for (const s of subs) s.unsubscribe();
  }
}

/**
 * `--preopen HOST[:GUEST][:ro|rw]` → a `preopens` entry (read-only unless `:rw`; GUEST defaults to HOST).
 * @throws InvalidArgumentError for a relative HOST or an unknown mode.
 */
export function parsePreopenFlag(spec: string): { host_path: string; guest_path: string; read_only: boolean } {
  const parts = spec.split(":");
  let mode = "ro";
  if (parts.length > 1 && (parts.at(-1) === "ro" || parts.at(-1) === "rw")) mode = parts.pop()!;
  if (parts.length > 2) throw new InvalidArgumentError("--preopen", `--preopen ${spec}: expected HOST[:GUEST][:ro|rw]`);
  const host = path.resolve(parts[0]!);
  return { host_path: host, guest_path: parts[1] || host, read_only: mode === "ro" };
}

/** The count flags: Trellis's `--count` and wash's `-c/--max-instances` (when `short`), `--max`, `--max-concurrent`. */
interface CountFlags {
  count?: string;
  maxInstances?: string;
  max?: string;
  maxConcurrent?: string;
}

/** Adds wash's names of the count to a command: `--max-instances` (with `-c` when `short`), hidden `--max`, `--max-concurrent`. */
function washCountOptions(cmd: Command, short: boolean): Command {
  return cmd
    .option(`${short ? "-c, " : ""}--max-instances <n>`, "same as --count (wash)")
    .addOption(new Option("--max <n>", "same as --count (wash)").hideHelp())
    .addOption(new Option("--max-concurrent <n>", "same as --count (wash)").hideHelp());
}

/** The count given under any of its names, with the name used (for errors); undefined when none was given. */
function countFrom(o: CountFlags): { flag: string; value: string } | undefined {
  if (o.count !== undefined) return { flag: "--count", value: o.count };
  if (o.maxInstances !== undefined) return { flag: "--max-instances", value: o.maxInstances };
  if (o.max !== undefined) return { flag: "--max", value: o.max };
  if (o.maxConcurrent !== undefined) return { flag: "--max-concurrent", value: o.maxConcurrent };
  return undefined;
}

/** Registers `start component`, `stop component`, `scale component`, `update component` and `call`. */
export function registerComponentCommands(program: Command, ctx: CliContext): void {
  const start = program.commands.find((c) => c.name() === "start") ?? program.command("start").description("start a workload");
  const startComponent = start
    .command("component <ref> <id>")
    .description("start a component from a file path, file:// or http(s):// URL (component.scale) and wait until it runs")
    .option("--count <n>", "max instances (concurrent calls) (default 1)")
    .option("--config <name>", "named config, merged left to right (repeat)", collect)
    .option("--host-id <id>", "host to run on (default: the first host that bids in a component.auction; hosts already running ID do not bid)")
    .option("-c, --constraint <label=value>", "without --host-id: only hosts with this label bid in the auction (repeat)", collect)
    .option("--preopen <dir>", "give the component a host directory: HOST[:GUEST][:ro|rw] (read-only unless :rw; the host must allow it) (repeat)", collect)
    .option("--update", "when ID already runs another image, replace it everywhere (as `trellis update component`) instead of refusing")
    .option("--skip-wait", "return after the host acknowledges, without waiting for the outcome event (wash)");
  washCountOptions(startComponent, false).action(
    ctx.action(
      async (
        ref: string,
        id: string,
        o: CountFlags & { config?: string[]; hostId?: string; constraint?: string[]; skipWait?: boolean; update?: boolean; preopen?: string[] },
      ) => {
        const c = countFrom(o) ?? { flag: "--count", value: "1" };
        const count = parsePositiveInt(c.flag, c.value);
        const preopens = (o.preopen ?? []).map(parsePreopenFlag);
        const client = await ctx.client();
        const componentRef = absoluteRef(ref);
        // a different image under a running id is never a silent no-op: refuse, or update with --update
        const running = await hostsRunning(client, id);
        const others = running.filter((r) => r.imageRef !== componentRef);
        if (others.length > 0 && !o.update) {
          throw new TrellisError(
            ErrorCode.AlreadyExists,
            `component ${id} already runs ${others[0]!.imageRef} on host ${others[0]!.hostId}; not starting ${componentRef} under the same id ` +
              `(use \`trellis update component ${id} ${ref}\`, or start --update)`,
            { details: { componentId: id, imageRef: others[0]!.imageRef, hostId: others[0]!.hostId } },
          );
        }
        const messages: string[] = [];
        for (const r of others) {
          const { message } = await awaitScaled(client, id, (d) => d["image_ref"] === componentRef, () => client.updateComponent(r.hostId, id, componentRef));
          messages.push(message || `component ${id} updated on host ${r.hostId}`);
        }
        // as wash: a start places through the auction, where hosts already running the id do not bid (scale out);
        // `trellis scale component` changes the count where it runs
        const hostId = o.hostId ?? (others.length > 0 ? others[0]!.hostId : await auctionHost(client, "component", componentRef, id, parsePairs("--constraint", o.constraint ?? [])));
        const { message, data } = await awaitScaled(
          client,
          id,
          (d) => d["max_instances"] === count,
          () =>
            client.scaleComponent(hostId, {
              component_ref: componentRef,
              component_id: id,
              count,
              ...(o.config ? { config: o.config } : {}),
              ...(preopens.length ? { preopens } : {}),
            }),
          o.skipWait,
        );
        if (/already running with a different reference/.test(message)) {
          throw new TrellisError(ErrorCode.AlreadyExists, message, { details: { componentId: id, hostId } });
        }
        if (o.skipWait) return { text: `component ${id}: start requested on host ${hostId} (${message})`, json: { success: true, host_id: hostId, message } };
        messages.push(`component ${id} started on host ${hostId} (max instances ${count})`);
        return { text: messages.join("\n"), json: { success: true, host_id: hostId, event: data, ...(others.length ? { updated: others.map((r) => r.hostId) } : {}) } };
      },
    ),
  );

  const stop = program.commands.find((c) => c.name() === "stop") ?? program.command("stop").description("stop a workload");
  stop
    .command("component <id>")
    .description("stop a component on every host that runs it, or on --host-id (component.scale with count 0)")
    .option("--host-id <id>", "only this host")
    .action(
      ctx.action(async (id: string, o: { hostId?: string }) => {
        const client = await ctx.client();
        const running = (await hostsRunning(client, id)).filter((r) => o.hostId === undefined || r.hostId === o.hostId);
        if (running.length === 0) throw new NotFoundError(`component ${id} is not running${o.hostId === undefined ? "" : ` on host ${o.hostId}`} in lattice ${client.lattice}`);
        for (const r of running) {
          await awaitScaled(client, id, (d) => d["max_instances"] === 0, () =>
            client.scaleComponent(r.hostId, { component_ref: r.imageRef, component_id: id, count: 0 }),
          );
        }
        return { text: `component ${id} stopped on ${running.map((r) => r.hostId).join(", ")}`, json: { success: true, hosts: running.map((r) => r.hostId) } };
      }),
    );

  const scale = program.commands.find((c) => c.name() === "scale") ?? program.command("scale").description("scale a workload");
  const scaleComponent = scale
    .command("component <args...>")
    .usage("[options] ID | HOST_ID COMPONENT_REF COMPONENT_ID")
    .description(
      "change a component's max instances (component.scale): `ID` scales it on every host that runs it; wash's `HOST_ID COMPONENT_REF COMPONENT_ID` scales (or starts) it on that host",
    )
    .option("--count <n>", "max instances; 0 stops it")
    .option("--skip-wait", "return after the host acknowledges, without waiting for the outcome event (wash)");
  washCountOptions(scaleComponent, true).action(
    ctx.action(async (args: string[], o: CountFlags & { skipWait?: boolean }) => {
      if (args.length !== 1 && args.length !== 3) {
        throw new InvalidArgumentError("scale component", `expected ID, or HOST_ID COMPONENT_REF COMPONENT_ID; got ${args.length} argument(s)`);
      }
      const c = countFrom(o);
      if (c === undefined) throw new InvalidArgumentError("--count", "give the max instances: --count N (or --max-instances N); 0 stops it");
      const count = Number(c.value);
      if (!Number.isInteger(count) || count < 0) throw new InvalidArgumentError(c.flag, `${c.flag} must be a non-negative integer, got ${JSON.stringify(c.value)}`);
      const client = await ctx.client();
      const id = args.length === 1 ? args[0]! : args[2]!;
      const targets =
        args.length === 3 ? [{ hostId: args[0]!, imageRef: absoluteRef(args[1]!) }] : await hostsRunning(client, id);
      if (targets.length === 0) throw new NotFoundError(`component ${id} is not running in lattice ${client.lattice}`);
      for (const r of targets) {
        await awaitScaled(client, id, (d) => d["max_instances"] === count, () => client.scaleComponent(r.hostId, { component_ref: r.imageRef, component_id: id, count }), o.skipWait);
      }
      return { text: `component ${id} ${o.skipWait ? "scale requested" : "scaled"} to ${count}`, json: { success: true, count, hosts: targets.map((r) => r.hostId) } };
    }),
  );

  const update = program.commands.find((c) => c.name() === "update") ?? program.command("update").description("update a workload");
  update
    .command("component <id> <ref>")
    .description("replace a running component's code, keeping its id, links and config (component.update)")
    .action(
      ctx.action(async (id: string, ref: string) => {
        const client = await ctx.client();
        const running = await hostsRunning(client, id);
        if (running.length === 0) throw new NotFoundError(`component ${id} is not running in lattice ${client.lattice}`);
        const newRef = absoluteRef(ref);
        const messages: string[] = [];
        for (const r of running) {
          if (r.imageRef === newRef) {
            messages.push(`component ${id} already updated to ${newRef}`);
            continue;
          }
          const { message } = await awaitScaled(client, id, (d) => d["image_ref"] === newRef, () => client.updateComponent(r.hostId, id, newRef));
          messages.push(message);
        }
        return { text: messages.join("\n"), json: { success: true, messages } };
      }),
    );

  program
    .command("call <id> <function> [args]")
    .description("call an exported function: INTERFACE.FUNCTION with JSON arguments, e.g. trellis call adder docs:adder/add@0.1.0.add '[2,3]'")
    .action(
      ctx.action(async (id: string, target: string, args: string | undefined) => {
        const [iface, fn] = splitCallTarget(target);
        const parsed = parseCallArgs(args);
        const client = await ctx.client();
        const result = await invokeJson(
          client.nc,
          { lattice: client.lattice, targetId: id, iface, fn, sourceId: "trellis-cli", timeoutMs: Math.max(client.timeoutMs, 10_000) },
          parsed,
        );
        return { text: result === null ? "" : typeof result === "string" ? result : JSON.stringify(result), json: result };
      }),
    );
}
