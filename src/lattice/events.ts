/**
 * Publishes lattice events as CloudEvents on `wasmbus.evt.{lattice}.{type}` (reference §5).
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { cloudEvent } from "../core/events.ts";
import { eventSubject } from "../core/subjects.ts";
import type { EventPublisher } from "../core/ports.ts";
import type { Logger } from "../core/logger.ts";

/** {@link EventPublisher} over core NATS publish (no JetStream; a stream may persist them, as wadm's does). */
export class NatsEventPublisher implements EventPublisher {
  readonly #nc: NatsConnection;
  readonly #lattice: string;
  readonly #source: string;
  readonly #logger: Logger;

  /** @param source the publishing host's id, the CloudEvent `source`. */
  constructor(nc: NatsConnection, lattice: string, source: string, logger: Logger) {
    this.#nc = nc;
    this.#lattice = lattice;
    this.#source = source;
    this.#logger = logger;
  }

  /** {@inheritDoc EventPublisher.publish} */
  publish(eventName: string, data: Record<string, unknown>): void {
    try {
      this.#nc.publish(eventSubject(this.#lattice, eventName), JSON.stringify(cloudEvent(eventName, this.#source, data)));
    } catch (err) {
      this.#logger.warn("cannot publish event", { event: eventName, error: String(err) });
    }
  }
}
