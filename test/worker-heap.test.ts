/**
 * Component workers' V8 heap sizing (docs/adr/0028-worker-heap.md, src/component/worker-heap.ts): a worker thread
 * created after the runtime started has the policy's initial old-generation size, so garbage promoted to the old
 * generation triggers no full (mark-compact) collection until that size is reached; the policy field and the
 * `trellis up` flag with its env twin are checked and defaulted.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Worker } from "node:worker_threads";
import { resolvePolicy } from "../src/component/policy.ts";
import { appliedWorkerInitialHeapMb, DEFAULT_WORKER_INITIAL_HEAP_MB } from "../src/component/worker-heap.ts";
import { workloadOptions } from "../src/cli/commands/up.ts";
import { InvalidArgumentError } from "../src/core/errors.ts";
import { waitFor } from "../src/testing/index.ts";
import { startRuntime } from "./support/components.ts";

/**
 * A worker that allocates about 180 MB of small arrays, each kept alive long enough (a ring of 20,000) to be promoted
 * to the old generation and die there, and reports how many full collections it saw.
 */
const PROMOTING_WORKLOAD = `
const { parentPort } = require("node:worker_threads");
const { PerformanceObserver, constants } = require("node:perf_hooks");
let major = 0;
const o = new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++; });
o.observe({ entryTypes: ["gc"] });
const ring = new Array(20000);
for (let i = 0; i < 300000; i++) ring[i % ring.length] = new Array(64).fill(i);
setTimeout(() => { o.disconnect(); parentPort.postMessage(major); }, 100);
`;

async function fullCollectionsInNewWorker(): Promise<number> {
  const w = new Worker(PROMOTING_WORKLOAD, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 1024 } });
  try {
    return await new Promise<number>((resolve, reject) => {
      w.once("message", (m: number) => resolve(m));
      w.once("error", reject);
    });
  } finally {
    await w.terminate();
  }
}

test("workers created after the runtime started run the promoted garbage of 180 MB without a full collection", async () => {
  assert.equal(appliedWorkerInitialHeapMb(), undefined, "nothing in this process set the initial heap yet");
  const before = await fullCollectionsInNewWorker();
  assert.ok(before >= 1, `with V8's own sizing the workload causes full collections (saw ${before})`);

  const env = await startRuntime({ policy: { workerInitialHeapMb: 512 } });
  try {
    // the runtime starts its first worker at once (prewarm); the flag is set right before that worker is created
    await waitFor(() => appliedWorkerInitialHeapMb() === 512, { timeoutMs: 15_000, message: "the runtime to start a worker" });
    const after = await fullCollectionsInNewWorker();
    assert.equal(after, 0, "no full collection below the initial old-generation size of 512 MiB");
  } finally {
    await env.close();
  }
});

test("policy.workerInitialHeapMb: default 128 MiB, 0 keeps V8's sizing, capped at workerHeapMb, checked", () => {
  assert.equal(DEFAULT_WORKER_INITIAL_HEAP_MB, 128);
  assert.equal(resolvePolicy(undefined, 1000).workerInitialHeapMb, 128);
  assert.equal(resolvePolicy({ workerInitialHeapMb: 0 }, 1000).workerInitialHeapMb, 0);
  assert.equal(resolvePolicy({ workerHeapMb: 64 }, 1000).workerInitialHeapMb, 64);
  for (const bad of [-1, 1.5, Number.NaN]) {
    assert.throws(
      () => resolvePolicy({ workerInitialHeapMb: bad }, 1000),
      (e: unknown) => e instanceof InvalidArgumentError && /policy\.workerInitialHeapMb must be a non-negative integer/.test(e.message),
    );
  }
});

test("trellis up --component-worker-initial-heap-mb and TRELLIS_COMPONENT_WORKER_INITIAL_HEAP_MB", () => {
  assert.deepEqual(workloadOptions({ componentWorkerInitialHeapMb: "256" }, {}).components, { workerInitialHeapMb: 256 });
  assert.deepEqual(workloadOptions({}, { TRELLIS_COMPONENT_WORKER_INITIAL_HEAP_MB: "0" }).components, { workerInitialHeapMb: 0 });
  assert.deepEqual(workloadOptions({ componentWorkerInitialHeapMb: "64" }, { TRELLIS_COMPONENT_WORKER_INITIAL_HEAP_MB: "0" }).components, { workerInitialHeapMb: 64 });
  assert.throws(() => workloadOptions({ componentWorkerInitialHeapMb: "-1" }, {}), /--component-worker-initial-heap-mb must be a non-negative integer, got "-1"/);
  assert.throws(() => workloadOptions({ componentWorkers: "0" }, {}), /--component-workers must be a positive integer/);
});
