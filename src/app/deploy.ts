/**
 * The app lifecycle over a control client — deploy, undeploy, status, list, watch — as a client-side applier: there
 * is no resident wadm-like process. Each call observes the lattice, plans (src/app/planner.ts), sends the requests
 * and records the app in `TRELLIS_APPS_{lattice}` (src/app/store.ts). docs/apps.md; ADR 0006.
 * @module
 */
import { createHash } from "node:crypto";
import type { CtlClient } from "../control/client.ts";
import { ErrorCode, NotFoundError, TrellisError } from "../core/errors.ts";
import { EventType } from "../core/events.ts";
import { type Logger, silentLogger } from "../core/logger.ts";
import { eventSubject } from "../core/subjects.ts";
import {
  type AppliedState,
  appliedFrom,
  configNamesToObserve,
  desiredState,
  emptyApplied,
  emptyDesired,
  mergeApplied,
} from "./desired.ts";
import { type AppManifest, parseManifest } from "./manifest.ts";
import { observeLattice } from "./observe.ts";
import {
  type AppAction,
  type AppStatusKind,
  type AppStatusReport,
  type ApplyFailure,
  type ObservedState,
  planApp,
  statusFromPlan,
} from "./planner.ts";
import { type AppRecord, AppStore } from "./store.ts";
import { applyActions, waitForApp } from "./applier.ts";

/** Options of {@link deployApp}. */
export interface DeployOptions {
  /** Wait until the lattice shows the app deployed, or a failure. @default false */
  wait?: boolean;
  /** Longest wait, in milliseconds. @default 60000 */
  waitTimeoutMs?: number;
  /** Plan only: send nothing, store nothing. @default false */
  dryRun?: boolean;
  /** Records per request (debug) and per deploy (info). @default silent */
  logger?: Logger;
  /** Clock, for tests. @default () => new Date() */
  now?: () => Date;
}

/** How a deploy ended. `reconciled`: same manifest, missing parts re-applied. */
export type DeployOutcome = "created" | "updated" | "reconciled" | "unchanged" | "planned";

/** The result of {@link deployApp} (also the `--output json` of `trellis app deploy`). */
export interface DeployResult {
  app: string;
  version: string;
  outcome: DeployOutcome;
  /** The requests sent (or, with `dryRun`, that would be sent). */
  actions: AppAction[];
  failures: ApplyFailure[];
  status: AppStatusReport;
  /** True when `wait` ran out of time. */
  timed_out: boolean;
}

/** Version of a manifest: its `version` annotation, else `sha256:` + 12 hex digits of its canonical JSON. */
export function manifestVersion(m: AppManifest): string {
  return m.version ?? `sha256:${createHash("sha256").update(canonicalJson(m.raw)).digest("hex").slice(0, 12)}`;
}

/** JSON with object keys sorted at every level: equal documents give equal strings. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (typeof v === "object" && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/**
 * Deploys (or re-deploys) a manifest: plans against the observed lattice and the app's stored record, sends the
 * requests, stores the record. Idempotent: when the manifest is the stored one and nothing is missing, nothing is
 * sent and nothing is written (`unchanged`).
 * @throws TrellisError `NO_RESPONDERS` when no host runs on the lattice; from the client (`TIMEOUT`); `ALREADY_EXISTS`
 *   when another client deployed the same app meanwhile. Failed requests are not thrown: they are in `failures` and `status`.
 */
