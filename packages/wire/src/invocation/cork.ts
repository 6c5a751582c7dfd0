/**
 * Write batching for a NATS connection under concurrency (docs/adr/0024-call-path.md). nats.js writes what was
 * published in one microtask with one socket write; publishes made by separate I/O callbacks of one event-loop turn
 * (32 HTTP requests parsed from 32 sockets, replies to several invocations) each get a write of their own — one
 * syscall per message. {@link corkUntilImmediate} corks the connection's socket, from the second message of a turn on,
 * until the `setImmediate` phase of that turn, so those writes leave as one `writev` (setImmediate runs right after the
 * poll phase). A lone call is not corked at all.
 *
 * nats.js has no cork of its own: this reaches its Node transport's socket (`nc.protocol.transport.socket`). When that
 * shape is not there (another transport, another nats.js version), nothing is corked and everything works as before.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";

interface Corkable {
  cork(): void;
  uncork(): void;
  writable?: boolean;
}

/** Per socket, during one event-loop turn: 1 = one message went out uncorked, 2 = corked for the rest of the turn. */
const turn = new WeakMap<Corkable, 1 | 2>();

function socketOf(nc: NatsConnection): Corkable | undefined {
  const s = (nc as unknown as { protocol?: { transport?: { socket?: unknown } } }).protocol?.transport?.socket as Corkable | undefined;
  return s && typeof s.cork === "function" && typeof s.uncork === "function" ? s : undefined;
}

/**
 * Call right before a publish that may have company in the same event-loop turn. The first publish of a turn goes out
 * as usual (a serial caller pays one `setImmediate` and nothing else); from the second one on, the socket is corked
 * until this turn's `setImmediate` phase, so the rest of the turn's messages leave in one write. Never throws.
 */
export function corkUntilImmediate(nc: NatsConnection): void {
  const s = socketOf(nc);
  if (!s) return;
  const state = turn.get(s);
  if (state === undefined) {
    turn.set(s, 1);
    setImmediate(() => {
      if (turn.get(s) === 2) s.uncork();
      turn.delete(s);
    });
  } else if (state === 1 && s.writable !== false) {
    turn.set(s, 2);
    s.cork();
  }
}
