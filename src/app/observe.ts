/**
 * Reads the lattice state the planner needs through the control interface (reference §1.4): hosts (`host.ping`),
 * their inventories (`host.get`), every link (`link.get`) and the configs asked about (`config.get`). Read-only.
 * @module
 */
import type { CtlClient } from "../control/client.ts";
import type { ObservedHost, ObservedState } from "./planner.ts";

/** Options of {@link observeLattice}. */
export interface ObserveOptions {
  /**
   * `host.ping` collection ends after this long without a new reply, in milliseconds. @default 300
   * (the `CtlClient.getHosts` default)
   */
  hostStallMs?: number;
  /**
   * Host ids known to be alive (the reconciler's liveness tracker): asked with `host.get` even when their `host.ping`
   * reply was slow, so that a busy host's instances are not taken for missing. @default none
   */
  knownHosts?: () => readonly string[];
}

/**
 * Observes hosts, links and the named configs. A host that stops answering between `host.ping` and `host.get` is
 * left out (it is leaving). With no host at all, links and configs cannot be read (hosts answer those requests):
 * the result then has no hosts, no links and every config unknown.
 * @throws TrellisError from the client (`TIMEOUT`).
 */
export async function observeLattice(client: CtlClient, configNames: readonly string[], opts: ObserveOptions = {}): Promise<ObservedState> {
  const hosts = await observeHosts(client, opts.hostStallMs ?? 300, opts.knownHosts?.() ?? []);
  if (hosts.length === 0) return { hosts, links: [], configs: {} };
  const [links, configs] = await Promise.all([
    client.getLinks(),
    Promise.all(configNames.map(async (n) => [n, (await client.getConfig(n)) ?? null] as const)),
  ]);
  return { hosts, links, configs: Object.fromEntries(configs) };
}

async function observeHosts(client: CtlClient, stallMs: number, known: readonly string[]): Promise<ObservedHost[]> {
  const infos = await client.getHosts(client.timeoutMs, stallMs);
  const ids = [...new Set([...infos.map((h) => h.id), ...known])].sort();
  const hosts = await Promise.all(
    ids.map(async (id): Promise<ObservedHost | undefined> => {
      try {
        const inv = await client.getInventory(id);
        return { id, labels: inv.labels, components: inv.components, providers: inv.providers };
      } catch {
        return undefined;
      }
    }),
  );
  return hosts.filter((h): h is ObservedHost => h !== undefined);
}
