/**
 * The resident reconciler of ADR 0012: a lease for one active reconciler per lattice, host liveness tracking, and the
 * loop that keeps stored apps applied.
 * @module
 */
export { Reconciler, DEFAULT_RESYNC_INTERVAL_MS, DEFAULT_MAX_BACKOFF_MS } from "./reconciler.ts";
export type { ReconcilerOptions } from "./reconciler.ts";
export { Lease, readLease, DEFAULT_LEASE_TTL_MS } from "./lease.ts";
export type { LeaseOptions, LeaseRecord } from "./lease.ts";
export { HostTracker, DEFAULT_LIVENESS_INTERVAL_MS, DEFAULT_MISSED_BEATS } from "./liveness.ts";
export type { HostTrackerOptions, LivenessBeat, LostHost, LossDetection } from "./liveness.ts";
