/**
 * Runs planned {@link AppAction}s through the control client (reference §1.4), phase by phase, and waits for the
 * lattice to show the result (`--wait`): until a planner run finds nothing left to do, a problem, or a
 * `component_scale_failed` / `provider_start_failed` event for one of the app's workloads (reference §5).
 * @module
 */
import type { CtlClient } from "../control/client.ts";
import { TrellisError } from "../core/errors.ts";
import { type CloudEvent, EventType } from "../core/events.ts";
import { eventSubject } from "../core/subjects.ts";
import { type Logger, silentLogger } from "../core/logger.ts";
import type { AppliedState, DesiredState } from "./desired.ts";
import { configNamesToObserve } from "./desired.ts";
import { type ObserveOptions, observeLattice } from "./observe.ts";
import {
  type AppAction,
  type AppPlan,
  type AppStatusReport,
  type ApplyFailure,
  describeAction,
  planApp,
  statusFromPlan,
} from "./planner.ts";

/** Default longest wait of `--wait`, in milliseconds: 60 s. */
export const DEFAULT_WAIT_TIMEOUT_MS = 60_000;
/** Pause between two planner runs while waiting, in milliseconds. */
export const WAIT_INTERVAL_MS = 200;

/** Sends one action's control request. @throws TrellisError from the client. */
export async function runAction(client: CtlClient, a: AppAction): Promise<string> {
  switch (a.kind) {
    case "put_config":
      return client.putConfig(a.name, a.values);
    case "delete_config":
      return client.deleteConfig(a.name);
    case "put_link":
      return client.putLink(a.link);
    case "replace_link":
      return client.replaceLink(a.delete, a.link);
    case "delete_link":
      return client.deleteLink(a.delete);
    case "scale_component":
      return client.scaleComponent(a.host_id, {
        component_ref: a.component_ref,
        component_id: a.component_id,
        count: a.count,
        config: a.config,
        annotations: a.annotations,
        ...(a.preopens ? { preopens: a.preopens } : {}),
      });
    case "update_component":
      return client.updateComponent(a.host_id, a.component_id, a.new_component_ref);
    case "start_provider":
      return client.startProvider(a.host_id, {
        provider_id: a.provider_id,
        provider_ref: a.provider_ref,
        config: a.config,
        annotations: a.annotations,
      });
    case "stop_provider":
      return client.stopProvider(a.host_id, a.provider_id);
  }
}

/**
 * Runs `actions` (sorted by phase): the actions of one phase concurrently, phases one after the other. A failed
 * request does not stop the others (later ones may still succeed; all failures are reported).
 * @returns the failures, in action order.
 */
export async function applyActions(client: CtlClient, actions: readonly AppAction[], logger: Logger = silentLogger): Promise<ApplyFailure[]> {
  const failures: ApplyFailure[] = [];
  const phases = [...new Set(actions.map((a) => a.phase))].sort((a, b) => a - b);
  for (const phase of phases) {
    const batch = actions.filter((a) => a.phase === phase);
    const results = await Promise.allSettled(batch.map((a) => runAction(client, a)));
    results.forEach((r, i) => {
      const a = batch[i];
      if (!a) return;
      if (r.status === "fulfilled") {
        logger.debug("app request done", { action: describeAction(a), message: r.value });
      } else {
        const e = TrellisError.from(r.reason);
        logger.warn("app request failed", { action: describeAction(a), code: e.code, error: e.message });
        failures.push({ action: describeAction(a), code: e.code, message: e.message });
      }
    });
  }
  return failures;
}

/** Options of {@link waitForApp}. */
export interface WaitOptions {
  /** Longest wait, in milliseconds. @default 60000 */
  timeoutMs?: number;
  /** Stops waiting early (the result then says `timed_out`). */
  signal?: AbortSignal;
  /**
   * Failures recorded elsewhere, read on every round (a deploy left to the reconciler reads the app record's
   * `last_apply.failures`). @default none
   */
  recordFailures?: () => Promise<ApplyFailure[]>;
  /** How the lattice is observed. */
  observe?: ObserveOptions;
}

/** What {@link waitForApp} ends with. */
export interface WaitResult {
  status: AppStatusReport;
  /** The last plan. */
  plan: AppPlan;
  /** True when the time ran out (or the signal fired) before the app was deployed or failed. */
  timed_out: boolean;
}

/**
 * Re-plans every {@link WAIT_INTERVAL_MS} until nothing is left to do (`deployed`), a problem shows (`failed`), a
 * failure event arrives for one of the app's components or providers while work is left (`failed`, with the
 * event's error), or `timeoutMs` passes (the last status, `timed_out: true`).
 * @param startFailures failures already known (from the deploy's requests).
 */
export async function waitForApp(
  client: CtlClient,
  desired: DesiredState,
  applied: AppliedState,
  opts: WaitOptions = {},
  startFailures: readonly ApplyFailure[] = [],
): Promise<WaitResult> {
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS);
  const ids = new Set([...desired.components, ...desired.providers].map((w) => w.id));
  const failures: ApplyFailure[] = [...startFailures];
  const subs = [EventType.ComponentScaleFailed, EventType.ProviderStartFailed].map((name) =>
    client.nc.subscribe(eventSubject(client.lattice, name), {
      callback: (_err, msg) => {
        try {
          const ev = msg.json<CloudEvent>();
          const id = String(ev.data.component_id ?? ev.data.provider_id ?? "");
          if (!ids.has(id)) return;
          const what = name === EventType.ComponentScaleFailed ? `scale component ${id}` : `start provider ${id}`;
          failures.push({ action: `${what} on ${ev.source.slice(0, 12)}…`, code: "EVENT", message: `${name}: ${String(ev.data.error ?? "")}` });
        } catch {
          // not a CloudEvent
        }
      },
    }),
  );
  try {
    await client.nc.flush();
    for (;;) {
      const observed = await observeLattice(client, configNamesToObserve(desired, applied), opts.observe);
      const plan = planApp(desired, observed, applied);
      const recorded = opts.recordFailures ? await opts.recordFailures() : [];
      const status = statusFromPlan(plan, [...failures, ...recorded]);
      if (status.status !== "reconciling") return { status, plan, timed_out: false };
      if (Date.now() >= deadline || opts.signal?.aborted) return { status, plan, timed_out: true };
      await new Promise((r) => setTimeout(r, WAIT_INTERVAL_MS));
    }
  } finally {
    for (const s of subs) s.unsubscribe();
  }
}
