/**
 * The component runtime's upkeep of `COMPONENT_{id}` in `LATTICEDATA_{lattice}` (reference §3.2;
 * docs/control-interface.md): sets a running component's `url`, through the host's shared writer when there is one,
 * else in the bucket itself (revision-checked, retried); and, without a shared writer, warns when the spec of a
 * running component is deleted.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, KvWatchInclude, type KV } from "@nats-io/kv";
import type { ComponentSpecification } from "../core/host.ts";
import type { Logger } from "../core/logger.ts";
import { COMPONENT_SPEC_PREFIX, componentSpecKey, latticeDataBucket } from "../core/subjects.ts";

/** Options of {@link ComponentSpecWriter}. */
export interface ComponentSpecWriterOptions {
  /** Connection the bucket is opened on (when there is no shared writer). */
  nc: NatsConnection;
  lattice: string;
  /** Gets the warnings (a spec that cannot be written, a running component's spec deleted). */
  logger: Logger;
  /**
   * The host's shared `COMPONENT_{id}` writer (src/host/workloads.ts `ComponentSpecs`). @default none: the writer
   * updates the bucket itself
   */
  specs?: { setUrl(id: string, url: string): Promise<void> } | undefined;
}

/** Writes the `url` of `COMPONENT_{id}` specs and watches for deleted ones. */
export class ComponentSpecWriter {
  readonly #o: ComponentSpecWriterOptions;
  #kv: Promise<KV | undefined> | undefined;
  #watchStop: (() => void) | undefined;

  constructor(o: ComponentSpecWriterOptions) {
    this.#o = o;
  }

  /** The lattice data bucket, opened once; undefined (after a warning) when it cannot be opened. */
  #kvBucket(): Promise<KV | undefined> {
    this.#kv ??= new Kvm(this.#o.nc).open(latticeDataBucket(this.#o.lattice)).catch((err: unknown) => {
      this.#o.logger.warn("cannot open the lattice data bucket; COMPONENT_{id} specs are not maintained", { error: (err as Error).message });
      return undefined;
    });
    return this.#kv;
  }

  /**
   * Sets `url` of `COMPONENT_{id}` (creating the spec when missing), keeping its links; revision-checked with up to
   * 10 attempts. Never throws: a spec that cannot be written is logged as a warning.
   */
  async put(id: string, url: string): Promise<void> {
    if (this.#o.specs) {
      await this.#o.specs.setUrl(id, url).catch((err: unknown) =>
        this.#o.logger.warn("could not write the component specification", { component_id: id, error: (err as Error).message }),
      );
      return;
    }
    const kv = await this.#kvBucket();
    if (!kv) return;
    const key = componentSpecKey(id);
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        const e = await kv.get(key);
        if (!e || e.operation !== "PUT") {
          await kv.create(key, JSON.stringify({ url, links: [] } satisfies ComponentSpecification));
          return;
        }
        const spec = e.json<ComponentSpecification>();
        if (spec.url === url) return;
        await kv.update(key, JSON.stringify({ ...spec, url }), e.revision);
        return;
      } catch (err) {
        if (attempt === 9) {
          this.#o.logger.warn("could not write the component specification", { component_id: id, error: (err as Error).message });
        }
      }
    }
  }

  /**
   * Starts watching the bucket in the background: a deleted (or purged) `COMPONENT_{id}` of a component for which
   * `running(id)` is true is logged as a warning (it keeps running with its current links). Does not start when
   * `closed()` is true once the bucket is open; {@link stop} ends it.
   */
  watch(running: (id: string) => boolean, closed: () => boolean): void {
    void (async () => {
      const kv = await this.#kvBucket();
      if (!kv || closed()) return;
      const iter = await kv.watch({ key: `${COMPONENT_SPEC_PREFIX}*`, include: KvWatchInclude.UpdatesOnly });
      this.#watchStop = () => iter.stop();
      for await (const e of iter) {
        if (e.operation === "PUT") continue;
        const id = e.key.slice(COMPONENT_SPEC_PREFIX.length);
        if (running(id)) {
          this.#o.logger.warn("the specification of a running component was deleted; it keeps running with its current links", { component_id: id });
        }
      }
    })().catch((err: unknown) => this.#o.logger.debug("component spec watch ended", { error: (err as Error).message }));
  }

  /** Stops the watch started by {@link watch} (no-op when none runs). */
  stop(): void {
    this.#watchStop?.();
  }
}
