/**
 * Worker thread bootstrap: turns on Node's on-disk compile cache (so the stripped TypeScript and compiled code of the
 * worker's modules are reused by every later worker thread and host start), then loads the worker itself.
 * @module
 */
import module from "node:module";
import { workerData } from "node:worker_threads";

const dir = (workerData as { compileCacheDir?: string }).compileCacheDir;
if (dir) module.enableCompileCache(dir);
await import("./worker-main.ts");
