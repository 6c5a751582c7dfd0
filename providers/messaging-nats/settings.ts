/**
 * Link config of messaging-nats (see ./README.md), validated once per link.
 * @module
 */
import { ErrorCode, TrellisError } from "trellis/provider-sdk";

/** Settings of one link. */
export interface MessagingSettings {
  /** NATS servers to connect to; empty: the lattice's own connection. From `cluster_uris` (comma-separated). */
  clusterUris: string[];
  /** Subjects to subscribe (handler links). From `subscriptions` (comma-separated). */
  subscriptions: string[];
  /** Queue group of the subscriptions; undefined: every instance gets every message. From `queue_group`. */
  queueGroup: string | undefined;
  /** Time budget of one `handle-message` call, ms. From `handler_timeout_ms`. @default 10000 */
  handlerTimeoutMs: number;
}

const SUBJECT = /^[^\s]+$/;

function list(v: string | undefined): string[] {
  return (v ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/**
 * Reads a link's config (keys are case-insensitive; the link's config wins over the provider's own).
 * @throws TrellisError INVALID_ARGUMENT for a bad subject, queue group, URL or timeout, naming the key.
 */
export function messagingSettings(linkConfig: Readonly<Record<string, string>>, providerConfig: Readonly<Record<string, string>> = {}): MessagingSettings {
  const merged: Record<string, string> = {};
  for (const src of [providerConfig, linkConfig]) for (const [k, v] of Object.entries(src)) merged[k.toLowerCase()] = v;
  const subscriptions = list(merged["subscriptions"]);
  for (const s of subscriptions) {
    if (!SUBJECT.test(s)) throw new TrellisError(ErrorCode.InvalidArgument, `subscriptions: ${JSON.stringify(s)} is not a NATS subject`);
  }
  const clusterUris = list(merged["cluster_uris"]);
  for (const u of clusterUris) {
    try {
      new URL(u.includes("://") ? u : `nats://${u}`);
    } catch {
      throw new TrellisError(ErrorCode.InvalidArgument, `cluster_uris: ${JSON.stringify(u)} is not a URL`);
    }
  }
  const queueGroup = merged["queue_group"]?.trim() || undefined;
  if (queueGroup !== undefined && !SUBJECT.test(queueGroup)) throw new TrellisError(ErrorCode.InvalidArgument, `queue_group: ${JSON.stringify(queueGroup)} has spaces`);
  const rawTimeout = merged["handler_timeout_ms"];
  const handlerTimeoutMs = rawTimeout === undefined ? 10_000 : Number(rawTimeout);
  if (!Number.isInteger(handlerTimeoutMs) || handlerTimeoutMs < 1) {
    throw new TrellisError(ErrorCode.InvalidArgument, `handler_timeout_ms: expected a positive integer of milliseconds, got ${JSON.stringify(rawTimeout)}`);
  }
  return { clusterUris, subscriptions, queueGroup, handlerTimeoutMs };
}
