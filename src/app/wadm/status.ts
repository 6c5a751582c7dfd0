/**
 * Trellis app status (src/app/deploy.ts `AppStatusResult`: the planner run against the lattice) in wadm's `Status`
 * shape (wadm `crates/wadm-types/src/api.rs`): an aggregate `status` and one `scalers` entry per thing wadm would run
 * a scaler for (a `SpreadScaler` / `DaemonScaler` per component or provider, a `LinkScaler` per link, a
 * `ConfigScaler` per inline config). Per-scaler states are derived from which outstanding items name the scaler's
 * object: an approximation of wadm's per-scaler reconcile (ADR 0013).
 * @module
 */
import type { AppManifest } from "../manifest.ts";
import { desiredState } from "../desired.ts";
import type { AppStatusResult } from "../deploy.ts";
import type { ScalerStatus, StatusInfo, StatusType, WadmStatus } from "./types.ts";

/** A `StatusInfo`; an empty message is left out, as wadm's serde does. */
export function statusInfo(type: StatusType, message = ""): StatusInfo {
  return message ? { type, message } : { type };
}

/** A wadm `Status` with the deprecated fields as wadm 0.14+ sends them (`version: ""`, `components: []`). */
export function wadmStatus(info: StatusInfo, scalers: ScalerStatus[] = []): WadmStatus {
  return scalers.length > 0 ? { status: info, scalers, version: "", components: [] } : { status: info, version: "", components: [] };
}

const SCALER_KIND = { spreadscaler: "SpreadScaler", daemonscaler: "DaemonScaler" } as const;

/**
 * wadm's status of a deployed app from Trellis' status and its manifest.
 * `deployed` → `deployed`, `reconciling` → `reconciling`, `failed` → `failed`; messages are Trellis'.
 */
export function wadmStatusFromApp(s: AppStatusResult, manifest: AppManifest): WadmStatus {
  const lines = [...s.problems, ...s.failures.map((f) => `${f.action}: ${f.message}`), ...s.missing, ...s.pending];
  const bad: StatusType = s.status === "failed" ? "failed" : "reconciling";
  const scaler = (kind: string, name: string, id: string, mine: (line: string) => boolean): ScalerStatus => {
    const own = lines.filter(mine);
    return { id, kind, name, status: own.length > 0 ? statusInfo(bad, own.join("; ")) : statusInfo("deployed") };
  };
  const d = desiredState(manifest);
  const scalers: ScalerStatus[] = [];
  for (const w of [...d.components, ...d.providers]) {
    if (!w.scaler) continue;
    const kind = SCALER_KIND[w.scaler.type];
    scalers.push(scaler(kind, w.id, `${w.scaler.type}-${d.app}-${w.id}`, (l) => l.includes(w.id) && !l.includes(" link ")));
  }
  for (const l of d.links) {
    const name = `${l.source_id} -(${l.wit_namespace}:${l.wit_package})-> ${l.target}`;
    scalers.push(
      scaler("LinkScaler", name, `linkscaler-${d.app}-${l.source_id}-${l.wit_namespace}-${l.wit_package}-${l.name}`, (line) =>
        line.includes(" link ") && line.includes(l.source_id) && line.includes(`${l.wit_namespace}:${l.wit_package}`),
      ),
    );
  }
  for (const c of Object.keys(d.configs)) {
    scalers.push(scaler("ConfigScaler", c, `configscaler-${d.app}-${c}`, (l) => l.includes(`config ${c}`)));
  }
  return wadmStatus(statusInfo(s.status, s.message), scalers);
}
