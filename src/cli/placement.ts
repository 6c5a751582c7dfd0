/**
 * Where CLI commands put and find workloads: an auction to place one (reference §1.4), and one `host.ping` round plus
 * a `host.get` per host to find them.
 * @module
 */
import type { CtlClient } from "../control/client.ts";
import type { HostInventory } from "../core/host.ts";
import { NotFoundError } from "../core/errors.ts";

/** Every host's inventory (hosts that do not answer `host.get` in time are left out). */
export async function inventories(client: CtlClient): Promise<HostInventory[]> {
  const hosts = await client.getHosts();
  const invs = await Promise.all(hosts.map((h) => client.getInventory(h.id).catch(() => undefined)));
  return invs.filter((i): i is HostInventory => i !== undefined);
}

/**
 * The host to start a workload on, chosen by auction (reference §1.4 `component.auction` / `provider.auction`, as
 * `wash start` does without a host id): the first bid of a host whose labels match every constraint and that does
 * not run `id` yet.
 * @throws NotFoundError when no host bids (naming the constraints).
 */
export async function auctionHost(
  client: CtlClient,
  kind: "component" | "provider",
  ref: string,
  id: string,
  constraints: Record<string, string>,
): Promise<string> {
  const acks =
    kind === "component"
      ? await client.auctionComponent({ component_ref: ref, component_id: id, constraints })
      : await client.auctionProvider({ provider_ref: ref, provider_id: id, constraints });
  const first = acks[0];
  if (first === undefined) {
    const what = Object.keys(constraints).length === 0 ? "" : ` with labels ${Object.entries(constraints).map(([k, v]) => `${k}=${v}`).join(", ")}`;
    throw new NotFoundError(
      `no host${what} in lattice ${client.lattice} can run ${kind} ${id} (none answered the auction, or every one already runs it); start one with \`trellis up\``,
      { constraints },
    );
  }
  return first.host_id;
}
