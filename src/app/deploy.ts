/**
 * The app lifecycle over a control client — deploy, undeploy, status, list, watch. Hosts run a resident reconciler
 * (src/app/reconciler, ADR 0012): {@link deployApp} and {@link undeployApp} store the wish in `TRELLIS_APPS_{lattice}`
 * (src/app/store.ts) and return; the active reconciler applies it with {@link applyApp} / {@link applyUndeploy}
 * (observe, plan with src/app/planner.ts, send, record). When no reconciler holds the lattice's lease (every host runs
 * with `--no-reconciler`), the caller applies the manifest itself, as before ADR 0012. docs/apps.md.
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
import { type ObserveOptions, observeLattice } from "./observe.ts";
import { readLease } from "./reconciler/lease.ts";
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
import { DEFAULT_WAIT_TIMEOUT_MS, applyActions, waitForApp } from "./applier.ts";

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
  /**
   * Who applies: `reconciler` stores the manifest and returns (the lattice's active reconciler applies it);
   * `client` applies it here and now (observe, plan, send, record); `auto` is `reconciler` when a live reconciler
   * holds the lease, else `client`. @default "auto"
   */
  applyBy?: ApplyBy;
  /** How the lattice is observed when applying here. */
  observe?: ObserveOptions;
  /**
   * Apply only if the app record is still at this KV revision (0: no record) — what the reconciler passes, so that a
   * deploy stored after it read the record is never overwritten by the older manifest. @default no check
   */
  ifRevision?: number;
}

/** Who applied (or will apply) a deploy or undeploy: the lattice's reconciler, or the calling client. */
export type ApplyBy = "auto" | "reconciler" | "client";

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
  /** `reconciler`: stored for the lattice's reconciler to apply (`actions` is then empty); `client`: applied here. */
  applied_by: "reconciler" | "client";
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
 * Deploys (or re-deploys) a manifest: with a live reconciler on the lattice (or `applyBy: "reconciler"`), stores it
 * and returns (`created` / `updated` / `unchanged`; with `wait`, waits until the lattice shows the app deployed, a
 * failure, or the timeout); otherwise applies it here ({@link applyApp}). `dryRun` plans against the lattice and
 * sends and stores nothing.
 * @throws TrellisError `NO_RESPONDERS` when no host runs on the lattice (client mode); from the client (`TIMEOUT`);
 *   `ALREADY_EXISTS` when the record kept changing under it. Failed requests are not thrown: they are in `failures`
 *   and `status`.
 */
export async function deployApp(client: CtlClient, manifest: AppManifest, opts: DeployOptions = {}): Promise<DeployResult> {
  if (opts.dryRun || (await resolveApplyBy(client, opts.applyBy)) === "client") return applyApp(client, manifest, opts);
  return storeApp(client, manifest, opts);
}

/** Resolves `auto`: `reconciler` when the lease is held by a host that answers, else `client`. */
export async function resolveApplyBy(client: CtlClient, applyBy: ApplyBy = "auto"): Promise<"reconciler" | "client"> {
  if (applyBy !== "auto") return applyBy;
  const lease = await readLease(client.nc, client.lattice);
  if (!lease) return "client";
  try {
    await client.getInventory(lease.holder);
    return "reconciler";
  } catch {
    return "client";
  }
}

/** Retries of a record write that lost a revision race. */
const STORE_RETRIES = 5;

/**
 * Stores `manifest` as the app's wanted state for the reconciler (keeping what the app owns) and returns; with
 * `wait`, waits for the lattice to show it. Nothing is written when the stored manifest is the same.
 * @throws TrellisError `ALREADY_EXISTS` when the record changed under it {@link STORE_RETRIES} times in a row.
 */
