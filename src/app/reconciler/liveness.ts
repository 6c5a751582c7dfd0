/**
 * Host liveness as the active reconciler sees it (ADR 0012). Every host publishes a small beat on
 * `trellis.live.v1.{lattice}.{hostId}` every `livenessIntervalMs` (default 1 s, src/host/host.ts); the tracker also
 * learns hosts from `host_started`, `host_heartbeat` and a `host.ping` seed, and forgets them on `host_stopped`.
 *
 * A host is declared **lost** when
 * - it has missed one and a half beats and a direct request to it (`host.get.{id}`) gets *no responders*: NATS has
 *   already dropped its connection (a killed process's socket is closed by the kernel), typically ≈ 1.5 intervals
 *   after its last beat; or
 * - it has missed `missedBeats` beats (default 3) whatever the probe says (a hung process, a cut network).
 *
 * On a loss the tracker publishes `host_stopped` on behalf of the lost host (CloudEvent `source` = the lost host's id,
 * as the host itself would have; `data.reason` `"lost"`, plus `detected_by`, `detection`, `last_seen`, so that wadm and
 * other consumers drop the host at once) and calls `onLost`. A lost host that beats again is a new join.
 * @module
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { CtlClient } from "../../control/client.ts";
import { ErrorCode, TrellisError } from "../../core/errors.ts";
import { isValidId } from "../../core/ids.ts";
import { type CloudEvent, EventType, cloudEvent } from "../../core/events.ts";
import type { Logger } from "../../core/logger.ts";
import { ctl, eventSubject, livenessWildcard } from "../../core/subjects.ts";

/** Default interval of host liveness beats: 1 s. */
export const DEFAULT_LIVENESS_INTERVAL_MS = 1_000;
/** Default number of missed beats after which a host is lost even when the probe cannot tell. */
export const DEFAULT_MISSED_BEATS = 3;
/** Interval assumed for a host known only from its 30 s heartbeats (no liveness beats). */
const HEARTBEAT_ONLY_INTERVAL_MS = 30_000;

/** A liveness beat's payload. */
export interface LivenessBeat {
  host_id: string;
  /** The sender's beat interval, in milliseconds. */
  interval_ms: number;
  /** Beats sent so far by this host process. */
  seq: number;
}

/** How a loss was detected. */
export type LossDetection = "no_responders" | "missed_beats";

/** What the tracker knows of a lost host. */
export interface LostHost {
  hostId: string;
  labels: Record<string, string>;
  detection: LossDetection;
  /** Milliseconds between the last sign of life and the declaration. */
  silentMs: number;
}

/** Options of {@link HostTracker}. */
export interface HostTrackerOptions {
  nc: NatsConnection;
  lattice: string;
  /** The tracking host (the `detected_by` of `host_stopped` events it publishes). */
  selfId: string;
  /** Client used for probes. */
  client: CtlClient;
  logger: Logger;
  /** Beats missed before a host is lost whatever the probe says. @default 3 */
  missedBeats?: number;
  /** Called when a host is declared lost (after `host_stopped` is published). */
  onLost: (h: LostHost) => void;
  /** Called when a host appears (first beat, `host_started`, or a beat after it was lost). */
  onJoined?: (hostId: string) => void;
}

interface Tracked {
  lastSeen: number;
  intervalMs: number;
  labels: Record<string, string>;
  probing: boolean;
}

const mono = () => performance.now();

