#!/usr/bin/env node
/**
 * timer: a first-party capability provider that calls a linked component on a schedule (see ./README.md).
 *
 * The provider is the link's **source** (`trellis link put timer my-component trellis timer --interface handler
 * --source-config every-5s`); it calls the component's export `trellis:timer/handler@0.1.0`
 * `tick: func(count: u64, scheduled-ms: u64)` — `count` from 1 for each link, `scheduled-ms` the planned wall-clock
 * time (Unix epoch ms). The schedule is the link's source config: `interval_ms`, or `cron` (5 or 6 fields, parsed by
 * the `cron-parser` package) with optional `tz`. A tick whose previous call is still running is skipped (logged),
 * never stacked. Deleting the link stops its ticks.
 *
 * Start it from a host: `trellis start provider timer timer`; or by hand (a remote provider):
 * `node providers/timer/main.ts --provider-id timer --lattice default --nats-url nats://127.0.0.1:4222`.
 * @module
 */
import { ErrorCode, runProvider, t, TrellisError, type InterfaceType, type ProviderDefinition } from "trellis/provider-sdk";

/** `trellis:timer/handler@0.1.0`, the interface a component exports to be called on a schedule. */
export const TIMER_HANDLER: InterfaceType = {
  name: "trellis:timer/handler@0.1.0",
  resources: [],
  functions: { tick: t.func([["count", t.u64], ["scheduled-ms", t.u64]]) },
};

/** The WIT of {@link TIMER_HANDLER}, for component authors. */
export const TIMER_WIT = `package trellis:timer@0.1.0;

interface handler {
  /// Called on the link's schedule: count from 1; scheduled-ms is the planned time (ms since the Unix epoch).
  tick: func(count: u64, scheduled-ms: u64);
}
`;

/** The smallest interval accepted, ms. */
export const MIN_INTERVAL_MS = 10;

/** A parsed schedule: the next planned time after `after` (ms since the epoch). */
export type Schedule = (after: number) => number;

interface CronParserModule {
  CronExpressionParser: { parse(expr: string, opts?: { currentDate?: Date; tz?: string }): { next(): { getTime(): number } } };
}

/**
 * The schedule of a link from its source config: `interval_ms` (integer ≥ {@link MIN_INTERVAL_MS}) or `cron` (+ `tz`).
 * `cron` needs the npm package `cron-parser` (loaded on first use).
 * @throws TrellisError INVALID_ARGUMENT naming the key for a missing or bad schedule.
 */
export async function scheduleOf(config: Readonly<Record<string, string>>): Promise<{ schedule: Schedule; describe: string; timeoutMs: number }> {
  const c = Object.fromEntries(Object.entries(config).map(([k, v]) => [k.toLowerCase(), v.trim()]));
  const timeoutMs = c["timeout_ms"] === undefined ? 10_000 : Number(c["timeout_ms"]);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new TrellisError(ErrorCode.InvalidArgument, `timeout_ms: expected a positive integer of milliseconds, got ${JSON.stringify(c["timeout_ms"])}`);
  if (c["interval_ms"] !== undefined && c["cron"] !== undefined) throw new TrellisError(ErrorCode.InvalidArgument, "give interval_ms or cron, not both");
  if (c["interval_ms"] !== undefined) {
    const ms = Number(c["interval_ms"]);
    if (!Number.isInteger(ms) || ms < MIN_INTERVAL_MS) {
      throw new TrellisError(ErrorCode.InvalidArgument, `interval_ms: expected an integer of milliseconds ≥ ${MIN_INTERVAL_MS}, got ${JSON.stringify(c["interval_ms"])}`);
    }
    return { schedule: (after) => after + ms, describe: `every ${ms} ms`, timeoutMs };
  }
  if (c["cron"] !== undefined) {
    const spec = "cron-parser";
    let mod: CronParserModule;
    try {
      mod = (await import(spec)) as CronParserModule;
    } catch (err) {
      throw new TrellisError(ErrorCode.InvalidArgument, `cron: the npm package cron-parser is not installed (${(err as Error).message})`);
    }
    const expr = c["cron"];
    const tz = c["tz"] || undefined;
    try {
      mod.CronExpressionParser.parse(expr, tz ? { tz } : {});
    } catch (err) {
      throw new TrellisError(ErrorCode.InvalidArgument, `cron: ${JSON.stringify(expr)} is not a cron expression: ${(err as Error).message}`);
    }
    return {
      schedule: (after) => mod.CronExpressionParser.parse(expr, { currentDate: new Date(after), ...(tz ? { tz } : {}) }).next().getTime(),
      describe: `cron ${expr}${tz ? ` (${tz})` : ""}`,
      timeoutMs,
    };
  }
  throw new TrellisError(ErrorCode.InvalidArgument, "the link's source config needs interval_ms or cron");
}

/** The ticks of one link; `close()` stops them (the SDK calls it when the link goes away). */
export class Ticker {
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #busy = false;
  #count = 0n;
  readonly schedule: Schedule;
  readonly fire: (count: bigint, scheduledMs: number) => Promise<void>;
  readonly onSkip: (scheduledMs: number) => void;
  /**
   * Starts ticking at once.
   * @param fire makes one call (must not reject); @param onSkip reports a tick skipped because `fire` still runs.
   */
  constructor(schedule: Schedule, fire: (count: bigint, scheduledMs: number) => Promise<void>, onSkip: (scheduledMs: number) => void) {
    this.schedule = schedule;
    this.fire = fire;
    this.onSkip = onSkip;
    this.#plan(schedule(Date.now()));
  }
  #plan(at: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => this.#tick(at), Math.max(0, at - Date.now()));
  }
  #tick(at: number): void {
    if (this.#closed) return;
    // the next time comes from the planned one (no drift), but never from the past
    this.#plan(this.schedule(Math.max(at, Date.now() - 1)));
    if (this.#busy) return this.onSkip(at);
    this.#busy = true;
    void this.fire(++this.#count, at).finally(() => (this.#busy = false));
  }
  /** Stops the ticks (idempotent). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}

/** The provider definition (exported for tests that run it in-process). */
export function timerProvider(): ProviderDefinition<Ticker> {
  return {
    name: "timer",
    linkDrainMs: 0,
    async linkPutAsSource(link, ctx) {
      const { schedule, describe, timeoutMs } = await scheduleOf(link.config);
      const fn = TIMER_HANDLER.functions["tick"]!;
      ctx.logger.info("timer link", { target: link.target, link_name: link.name, schedule: describe });
      return new Ticker(
        schedule,
        (count, at) =>
          ctx.call(link, TIMER_HANDLER.name, "tick", fn, [count, BigInt(at)], { timeoutMs }).then(
            () => undefined,
            (e: unknown) => ctx.logger.warn("tick failed", { target: link.target, count: Number(count), error: (e as Error).message }),
          ),
        (at) => ctx.logger.warn("tick skipped: the previous call is still running", { target: link.target, scheduled_ms: at }),
      );
    },
    linkDeleted(_link, ticker) {
      ticker?.close();
    },
  };
}

if (import.meta.main) await runProvider(timerProvider());