export async function deployApp(client: CtlClient, manifest: AppManifest, opts: DeployOptions = {}): Promise<DeployResult> {
  const logger = (opts.logger ?? silentLogger).child({ component: "app", app: manifest.name });
  const now = opts.now ?? (() => new Date());
  const store = await AppStore.open(client.nc, client.lattice);
  const prev = await store.get(manifest.name);
  const desired = desiredState(manifest);
  const applied = prev?.record.applied ?? emptyApplied();
  const observed = await observeLattice(client, configNamesToObserve(desired, applied));
  if (observed.hosts.length === 0) throw noHosts(client.lattice);
  const plan = planApp(desired, observed, applied);
  const version = manifestVersion(manifest);
  const same = prev !== undefined && canonicalJson(prev.record.manifest) === canonicalJson(manifest.raw) && prev.record.state !== "undeploying";
  const clean = same && plan.actions.length === 0 && prev.record.last_apply.failures.length === 0;
  const result = (outcome: DeployOutcome, actions: AppAction[], failures: ApplyFailure[], status: AppStatusReport, timedOut = false): DeployResult => ({
    app: manifest.name,
    version,
    outcome,
    actions,
    failures,
    status,
    timed_out: timedOut,
  });
  if (opts.dryRun) return result("planned", plan.actions, [], statusFromPlan(plan));
  if (clean) {
    logger.debug("app unchanged");
    if (opts.wait && plan.pending.length > 0) {
      const w = await waitForApp(client, desired, applied, { timeoutMs: opts.waitTimeoutMs });
      return result("unchanged", [], [], w.status, w.timed_out);
    }
    return result("unchanged", [], [], statusFromPlan(plan));
  }
  const at = now().toISOString();
  const target = appliedFrom(desired);
  const record = (appliedState: AppliedState, failures: ApplyFailure[]): AppRecord => ({
    name: manifest.name,
    version,
    manifest: manifest.raw,
    deployed_at: prev && prev.record.version === version ? prev.record.deployed_at : at,
    updated_at: now().toISOString(),
    applied: appliedState,
    last_apply: { at, actions: plan.actions.length, failures },
    state: "deployed",
  });
  // Journal first: while requests are in flight the record owns both the old and the new state.
  let revision = prev?.revision ?? (await store.lastRevision(manifest.name));
  if (plan.actions.length > 0) revision = await store.put(record(mergeApplied(applied, target), []), revision);
  const failures = await applyActions(client, plan.actions, logger);
  await store.put(record(failures.length === 0 ? target : mergeApplied(applied, target), failures), revision);
  const outcome: DeployOutcome = !prev ? "created" : same ? "reconciled" : "updated";
  logger.info("app deployed", { outcome, version, actions: plan.actions.length, failures: failures.length });
  if (opts.wait) {
    const w = await waitForApp(client, desired, failures.length === 0 ? target : mergeApplied(applied, target), { timeoutMs: opts.waitTimeoutMs }, failures);
    return result(outcome, plan.actions, failures, w.status, w.timed_out);
  }
  return result(outcome, plan.actions, failures, afterApplyStatus(plan.actions, plan.problems, failures));
}

function noHosts(lattice: string): TrellisError {
  return new TrellisError(ErrorCode.NoResponders, `no host is running on lattice ${lattice}: start one (\`trellis up\`) and run the command again`, {
    details: { lattice },
  });
}

function afterApplyStatus(actions: AppAction[], problems: string[], failures: ApplyFailure[]): AppStatusReport {
  const base = { missing: [], problems: [...problems], pending: [], failures: [...failures] };
  if (problems.length > 0) return { ...base, status: "failed", message: problems.join("; ") };
  if (failures.length > 0) return { ...base, status: "failed", message: failures.map((f) => `${f.action}: ${f.message}`).join("; ") };
  if (actions.length > 0) {
    return { ...base, status: "reconciling", message: `${actions.length} request(s) sent; \`trellis app status\` shows when the lattice has caught up (or deploy with --wait)` };
  }
  return { ...base, status: "deployed", message: "" };
}

/** Loads and parses a stored app's manifest. @throws NotFoundError when the app is not deployed. */
async function load(store: AppStore, name: string): Promise<{ record: AppRecord; revision: number; manifest: AppManifest }> {
  const got = await store.get(name);
  if (!got) throw new NotFoundError(`no app named ${name} is deployed on this lattice`, { app: name });
  return { ...got, manifest: parseManifest(got.record.manifest).manifest };
}

/**
 * Re-applies the stored manifest of `name` (what `--watch` does on host events).
 * @throws NotFoundError when the app is not deployed; as {@link deployApp}.
 */
export async function reconcileApp(client: CtlClient, name: string, opts: DeployOptions = {}): Promise<DeployResult> {
  const store = await AppStore.open(client.nc, client.lattice);
  const { manifest } = await load(store, name);
  return deployApp(client, manifest, opts);
}

/** The result of {@link undeployApp}. */
export interface UndeployResult {
  /** The app name. */
  app: string;
  actions: AppAction[];
  failures: ApplyFailure[];
  /** True when the record was removed (every request succeeded). */
  removed: boolean;
  timed_out: boolean;
}

/**
 * Removes everything the app owns — its links, its components and providers (by the recorded ids and by the
 * `wasmcloud.dev/appspec` annotation), its inline config — and then its record. Config referenced by name only is
 * left alone. When a request fails the record stays (marked `undeploying`) and the failures are returned; run it
 * again.
 * @throws NotFoundError when no app of that name is deployed; TrellisError `NO_RESPONDERS` when no host runs; from the
 *   client.
 */
