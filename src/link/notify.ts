/**
 * Tells capability providers about link changes (reference §4.3, docs/protocol.md "Provider contract").
 *
 * The host that handled a `link.put`, `link.del` or `link.replace` publishes, once, right after the KV write:
 * - a put: the link with its named configs resolved (an `InterfaceLinkDefinition`, reference §2.2) on
 *   `wasmbus.rpc.{lattice}.{id}.linkdefs.put` for the source id and for the target id;
 * - a delete: the link with empty config on `wasmbus.rpc.{lattice}.{id}.linkdefs.del` for both ids.
 * Provider-id subjects reach every instance of the provider on every host and providers started by hand
 * ("remote" providers) alike. Providers must handle both idempotently (seed link-definitions.md); a provider that
 * starts later gets existing links in its host data (or, when remote, from `link.get`).
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { InterfaceLinkDefinition, Link } from "../core/link.ts";
import { providerRpc } from "../core/subjects.ts";
import type { ConfigSource } from "../core/ports.ts";
import type { Logger } from "../core/logger.ts";
import { isSecretName } from "../secrets/types.ts";

/**
 * Merges the named configs; a config that no longer exists counts as `{}` (link config is a snapshot taken when the
 * link is delivered, reference §3.4).
 */
export async function resolveLinkConfig(config: ConfigSource, names: readonly string[]): Promise<Record<string, string>> {
  // `SECRET_…` names are secret references, delivered sealed by the provider's own host (src/provider/managed.ts)
  const maps = await Promise.all(names.filter((n) => !isSecretName(n)).map((n) => config.resolve([n]).catch(() => ({}))));
  return Object.assign({}, ...maps) as Record<string, string>;
}

/** The provider-facing form of `link` with its configs resolved (reference §2.2). */
export async function toInterfaceLinkDefinition(link: Link, config: ConfigSource): Promise<InterfaceLinkDefinition> {
  const [source_config, target_config] = await Promise.all([
    resolveLinkConfig(config, link.source_config),
    resolveLinkConfig(config, link.target_config),
  ]);
  return { ...identity(link), source_config, target_config, source_secrets: null, target_secrets: null };
}

function identity(link: Link) {
  return {
    source_id: link.source_id,
    target: link.target,
    name: link.name,
    wit_namespace: link.wit_namespace,
    wit_package: link.wit_package,
    interfaces: [...link.interfaces],
  };
}

/** Publishes link puts and deletes to the providers they concern. Never throws. */
export class ProviderLinkNotifier {
  readonly #nc: NatsConnection;
  readonly #lattice: string;
  readonly #config: ConfigSource;
  readonly #logger: Logger;

  constructor(nc: NatsConnection, lattice: string, config: ConfigSource, logger: Logger) {
    this.#nc = nc;
    this.#lattice = lattice;
    this.#config = config;
    this.#logger = logger;
  }

  /**
   * Publishes a put of `link` to its source id and target id. A link with secret references is not published here:
   * each host seals its secrets to its own provider instances and sends it on their xkey subjects (reference §4.3).
   */
  async put(link: Link): Promise<void> {
    if (linkHasSecrets(link)) return;
    try {
      const def = JSON.stringify(await toInterfaceLinkDefinition(link, this.#config));
      for (const id of ids(link)) this.#nc.publish(providerRpc.linkPut(this.#lattice, id), def);
    } catch (err) {
      this.#logger.warn("cannot notify providers of a link put", { error: String(err) });
    }
  }

  /** Publishes a delete of `link` to its source id and target id. */
  delete(link: Link): void {
    try {
      const def = JSON.stringify({ ...identity(link), source_config: {}, target_config: {}, source_secrets: null, target_secrets: null });
      for (const id of ids(link)) this.#nc.publish(providerRpc.linkDel(this.#lattice, id), def);
    } catch (err) {
      this.#logger.warn("cannot notify providers of a link delete", { error: String(err) });
    }
  }
}

function ids(link: Link): string[] {
  return link.source_id === link.target ? [link.source_id] : [link.source_id, link.target];
}

/** True when the link names secret references (`SECRET_…`) in its source or target config. */
export function linkHasSecrets(link: Pick<Link, "source_config" | "target_config">): boolean {
  return link.source_config.some(isSecretName) || link.target_config.some(isSecretName);
}
