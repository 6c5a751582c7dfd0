/**
 * What the worker pool does on the wire when a worker thread goes away (docs/adr/0014, 0023): answers the calls the
 * watchdog table recorded, holds calls arriving for its components while it restarts (a subscription in their queue
 * groups on the host's connection), and publishes target exit notices.
 * @module
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { invocationQueue, invocationWildcard } from "../core/subjects.ts";
import { ErrorCode, TimeoutError, TrellisError } from "../core/errors.ts";
import { errorReply } from "../../packages/wire/src/invocation/server.ts";
import { encodeTargetExit } from "../../packages/wire/src/invocation/exit.ts";
import type { WatchedCall } from "./watchdog.ts";

/** Most reply subjects listed in one exit notice (keeps it far below max_payload); calls beyond are failed in doubt. */
const MAX_SPARED = 4096;

/**
 * Calls held for one component while its worker restarts (a subscription in its queue group on the host's
 * connection). Once `refuse` is set (a restart attempt failed), held and arriving calls are answered with it at once.
 */
export type Hold = { id: string; held: Msg[]; sub: { unsubscribe(): void }; refuse: TrellisError | undefined };

/** Answers call `m` with `err` (nothing when it has no reply subject or the connection is closed). */
export function rejectCall(nc: NatsConnection, m: Msg, err: TrellisError): void {
  if (!m.reply) return;
  try {
    nc.publish(m.reply, errorReply(err));
  } catch {
    // connection closed: the caller times out
  }
}

/** Holds calls that arrive for the given components while their worker restarts (same queue groups). */
export function holdCalls(nc: NatsConnection, lattice: string, ids: string[]): Hold[] {
  return ids.map((id) => {
    const h: Hold = { id, held: [], sub: { unsubscribe: () => undefined }, refuse: undefined };
    try {
      h.sub = nc.subscribe(invocationWildcard(lattice, id), {
        queue: invocationQueue(lattice, id),
        callback: (_e, m) => {
          if (h.refuse) rejectCall(nc, m, h.refuse);
          else h.held.push(m);
        },
      });
    } catch {
      // connection closed: nothing arrives anyway
    }
    return h;
  });
}

/**
 * Answers the recorded calls of a worker the watchdog terminated: `TIMEOUT` to the culprit's call, `COMPONENT_TRAP`
 * ("worker restarted") to the calls of its neighbours.
 */
export function answerKilledCalls(nc: NatsConnection, calls: WatchedCall[], culprit: WatchedCall | undefined, culpritId: string, limit: number): void {
  for (const c of calls) {
    if (!c.replySubject) continue;
    const id = culprit ? culpritId : "unknown";
    const err =
      culprit && c.slot === culprit.slot
        ? new TimeoutError(
            `component ${culpritId} did not finish within its execution time of ${limit} ms; it was stopped (its worker thread was restarted)`,
            limit,
            { componentId: culpritId, terminated: true },
          )
        : new TrellisError(
            ErrorCode.ComponentTrap,
            `the call was cut short: its worker thread was restarted because component ${id} did not finish in time`,
            { details: { reason: "worker_restarted", culprit: id } },
          );
    try {
      nc.publish(c.replySubject, errorReply(err));
    } catch {
      // connection closed
    }
  }
}

/**
 * Publishes a target exit notice for component `id` (ADR 0014), listing in `spared` the reply subjects of the calls
 * that will still be answered (held ones, or those its other shards are running; ADR 0023).
 */
export function announceExit(nc: NatsConnection, lattice: string, hostId: string, id: string, spared: string[], reason: string): void {
  const { subject, data } = encodeTargetExit(lattice, {
    target_id: id,
    kind: "component",
    host_id: hostId,
    instance_id: "",
    reason,
    at: Date.now(),
    spared: spared.slice(0, MAX_SPARED),
  });
  try {
    nc.publish(subject, data);
  } catch {
    // connection closed: callers time out instead
  }
}
