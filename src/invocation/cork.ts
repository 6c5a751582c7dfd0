/**
 * Write batching for a NATS connection under concurrency (docs/adr/0024-call-path.md). nats.js writes what was
 * published in one microtask with one socket write; publishes made by separate I/O callbacks of one event-loop turn
 * (32 HTTP requests parsed from 32 sockets, replies to several invocations) each get a write of their own — one
 * syscall per message. {@link corkUntilImmediate} corks the connection's socket until the `setImmediate` phase of the
 * current turn, so those writes leave as one `writev`. A lone call waits for nothing but the end of the I/O callbacks
 * already running (setImmediate runs right after the poll phase).
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

const corked = new WeakSet<Corkable>();

function socketOf(nc: NatsConnection): Corkable | undefined {
  const s = (nc as unknown as { protocol?: { transport?: { socket?: unknown } } }).protocol?.transport?.socket as Corkable | undefined;
  return s && typeof s.cork === "function" && typeof s.uncork === "function" ? s : undefined;
}

/**
 * Corks `nc`'s socket (once per event-loop turn) and uncorks it in this turn's `setImmediate` phase. Call it right
 * before a publish that may have company in the same turn. Never throws.
 */
export function corkUntilImmediate(nc: NatsConnection): void {
  const s = socketOf(nc);
  if (!s || corked.has(s) || s.writable === false) return;
  corked.add(s);
  s.cork();
  setImmediate(() => {
    corked.delete(s);
    s.uncork();
  });
}