export async function undeployApp(client: CtlClient, name: string, opts: Omit<DeployOptions, "dryRun"> = {}): Promise<UndeployResult> {
  const logger = (opts.logger ?? silentLogger).child({ component: "app", app: name });
  const now = opts.now ?? (() => new Date());
  const store = await AppStore.open(client.nc, client.lattice);
  const got = await store.get(name);
  if (!got) throw new NotFoundError(`no app named ${name} is deployed on this lattice`, { app: name });
  const desired = emptyDesired(name);
  const applied = got.record.applied;
  const observed = await observeLattice(client, configNamesToObserve(desired, applied));
  if (observed.hosts.length === 0) throw noHosts(client.lattice);
  const plan = planApp(desired, observed, applied);
  const failures = await applyActions(client, plan.actions, logger);
  let timedOut = false;
  if (failures.length === 0 && opts.wait) timedOut = (await waitForApp(client, desired, applied, { timeoutMs: opts.waitTimeoutMs })).timed_out;
  if (failures.length > 0) {
    const at = now().toISOString();
    await store.put({ ...got.record, state: "undeploying", updated_at: at, last_apply: { at, actions: plan.actions.length, failures } }, got.revision);
    return { app: name, actions: plan.actions, failures, removed: false, timed_out: timedOut };
  }
  await store.delete(name);
  logger.info("app undeployed", { actions: plan.actions.length });
  return { app: name, actions: plan.actions, failures, removed: true, timed_out: timedOut };
}

/** `trellis app status NAME` / one row of `app list`. */
export interface AppStatusResult extends AppStatusReport {
  app: string;
  version: string;
  deployed_at: string;
  updated_at: string;
}

function statusOf(record: AppRecord, manifest: AppManifest, observed: ObservedState): AppStatusResult {
  const plan = planApp(record.state === "undeploying" ? emptyDesired(record.name) : desiredState(manifest), observed, record.applied);
  const report = statusFromPlan(plan, record.last_apply.failures);
  if (record.state === "undeploying") {
    report.status = "failed";
    report.message = `undeploy did not finish (${record.last_apply.failures.map((f) => f.message).join("; ")}); run \`trellis app undeploy ${record.name}\` again`;
  }
  return { app: record.name, version: record.version, deployed_at: record.deployed_at, updated_at: record.updated_at, ...report };
}

/**
 * Status of a deployed app: the planner run against the lattice now (`deployed` / `reconciling` with what is
 * missing / `failed` with the reason or the last deploy's failures). Read-only.
 * @throws NotFoundError when the app is not deployed.
 */
export async function getAppStatus(client: CtlClient, name: string): Promise<AppStatusResult> {
  const store = await AppStore.open(client.nc, client.lattice);
  const { record, manifest } = await load(store, name);
  const observed = await observeLattice(client, configNamesToObserve(desiredState(manifest), record.applied));
  return statusOf(record, manifest, observed);
}

/** Every deployed app with its status (one lattice observation shared by all). Read-only. */
export async function listApps(client: CtlClient): Promise<AppStatusResult[]> {
  const store = await AppStore.open(client.nc, client.lattice);
  const records = await store.list();
  if (records.length === 0) return [];
  const parsed = records.map((r) => ({ record: r, manifest: parseManifest(r.manifest).manifest }));
  const names = new Set<string>();
  for (const p of parsed) for (const n of configNamesToObserve(desiredState(p.manifest), p.record.applied)) names.add(n);
  const observed = await observeLattice(client, [...names]);
  return parsed.map((p) => statusOf(p.record, p.manifest, observed));
}

/** Options of {@link watchApp}. */
export interface WatchOptions extends Omit<DeployOptions, "dryRun" | "wait"> {
  /** Stops the watch. */
  signal: AbortSignal;
  /** Called after every reconcile (also the first one). */
  onResult?: (r: DeployResult) => void;
  /** Called when a reconcile throws; the watch goes on. */
  onError?: (err: unknown) => void;
  /** Quiet time after a host event before reconciling, in milliseconds. @default 500 */
  debounceMs?: number;
}

/**
 * Keeps an app reconciled until `signal` aborts: reconciles once, then again after `host_started`, `host_stopped`,
 * `host_heartbeat` and `labels_changed` events (debounced). A reconcile with nothing to do sends and writes nothing.
 */
export async function watchApp(client: CtlClient, name: string, opts: WatchOptions): Promise<void> {
  const debounceMs = opts.debounceMs ?? 500;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let again = false;
  let busy = false;
  const reconcile = () => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    running = (async () => {
      do {
        again = false;
        try {
          opts.onResult?.(await reconcileApp(client, name, opts));
        } catch (err) {
          opts.onError?.(err);
        }
      } while (again && !opts.signal.aborted);
      busy = false;
    })();
  };
  const trigger = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(reconcile, debounceMs);
  };
  const subs = [EventType.HostStarted, EventType.HostStopped, EventType.HostHeartbeat, EventType.LabelsChanged].map((e) =>
    client.nc.subscribe(eventSubject(client.lattice, e), { callback: () => trigger() }),
  );
  try {
    reconcile();
    await new Promise<void>((resolve) => {
      if (opts.signal.aborted) resolve();
      else opts.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    if (timer) clearTimeout(timer);
    for (const s of subs) s.unsubscribe();
    await running;
  }
}

/** Re-exported for callers that only need the status kind. */
export type { AppStatusKind };
