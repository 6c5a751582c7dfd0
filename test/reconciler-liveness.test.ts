/**
 * Host liveness as the reconciler tracks it (src/app/reconciler/liveness.ts, ADR 0012), with stand-in hosts on a real
 * nats-server: a host whose connection is gone is lost by the no-responders probe after 1.5 silent intervals; a host
 * that is still connected but silent (hung) is lost after 3 intervals; a host that keeps beating is never lost; each
 * loss publishes `host_stopped` on behalf of the lost host.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { HostTracker, type LostHost } from "../src/app/reconciler/liveness.ts";
import { CtlClient } from "../src/control/client.ts";
import type { CloudEvent } from "../src/core/events.ts";
import { silentLogger } from "../src/core/logger.ts";
import { ctl, eventSubject, livenessSubject } from "../src/core/subjects.ts";
import { startTestNats, uniqueLattice, waitFor, type TestNats } from "../src/testing/index.ts";

const INTERVAL = 200;

let nats: TestNats;
const conns: NatsConnection[] = [];
const timers: NodeJS.Timeout[] = [];
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  for (const t of timers) clearInterval(t);
  await Promise.allSettled(conns.map((c) => c.close()));
  await nats.stop();
});

/** A stand-in host: beats every INTERVAL and answers (or, `hung`, swallows) `host.get`. */
async function fakeHost(lattice: string, id: string, opts: { hung?: boolean } = {}) {
  const nc = await connect({ servers: nats.url });
  conns.push(nc);
  nc.subscribe(ctl.hostGet(lattice, id), {
    callback: (_e, m) => {
      if (!opts.hung) m.respond(JSON.stringify({ success: true, message: "", response: { host_id: id, labels: {}, components: [], providers: [] } }));
    },
  });
  let seq = 0;
  const beat = () => nc.publish(livenessSubject(lattice, id), JSON.stringify({ host_id: id, interval_ms: INTERVAL, seq: ++seq }));
  beat();
  const timer = setInterval(beat, INTERVAL);
  timers.push(timer);
  return { nc, stopBeating: () => clearInterval(timer) };
}

test("lost by probe when the connection is gone, by missed beats when hung; a beating host stays", async () => {
  const lattice = uniqueLattice("live");
  const nc = await connect({ servers: nats.url });
  conns.push(nc);
  const client = await CtlClient.connect({ nc, lattice, timeoutMs: 1000 });
  const events: CloudEvent[] = [];
  nc.subscribe(eventSubject(lattice, "host_stopped"), {
    callback: (_e, m) => {
      events.push(m.json<CloudEvent>());
    },
  });
  const lost: (LostHost & { at: number })[] = [];
  const tracker = new HostTracker({ nc, lattice, selfId: "NSELF", client, logger: silentLogger, onLost: (h) => lost.push({ ...h, at: performance.now() }) });
  await tracker.start();
  try {
    const dead = await fakeHost(lattice, "NDEAD");
    const hung = await fakeHost(lattice, "NHUNG", { hung: true });
    const alive = await fakeHost(lattice, "NALIVE");
    await waitFor(() => ["NDEAD", "NHUNG", "NALIVE"].every((id) => tracker.alive().includes(id)), { message: "the tracker knows the three hosts" });
    await new Promise((r) => setTimeout(r, 3 * INTERVAL));
    assert.equal(lost.length, 0, "no host is lost while all beat");

    const t0 = performance.now();
    dead.stopBeating();
    await dead.nc.close();
    hung.stopBeating();
    await waitFor(() => lost.length === 2, { timeoutMs: 10 * INTERVAL, message: "both silent hosts lost" });
    const byId = Object.fromEntries(lost.map((l) => [l.hostId, l]));
    assert.equal(byId.NDEAD?.detection, "no_responders");
    assert.equal(byId.NHUNG?.detection, "missed_beats");
    assert.ok(byId.NDEAD!.at - t0 < 3 * INTERVAL, `the probe is faster than 3 missed beats (${Math.round(byId.NDEAD!.at - t0)} ms)`);
    assert.ok(byId.NHUNG!.at - t0 >= 2 * INTERVAL, "a hung host is given 3 intervals");
    assert.deepEqual(tracker.alive(), ["NALIVE"]);
    await waitFor(() => events.length === 2, { message: "host_stopped published for both" });
    for (const ev of events) {
      assert.equal(ev.data.reason, "lost");
      assert.equal(ev.data.detected_by, "NSELF");
    }
    assert.deepEqual(events.map((e) => e.source).sort(), ["NDEAD", "NHUNG"], "source is the lost host");
    alive.stopBeating();
  } finally {
    tracker.stop();
  }
});
