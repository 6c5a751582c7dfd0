/**
 * Small interfaces through which runtime parts (component runtime, provider supervisor) see the lattice
 * state the host keeps. The host implements them over JetStream KV; tests may implement them in memory.
 * @module
 */
import type { Link } from "./link.ts";

/** Live view of the links in the lattice, kept current by the host's KV watch. */
export interface LinkSource {
  /** Every outbound link of `sourceId` (the links of `COMPONENT_{sourceId}`), as of now. */
  linksFrom(sourceId: string): readonly Link[];
  /** Every link whose target is `targetId`. */
  linksTo(targetId: string): readonly Link[];
  /**
   * Calls `listener` after every change of a source's outbound links with the links added and removed
   * (compared by value). Returns a function that removes the listener.
   */
  onChange(listener: (change: LinkChange) => void): () => void;
  /**
   * Waits until this view reflects every link write made in the lattice before the call (read-your-writes across
   * hosts).
   * @param timeoutMs how long to wait, in milliseconds. @default 2000
   * @throws TimeoutError when it does not catch up in time.
   */
  sync(timeoutMs?: number): Promise<void>;
}

/** One change of a source's outbound links. */
export interface LinkChange {
  sourceId: string;
  added: Link[];
  removed: Link[];
  /** Every outbound link of the source after the change. */
  links: readonly Link[];
}

/** Named config, resolved and watched (reference §1.4 config, §3.4). */
export interface ConfigSource {
  /**
   * Merges the named configs left to right (right wins).
   * @throws NotFoundError naming the first config that does not exist.
   */
  resolve(names: readonly string[]): Promise<Record<string, string>>;
  /** The merged config of `names` as known now (missing configs count as `{}`); no I/O. */
  current(names: readonly string[]): Record<string, string>;
  /** Calls `listener` with the config name whenever a config is put or deleted. Returns an unsubscribe function. */
  onChange(listener: (name: string) => void): () => void;
}

/** Publishes lattice events (reference §5) from this host. */
export interface EventPublisher {
  /** Publishes `wasmbus.evt.{lattice}.{eventName}` with a CloudEvent around `data`. Never throws. */
  publish(eventName: string, data: Record<string, unknown>): void;
}
