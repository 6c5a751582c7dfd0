/**
 * Restarting a component worker thread that was terminated or died (docs/adr/0014): a new thread with the same
 * components, retried with exponential backoff until it works (at once when the host's NATS connection comes back);
 * the calls held meanwhile served after it, or refused once an attempt failed; a component that alone cannot be
 * loaded again retried on its own.
 * @module
 */
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { type Hold, rejectCall } from "./worker-calls.ts";
import type { WorkerHandle } from "./worker-handle.ts";
import type { ComponentAvailability, WorkerPoolOptions } from "./worker-pool-options.ts";

/** What a restart needs from the worker pool (read when needed: the pool may close meanwhile). */
export interface RestartHost {
  readonly opts: WorkerPoolOptions;
  /** True once the pool is closed: a restart or reload stops retrying. */
  isClosed(): boolean;
  /** Resolves at the next reconnect of the host's connection (a new promise after each reconnect). */
  reconnected(): Promise<void>;
  /** Resolves when the pool closes. */
  readonly closing: Promise<void>;
  /** True while worker `w` hosts one of the shards of component `id` (it was not unloaded or moved meanwhile). */
  hostsShard(w: WorkerHandle, id: string): boolean;
  /** Records the availability of the shards of `ids` on `w` and reports each component's (`WorkerPool` `#status`). */
  status(w: WorkerHandle, ids: Iterable<string>, status: ComponentAvailability, error?: string): void;
}

/**
 * Restarts worker thread `w` with its components, retrying with backoff (`opts.restartBackoffMs`, doubled per failure
 * up to `opts.maxRestartBackoffMs`) until it works or the pool closes (a restart fails e.g. while NATS is down: the
 * new thread cannot connect). Until the first attempt fails, calls for its components are held (`holds`) and served
 * afterwards; from then on they are answered at once with `COMPONENT_UNAVAILABLE`, and the components are reported
 * `failed` until they serve again (ADR 0014). The holds' subscriptions end either way. A component that alone cannot
 * be loaded again is reported `failed`, its held calls refused, and it is retried on its own.
 * @param reason why the worker is restarted (in the errors of its pending requests and in status messages).
 * @returns true once the worker serves again; false when the pool closed first.
 */
export async function restartWorker(host: RestartHost, w: WorkerHandle, reason: string, holds: Hold[]): Promise<boolean> {
  const opts = host.opts;
  w.failPending(new TrellisError(ErrorCode.ComponentTrap, `component worker restarted: ${reason}`));
  const nc = opts.nc;
  host.status(w, w.specs.keys(), "restarting");
  const base = opts.restartBackoffMs ?? 100;
  const max = opts.maxRestartBackoffMs ?? 5000;
  let attempt = 0;
  let served = false;
  const unloaded: { id: string; error: string }[] = [];
  while (!host.isClosed()) {
    try {
      await w.start();
      unloaded.length = 0;
      for (const spec of w.specs.values()) {
        try {
          await w.request({ t: "load", spec });
        } catch (err) {
          if (!w.alive) throw err; // the thread went away: retry it all
          unloaded.push({ id: spec.componentId, error: (err as Error).message });
        }
      }
      if (unloaded.length > 0 && unloaded.length === w.specs.size) throw new Error(unloaded.map((u) => `${u.id}: ${u.error}`).join("; "));
      served = true;
      break;
    } catch (err) {
      attempt++;
      const msg = (err as Error).message;
      const delay = Math.min(max, base * 2 ** (attempt - 1));
      opts.logger.error("component worker could not be restarted; retrying", {
        worker: w.index,
        components: [...w.specs.keys()],
        attempt,
        retry_in_ms: delay,
        error: msg,
      });
      if (attempt === 1) {
        const ids = [...w.specs.keys()];
        host.status(w, ids, "failed", `its worker thread could not be restarted (${reason}): ${msg}`);
        for (const h of holds) {
          h.refuse = new TrellisError(
            ErrorCode.ComponentUnavailable,
            `component ${h.id} is unavailable: its worker thread is being restarted and could not start yet (${msg})`,
            { details: { componentId: h.id } },
          );
          for (const m of h.held.splice(0)) rejectCall(nc, m, h.refuse);
        }
      }
      w.alive = false;
      w.failPending(new TrellisError(ErrorCode.ComponentUnavailable, `component worker ${w.index} could not be restarted: ${msg}`));
      try {
        await w.worker?.terminate();
      } catch {
        // already gone
      }
      // NATS back on the host's connection: the worker can likely connect now, so do not wait out the backoff
      await Promise.race([sleep(delay), host.reconnected(), host.closing]);
    }
  }
  for (const h of holds) h.sub.unsubscribe();
  if (!served) return false;
  opts.logger.info("component worker restarted", { worker: w.index, components: [...w.specs.keys()], attempts: attempt + 1 });
  const failed = new Set(unloaded.map((u) => u.id));
  host.status(w, [...w.specs.keys()].filter((id) => !failed.has(id)), "running");
  for (const u of unloaded) {
    // this component alone could not be loaded again: reported failed (its calls get NO_RESPONDERS at once), retried
    opts.logger.error("component could not be reloaded after its worker restarted; retrying", { component_id: u.id, error: u.error });
    host.status(w, [u.id], "failed", `it could not be reloaded after its worker thread restarted: ${u.error}`);
    void reloadComponent(host, w, u.id);
  }
  try {
    await nc.flush();
    for (const h of holds) {
      if (failed.has(h.id)) {
        for (const m of h.held) rejectCall(nc, m, new TrellisError(ErrorCode.ComponentUnavailable, `component ${h.id} is unavailable: it could not be reloaded after its worker thread restarted`));
        continue;
      }
      for (const m of h.held) nc.publish(m.subject, m.data, { ...(m.reply ? { reply: m.reply } : {}), ...(m.headers ? { headers: m.headers } : {}) });
    }
  } catch {
    // connection closed: the callers time out
  }
  return true;
}

/** Retries loading one component into its (running) worker with backoff, until it loads or is gone. */
async function reloadComponent(host: RestartHost, w: WorkerHandle, id: string): Promise<void> {
  const opts = host.opts;
  const base = opts.restartBackoffMs ?? 100;
  const max = opts.maxRestartBackoffMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    await Promise.race([sleep(Math.min(max, base * 2 ** (attempt - 1))), host.closing]);
    const spec = w.specs.get(id);
    // closed, unloaded, moved, or the worker is restarting (which loads it again)
    if (host.isClosed() || !spec || !host.hostsShard(w, id) || !w.alive || w.restarting) return;
    try {
      await w.request({ t: "load", spec });
      opts.logger.info("component reloaded", { component_id: id, attempts: attempt });
      host.status(w, [id], "running");
      return;
    } catch (err) {
      opts.logger.warn("component still cannot be reloaded; retrying", { component_id: id, attempt, error: (err as Error).message });
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
