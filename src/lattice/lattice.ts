/**
 * One host's view of a lattice: its NATS connection, the `LATTICEDATA_{lattice}` and `CONFIGDATA_{lattice}` buckets
 * (reference §3.1), watched, and the event publisher.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { configDataBucket, latticeDataBucket } from "../core/subjects.ts";
import type { Logger } from "../core/logger.ts";
import { openBucket } from "./kv.ts";
import { SpecStore } from "./spec-store.ts";
import { ConfigStore } from "./config-store.ts";
import { ClaimsStore } from "./claims-store.ts";

/** The lattice data one host works with. */
export interface LatticeData {
  lattice: string;
  specs: SpecStore;
  config: ConfigStore;
  /** `CLAIMS_{subject}` entries (reference §3.2). */
  claims: ClaimsStore;
  close(): void;
}

/**
 * Creates or binds the lattice's buckets and loads them (every entry, then a watch).
 * @param opts.kvReplicas replica count of a bucket created here (an existing one keeps its own); default: 3 on a
 *   cluster of 3 or more servers, else 1 (src/lattice/kv.ts `defaultKvReplicas`, ADR 0015).
 * @param opts.jsDomain JetStream domain holding the buckets (a host on a leaf node); default the server's own.
 * @throws TrellisError `LATTICE_ERROR` when JetStream is unavailable.
 */
export async function openLatticeData(
  nc: NatsConnection,
  lattice: string,
  logger: Logger,
  opts: { kvReplicas?: number; jsDomain?: string } = {},
): Promise<LatticeData> {
  const bucketOpts = {
    logger,
    ...(opts.kvReplicas === undefined ? {} : { replicas: opts.kvReplicas }),
    ...(opts.jsDomain === undefined ? {} : { domain: opts.jsDomain }),
  };
  const [dataKv, configKv] = await Promise.all([
    openBucket(nc, latticeDataBucket(lattice), bucketOpts),
    openBucket(nc, configDataBucket(lattice), bucketOpts),
  ]);
  const [specs, config] = await Promise.all([
    SpecStore.open(dataKv, logger.child({ component: "lattice-data" })),
    ConfigStore.open(configKv, logger.child({ component: "config" })),
  ]);
  return {
    lattice,
    specs,
    config,
    claims: new ClaimsStore(dataKv, logger.child({ component: "claims" })),
    close() {
      specs.close();
      config.close();
    },
  };
}