async function storeApp(client: CtlClient, manifest: AppManifest, opts: DeployOptions): Promise<DeployResult> {
  const logger = (opts.logger ?? silentLogger).child({ component: "app", app: manifest.name });
  const now = opts.now ?? (() => new Date());
  const store = await AppStore.open(client.nc, client.lattice);
  const version = manifestVersion(manifest);
  const desired = desiredState(manifest);
  for (let attempt = 1; ; attempt++) {
    const prev = await store.get(manifest.name);
    const same = prev !== undefined && canonicalJson(prev.record.manifest) === canonicalJson(manifest.raw) && prev.record.state !== "undeploying";
    const applied = prev?.record.applied ?? emptyApplied();
    const outcome: DeployOutcome = !prev ? "created" : same ? "unchanged" : "updated";
    if (!same) {
      const at = now().toISOString();
      const record: AppRecord = {
        name: manifest.name,
        version,
        manifest: manifest.raw,
        deployed_at: prev && prev.record.version === version ? prev.record.deployed_at : at,
        updated_at: at,
        applied,
        // Failures of the previous manifest do not belong to this one (a wait reads them).
        last_apply: prev ? { ...prev.record.last_apply, failures: [] } : { at, actions: 0, failures: [] },
        state: "deployed",
      };
      try {
        await store.put(record, prev?.revision ?? (await store.lastRevision(manifest.name)));
      } catch (err) {
        if (attempt < STORE_RETRIES && TrellisError.from(err).code === ErrorCode.AlreadyExists) continue;
        throw err;
      }
      logger.info("app stored for the reconciler", { outcome, version });
    }
    const base = { app: manifest.name, version, outcome, actions: [] as AppAction[], applied_by: "reconciler" as const };
    if (opts.wait) {
      const w = await waitForApp(client, desired, applied, { timeoutMs: opts.waitTimeoutMs, recordFailures: recordFailures(store, manifest.name, version) });
      return { ...base, failures: w.status.failures, status: w.status, timed_out: w.timed_out };
    }
    const status: AppStatusReport = {
      status: "reconciling",
      message: same ? "unchanged; the lattice's reconciler keeps it applied" : "stored; the lattice's reconciler applies it (`trellis app status` shows progress, or deploy with --wait)",
      missing: [],
      problems: [],
      pending: [],
      failures: [],
    };
    return { ...base, failures: [], status, timed_out: false };
  }
}

/** Failures the reconciler recorded for `version` of app `name` (for waits). */
function recordFailures(store: AppStore, name: string, version: string): () => Promise<ApplyFailure[]> {
  return async () => {
    const got = await store.get(name);
    if (!got || got.record.version !== version) return [];
    return got.record.last_apply.failures;
  };
}

/**
 * Applies a manifest here and now: plans against the observed lattice and the app's stored record, sends the
 * requests, stores the record (journal first). What the reconciler runs for each app, and what `deployApp` runs when
 * no reconciler holds the lease. Idempotent: when the manifest is the stored one and nothing is missing, nothing is
 * sent and nothing is written (`unchanged`).
 * @throws TrellisError `NO_RESPONDERS` when no host runs on the lattice; from the client (`TIMEOUT`); `ALREADY_EXISTS`
 *   when another client wrote the same app meanwhile. Failed requests are not thrown: they are in `failures` and `status`.
 */