/** Tracks which hosts are alive; see the module comment. */
export class HostTracker {
  readonly #o: HostTrackerOptions;
  readonly #hosts = new Map<string, Tracked>();
  readonly #subs: Subscription[] = [];
  readonly #missed: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(o: HostTrackerOptions) {
    this.#o = o;
    this.#missed = o.missedBeats ?? DEFAULT_MISSED_BEATS;
  }

  /** Subscribes, seeds from `host.ping`, and starts checking. */
  async start(): Promise<void> {
    const { nc, lattice } = this.#o;
    this.#subs.push(
      nc.subscribe(livenessWildcard(lattice), {
        callback: (_e, m) => {
          try {
            const b = m.json<LivenessBeat>();
            const interval = Number(b.interval_ms);
            // A host id is one subject token (it is probed at host.get.{id}); intervals outside 50 ms – 1 h are ignored.
            if (isValidId(b.host_id)) this.#seen(b.host_id, interval >= 50 && interval <= 3_600_000 ? interval : DEFAULT_LIVENESS_INTERVAL_MS);
          } catch {
            // not a beat
          }
        },
      }),
    );
    for (const name of [EventType.HostStarted, EventType.HostStopped, EventType.HostHeartbeat, EventType.LabelsChanged]) {
      this.#subs.push(
        nc.subscribe(eventSubject(lattice, name), {
          callback: (_e, m) => {
            try {
              this.#onEvent(name, m.json<CloudEvent>());
            } catch {
              // not a CloudEvent
            }
          },
        }),
      );
    }
    await nc.flush();
    for (const h of await this.#o.client.getHosts()) {
      if (!this.#hosts.has(h.id)) this.#hosts.set(h.id, { lastSeen: mono(), intervalMs: HEARTBEAT_ONLY_INTERVAL_MS, labels: h.labels, probing: false });
    }
    this.#timer = setInterval(() => this.#check(), 100);
  }

  #onEvent(name: string, ev: CloudEvent): void {
    const id = ev.source;
    if (!isValidId(id) || typeof ev.data !== "object" || ev.data === null) return;
    if (name === EventType.HostStopped) {
      if (this.#hosts.delete(id)) this.#o.logger.debug("host stopped", { host_id: id });
      return;
    }
    const labels = (ev.data.labels ?? undefined) as Record<string, string> | undefined;
    const cur = this.#hosts.get(id);
    if (cur) {
      cur.lastSeen = mono();
      if (labels) cur.labels = labels;
      return;
    }
    if (name === EventType.LabelsChanged) return;
    this.#hosts.set(id, { lastSeen: mono(), intervalMs: HEARTBEAT_ONLY_INTERVAL_MS, labels: labels ?? {}, probing: false });
    this.#o.onJoined?.(id);
  }

  #seen(id: string, intervalMs: number): void {
    const cur = this.#hosts.get(id);
    if (cur) {
      cur.lastSeen = mono();
      cur.intervalMs = intervalMs;
      return;
    }
    this.#hosts.set(id, { lastSeen: mono(), intervalMs, labels: {}, probing: false });
    this.#o.onJoined?.(id);
  }

  #check(): void {
    const now = mono();
    for (const [id, h] of this.#hosts) {
      if (id === this.#o.selfId) continue;
      const silent = now - h.lastSeen;
      if (silent >= h.intervalMs * this.#missed) {
        this.#declareLost(id, h, "missed_beats", silent);
      } else if (silent >= h.intervalMs * 1.5 && !h.probing) {
        h.probing = true;
        void this.#probe(id, h);
      }
    }
  }

  async #probe(id: string, h: Tracked): Promise<void> {
    try {
      await this.#o.client.request(ctl.hostGet(this.#o.lattice, id), undefined, Math.max(250, h.intervalMs));
      if (this.#hosts.get(id) === h) h.lastSeen = Math.max(h.lastSeen, mono() - h.intervalMs);
    } catch (err) {
      const e = TrellisError.from(err);
      if (e.code === ErrorCode.NoResponders && this.#hosts.get(id) === h) this.#declareLost(id, h, "no_responders", mono() - h.lastSeen);
    } finally {
      h.probing = false;
    }
  }

  #declareLost(id: string, h: Tracked, detection: LossDetection, silentMs: number): void {
    if (this.#hosts.get(id) !== h) return;
    this.#hosts.delete(id);
    const lastSeen = new Date(Date.now() - silentMs).toISOString();
    this.#o.logger.warn("host lost", { host_id: id, detection, silent_ms: Math.round(silentMs) });
    try {
      const ev = cloudEvent(EventType.HostStopped, id, { labels: h.labels, reason: "lost", detection, detected_by: this.#o.selfId, last_seen: lastSeen });
      this.#o.nc.publish(eventSubject(this.#o.lattice, EventType.HostStopped), JSON.stringify(ev));
    } catch (err) {
      this.#o.logger.warn("cannot publish host_stopped for a lost host", { host_id: id, error: String(err) });
    }
    this.#o.onLost({ hostId: id, labels: h.labels, detection, silentMs });
  }

  /** Ids of the hosts currently believed alive (the tracking host included once it beats). */
  alive(): string[] {
    return [...this.#hosts.keys()].sort();
  }

  /** Unsubscribes and stops checking. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    for (const s of this.#subs) s.unsubscribe();
    this.#subs.length = 0;
    this.#hosts.clear();
  }
}
