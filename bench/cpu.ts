/**
 * CPU time per request, per process (issue 12 item 5): reads user + system time of this process and of every process
 * it started (directly or not: the host's providers, the component host, the raw NATS responder, nats-server, Redis,
 * wrk) from `/proc/PID/stat` before and after a measured phase. Each process gets a label from its command line, so a
 * regression in any one of them shows in the results, next to the wall-clock figures.
 *
 * `/proc` counts in clock ticks (usually 100 per second: 10 ms resolution), so measure phases of a second or more.
 * The figures count every thread of a process (a host's component workers included). Linux only; elsewhere the
 * snapshot is empty and every figure is absent.
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

/** Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`; 100 on Linux). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  pid: number;
  ppid: number;
  /** user + system CPU time in milliseconds. */
  cpuMs: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name is in parentheses and may contain spaces: split after the last ')'
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // rest[0] is field 3 (state): ppid = field 4, utime = field 14, stime = field 15
    const ppid = Number(rest[1]);
    const ticks = Number(rest[11]) + Number(rest[12]);
    return { pid, ppid, cpuMs: (ticks * 1000) / CLK_TCK };
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "";
  }
}

/** A readable name for a process from its command line (`provider:kv-memory`, `nats-server`, `wrk`, …). */
export function labelFor(pid: number, self = process.pid): string {
  if (pid === self) return "bench";
  const cmd = cmdline(pid);
  const provider = /providers\/([\w-]+)\/(?:main\.ts|provider\.py)/.exec(cmd);
  if (provider) return `provider:${provider[1]}`;
  if (/nats-server/.test(cmd)) return "nats-server";
  if (/redis-server/.test(cmd)) return "redis-server";
  if (/(^|\/)wrk\b/.test(cmd)) return "wrk";
  if (/jco/.test(cmd)) return "jco-serve";
  const script = /([\w.-]+)\.(?:ts|mjs|js|py)\b/.exec(cmd.split(" ").slice(1).join(" "));
  if (script) return script[1]!;
  return cmd.split(" ")[0]?.split("/").pop() || String(pid);
}

/** CPU time of this process and its descendants at one moment. */
export interface CpuSnapshot {
  /** When it was taken (`performance.now()`, ms). */
  at: number;
  byPid: Map<number, { label: string; cpuMs: number }>;
}

/** Reads the CPU time of `root` (default: this process) and of every process below it. */
export function cpuSnapshot(root = process.pid): CpuSnapshot {
  const at = performance.now();
  const byPid = new Map<number, { label: string; cpuMs: number }>();
  let all: ProcStat[];
  try {
    all = readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .map((d) => readStat(Number(d)))
      .filter((s): s is ProcStat => s !== undefined);
  } catch {
    return { at, byPid };
  }
  const children = new Map<number, ProcStat[]>();
  for (const s of all) {
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  const rootStat = all.find((s) => s.pid === root);
  if (!rootStat) return { at, byPid };
  const queue = [rootStat];
  while (queue.length > 0) {
    const s = queue.shift()!;
    byPid.set(s.pid, { label: labelFor(s.pid, root), cpuMs: s.cpuMs });
    queue.push(...(children.get(s.pid) ?? []));
  }
  return { at, byPid };
}

/**
 * CPU per request between two snapshots, per process label (processes with the same label are summed), in
 * microseconds, plus `totalUs` (every process but the load generators) and `busyCores` (CPU seconds per wall second of
 * the processes in `totalUs`).
 * Processes that started or ended in between count from 0 / until their last reading.
 */
export function cpuPerRequest(before: CpuSnapshot, after: CpuSnapshot, requests: number, opts: CpuOptions = {}): CpuPerRequest {
  const perLabel: Record<string, number> = {};
  let total = 0;
  for (const [pid, a] of after.byPid) {
    const d = a.cpuMs - (before.byPid.get(pid)?.cpuMs ?? 0);
    if (d <= 0) continue;
    perLabel[a.label] = (perLabel[a.label] ?? 0) + d;
    if (!(opts.notInTotal ?? LOAD_GENERATORS).includes(a.label)) total += d;
  }
  const wallMs = after.at - before.at;
  const us = (ms: number) => Math.round(((ms * 1000) / Math.max(1, requests)) * 10) / 10;
  const byProcess: Record<string, number> = {};
  for (const [k, v] of Object.entries(perLabel).sort((x, y) => y[1] - x[1])) byProcess[k] = us(v);
  return { requests, totalUs: us(total), byProcessUs: byProcess, busyCores: Math.round((total / Math.max(1, wallMs)) * 100) / 100 };
}

/** Labels of load generators: listed per process, left out of `totalUs` (they are not the system measured). */
export const LOAD_GENERATORS: readonly string[] = ["wrk", "http-load"];

/** Options of {@link cpuPerRequest}. */
export interface CpuOptions {
  /** Process labels listed but not added to `totalUs`. @default LOAD_GENERATORS */
  notInTotal?: readonly string[];
}

/** Result of {@link cpuPerRequest}. */
export interface CpuPerRequest {
  /** Requests the CPU time is divided by. */
  requests: number;
  /** CPU microseconds per request, all measured processes together (load generators excepted). */
  totalUs: number;
  /** CPU microseconds per request of each process (by label), largest first. */
  byProcessUs: Record<string, number>;
  /** CPU seconds used per wall-clock second by all measured processes (2 = two cores busy). */
  busyCores: number;
}

/** Runs `phase`, returns its value and the CPU per request of every process; `requests` may be computed from the value. */
export async function measureCpu<T>(
  phase: () => Promise<T>,
  requests: number | ((v: T) => number),
  opts: CpuOptions = {},
): Promise<{ value: T; cpu: CpuPerRequest }> {
  const before = cpuSnapshot();
  const value = await phase();
  const after = cpuSnapshot();
  return { value, cpu: cpuPerRequest(before, after, typeof requests === "number" ? requests : requests(value), opts) };
}
