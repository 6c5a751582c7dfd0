/**
 * Target exit notices (docs/protocol.md, "Target exit notices"; docs/adr/0014): NATS gives a caller no signal when
 * the responder that took its request dies, so the host that supervised the target's process publishes one on
 * `trellis.exit.v1.{lattice}.{target}` (src/core/subjects.ts `targetExitSubject`) once the process is gone.
 * Invocation clients (src/invocation/client.ts) watch these notices and fail their pending calls to that target at
 * once with `TARGET_EXITED` instead of at their timeout.
 * @module
 */
import { targetExitSubject } from "../core/subjects.ts";

/** The JSON body of a target exit notice. */
export interface TargetExitNotice {
  /** Id of the target whose process went away (a provider id or a component id). */
  target_id: string;
  /**
   * What went away: `provider` (a supervised provider process) or `component` (the worker thread that ran the
   * component on that host was terminated or died; calls it had received but not read are lost).
   */
  kind: "provider" | "component";
  /** Host that supervised it (its `N…` public key). */
  host_id: string;
  /** `instance_id` of the provider process that exited (reference §4.1); empty for a component. */
  instance_id: string;
  /** Human-readable cause, e.g. `provider process killed by SIGKILL`. Never holds secrets. */
  reason: string;
  /** When the host saw the exit, in ms since the epoch (informative only). */
  at: number;
  /**
   * Reply subjects of calls the host holds and will still answer (a component's calls that arrived while its worker
   * restarts): a client keeps waiting for these. Absent or empty: fail every pending call to the target.
   */
  spared?: string[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Subject and body of a notice, ready to publish. */
export function encodeTargetExit(lattice: string, notice: TargetExitNotice): { subject: string; data: Uint8Array } {
  return { subject: targetExitSubject(lattice, notice.target_id), data: enc.encode(JSON.stringify(notice)) };
}

/**
 * Parses a notice body; tolerant: a body that is not a JSON object still names the target by its subject.
 * @param targetId the last token of the subject (authoritative).
 */
export function parseTargetExit(targetId: string, data: Uint8Array): TargetExitNotice {
  let v: Partial<Record<keyof TargetExitNotice, unknown>> = {};
  try {
    const parsed: unknown = JSON.parse(dec.decode(data));
    if (typeof parsed === "object" && parsed !== null) v = parsed as typeof v;
  } catch {
    // malformed body: the subject still says which target went away
  }
  const spared = Array.isArray(v.spared) ? v.spared.filter((x): x is string => typeof x === "string") : [];
  return {
    target_id: targetId,
    kind: v.kind === "component" ? "component" : "provider",
    host_id: typeof v.host_id === "string" ? v.host_id : "",
    instance_id: typeof v.instance_id === "string" ? v.instance_id : "",
    reason: typeof v.reason === "string" ? v.reason.slice(0, 300) : "its process exited",
    at: typeof v.at === "number" ? v.at : Date.now(),
    ...(spared.length > 0 ? { spared } : {}),
  };
}