export async function applyApp(client: CtlClient, manifest: AppManifest, opts: DeployOptions = {}): Promise<DeployResult> {
  const logger = (opts.logger ?? silentLogger).child({ component: "app", app: manifest.name });
  const now = opts.now ?? (() => new Date());
  const store = await AppStore.open(client.nc, client.lattice);
  const prev = await store.get(manifest.name);
  checkRevision(manifest.name, prev?.revision ?? 0, opts.ifRevision);
  const desired = desiredState(manifest);
  const applied = prev?.record.applied ?? emptyApplied();
  const observed = await observeLattice(client, configNamesToObserve(desired, applied), opts.observe);
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
    applied_by: "client",
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

/** @throws TrellisError `ALREADY_EXISTS` when `expected` is given and differs from `revision`. */
function checkRevision(app: string, revision: number, expected: number | undefined): void {
  if (expected !== undefined && revision !== expected) {
    throw new TrellisError(ErrorCode.AlreadyExists, `app ${app} was changed by another client meanwhile; read it again`, { details: { app } });
  }
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
  return applyApp(client, manifest, opts);
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
  /**
   * `reconciler`: the record was marked `undeploying` and the lattice's reconciler removes the app (with `wait`,
   * `removed` says whether it finished in time); `client`: removed here.
   */
  applied_by: "reconciler" | "client";
}

/**
 * Undeploys an app: with a live reconciler (or `applyBy: "reconciler"`), marks its record `undeploying` and returns
 * (with `wait`, waits until the reconciler removed it: the record is gone); otherwise removes it here
 * ({@link applyUndeploy}).
 * @throws NotFoundError when no app of that name is deployed; TrellisError `NO_RESPONDERS` when no host runs (client
 *   mode); from the client.
 */
export async function undeployApp(client: CtlClient, name: string, opts: Omit<DeployOptions, "dryRun"> = {}): Promise<UndeployResult> {
  if ((await resolveApplyBy(client, opts.applyBy)) === "client") return applyUndeploy(client, name, opts);
  const now = opts.now ?? (() => new Date());
  const store = await AppStore.open(client.nc, client.lattice);
  for (let attempt = 1; ; attempt++) {
    const got = await store.get(name);
    if (!got) throw new NotFoundError(`no app named ${name} is deployed on this lattice`, { app: name });
    if (got.record.state !== "undeploying") {
      const at = now().toISOString();
      try {
        await store.put({ ...got.record, state: "undeploying", updated_at: at, last_apply: { at, actions: 0, failures: [] } }, got.revision);
      } catch (err) {
        if (attempt < STORE_RETRIES && TrellisError.from(err).code === ErrorCode.AlreadyExists) continue;
        throw err;
      }
    }
    break;
  }
  let removed = false;
  let timedOut = false;
  if (opts.wait) {
    const deadline = Date.now() + (opts.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS);
    for (;;) {
      if (!(await store.get(name))) {
        removed = true;
        break;
      }
      if (Date.now() >= deadline) {
        timedOut = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { app: name, actions: [], failures: [], removed, timed_out: timedOut, applied_by: "reconciler" };
}

/**
 * Removes everything the app owns — its links, its components and providers (by the recorded ids and by the
 * `wasmcloud.dev/appspec` annotation), its inline config — and then its record. Config referenced by name only is
 * left alone. When a request fails the record stays (marked `undeploying`) and the failures are returned; run it
 * again (the reconciler retries by itself).
 * @throws NotFoundError when no app of that name is deployed; TrellisError `NO_RESPONDERS` when no host runs; from the
 *   client.
 */
export async function applyUndeploy(client: CtlClient, name: string, opts: Omit<DeployOptions, "dryRun"> = {}): Promise<UndeployResult> {
  const logger = (opts.logger ?? silentLogger).child({ component: "app", app: name });
  const now = opts.now ?? (() => new Date());
  const store = await AppStore.open(client.nc, client.lattice);
  const got = await store.get(name);
  if (!got) throw new NotFoundError(`no app named ${name} is deployed on this lattice`, { app: name });
  checkRevision(name, got.revision, opts.ifRevision);
  const desired = emptyDesired(name);
  const applied = got.record.applied;
  const observed = await observeLattice(client, configNamesToObserve(desired, applied), opts.observe);
  if (observed.hosts.length === 0) throw noHosts(client.lattice);
  const plan = planApp(desired, observed, applied);
  const failures = await applyActions(client, plan.actions, logger);
  let timedOut = false;
  if (failures.length === 0 && opts.wait) timedOut = (await waitForApp(client, desired, applied, { timeoutMs: opts.waitTimeoutMs })).timed_out;
  if (failures.length > 0) {
    const at = now().toISOString();
    await store.put({ ...got.record, state: "undeploying", updated_at: at, last_apply: { at, actions: plan.actions.length, failures } }, got.revision);
    return { app: name, actions: plan.actions, failures, removed: false, timed_out: timedOut, applied_by: "client" };
  }
  await store.delete(name, got.revision);
  logger.info("app undeployed", { actions: plan.actions.length });
  return { app: name, actions: plan.actions, failures, removed: true, timed_out: timedOut, applied_by: "client" };
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
  if (record.state === "undeploying" && record.last_apply.failures.length > 0) {
    report.status = "failed";
    report.message = `undeploy did not finish (${record.last_apply.failures.map((f) => f.message).join("; ")}); run \`trellis app undeploy ${record.name}\` again`;
  } else if (record.state === "undeploying") {
    report.status = "reconciling";
    report.message = "undeploy requested; the lattice's reconciler is removing the app";
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
