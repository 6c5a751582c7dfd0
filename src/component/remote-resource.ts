/**
 * Guest-side objects for resources owned by lattice targets (docs/protocol.md §8): a {@link RemoteResource} carries the
 * handle bytes and where calls on it go; {@link makeResourceClass} builds the class the component's glue instantiates.
 * @module
 */
import { ErrorCode, TrellisError } from "../core/errors.ts";
import { DEFAULT_LINK_NAME } from "../core/link.ts";
import { className } from "./names.ts";

/** A handle held by the guest for a resource owned by a lattice target. */
export class RemoteResource {
  handle: Uint8Array = new Uint8Array(0);
  target = "";
  linkName = DEFAULT_LINK_NAME;
  iface = "";
  resource = "";
  moved = false;
  /** Set when the handle came from (or went into) the handle cache (./handle-cache.ts): shared, so dropping it notifies nobody. */
  cacheKey: string | undefined = undefined;
}

/** Passed to a resource class's constructor to make an instance around a handle the host received (no constructor call). */
export const HANDLE_TOKEN = Symbol("handle");

/**
 * The class of one resource: `new C(HANDLE_TOKEN)` wraps a received handle; `new C(...args)` calls the resource's
 * constructor on its target (set as `C.construct`); `Symbol.dispose` calls `onDrop`.
 */
export function makeResourceClass(resource: string, onDrop: (r: RemoteResource) => void): new (...a: unknown[]) => RemoteResource {
  const C = class extends RemoteResource {
    constructor(...args: unknown[]) {
      super();
      if (args[0] === HANDLE_TOKEN) return;
      const construct = (C as unknown as { construct?: (a: unknown[]) => Promise<unknown> }).construct;
      if (!construct) throw new TrellisError(ErrorCode.Internal, `resource ${resource} has no constructor`);
      // JSPI: the glue awaits the constructed value, so the constructor may return a promise of the instance
      return construct(args) as never;
    }
  };
  Object.defineProperty(C.prototype, Symbol.dispose, {
    value(this: RemoteResource) {
      onDrop(this);
    },
  });
  Object.defineProperty(C, "name", { value: className(resource) });
  return C;
}
