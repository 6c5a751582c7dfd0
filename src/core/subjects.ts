/**
 * Every NATS subject Trellis uses is built here; no other module writes a subject literal.
 *
 * Control interface and events follow the wasmCloud 1.x wire (reference §1.1, §1.2, §4.3, §5);
 * invocations use the Trellis invocation protocol v1 (docs/protocol.md, "Invocation subjects").
 * @module
 */

/** Prefix of the control interface, as in wasmCloud 1.x (`WASMCLOUD_CTL_TOPIC_PREFIX`). */
export const DEFAULT_CTL_PREFIX = "wasmbus.ctl";
/** Prefix of lattice events (hard-coded in wasmCloud 1.x, reference §5). */
export const EVENT_PREFIX = "wasmbus.evt";
/** Prefix of the provider contract subjects (reference §4.3). */
export const PROVIDER_RPC_PREFIX = "wasmbus.rpc";
/** Prefix of Trellis invocations (docs/protocol.md). */
export const INVOCATION_PREFIX = "trellis.inv.v1";

/** `wasmbus.ctl.v1.{lattice}`: the root of one lattice's control interface. */
export function ctlRoot(lattice: string): string {
  return `${DEFAULT_CTL_PREFIX}.v1.${lattice}`;
}

/**
 * Control interface subjects for one lattice (reference §1.2 and §1.4).
 * Host-addressed verbs take the host id (its `N…` public key) as the last token.
 */
export const ctl = {
  hostPing: (lattice: string) => `${ctlRoot(lattice)}.host.ping`,
  hostGet: (lattice: string, hostId: string) => `${ctlRoot(lattice)}.host.get.${hostId}`,
  hostStop: (lattice: string, hostId: string) => `${ctlRoot(lattice)}.host.stop.${hostId}`,
  labelPut: (lattice: string, hostId: string) => `${ctlRoot(lattice)}.label.put.${hostId}`,
  labelDel: (lattice: string, hostId: string) => `${ctlRoot(lattice)}.label.del.${hostId}`,
  linkPut: (lattice: string) => `${ctlRoot(lattice)}.link.put`,
  linkDel: (lattice: string) => `${ctlRoot(lattice)}.link.del`,
  linkGet: (lattice: string) => `${ctlRoot(lattice)}.link.get`,
  /** Trellis extension: delete one link and put another in a single KV update. */
  linkReplace: (lattice: string) => `${ctlRoot(lattice)}.link.replace`,
  configPut: (lattice: string, name: string) => `${ctlRoot(lattice)}.config.put.${name}`,
  configGet: (lattice: string, name: string) => `${ctlRoot(lattice)}.config.get.${name}`,
  configDel: (lattice: string, name: string) => `${ctlRoot(lattice)}.config.del.${name}`,
  componentScale: (lattice: string, hostId: string) => `${ctlRoot(lattice)}.component.scale.${hostId}`,
  componentUpdate: (lattice: string, hostId: string) => `${ctlRoot(lattice)}.component.update.${hostId}`,
  providerStart: (lattice: string, hostId: string) => `${ctlRoot(lattice)}.provider.start.${hostId}`,
  providerStop: (lattice: string, hostId: string) => `${ctlRoot(lattice)}.provider.stop.${hostId}`,
  claimsGet: (lattice: string) => `${ctlRoot(lattice)}.claims.get`,
} as const;

/**
 * What one host subscribes to on the control interface (reference §1.2), with queue groups.
 * `queue` undefined means every host receives the message.
 */
export function ctlSubscriptions(lattice: string, hostId: string): { subject: string; queue?: string }[] {
  const root = ctlRoot(lattice);
  return [
    { subject: `${root}.host.ping` },
    { subject: `${root}.link.*`, queue: `${root}.link` },
    { subject: `${root}.config.>`, queue: `${root}.config` },
    { subject: `${root}.component.*.${hostId}` },
    { subject: `${root}.provider.*.${hostId}` },
    { subject: `${root}.label.*.${hostId}` },
    { subject: `${root}.host.*.${hostId}` },
    { subject: `${root}.claims.*`, queue: `${root}.claims` },
  ];
}

/** A control subject split into its parts after `wasmbus.ctl.v1.{lattice}.` (reference §1.1). */
export interface ParsedCtlSubject {
  noun: string;
  verb: string | undefined;
  arg: string | undefined;
  /** True when the subject had more than three tokens after the lattice (an unsupported subject). */
  extra: boolean;
}

/** Splits a control subject; returns undefined when it is not under this lattice's control root. */
export function parseCtlSubject(lattice: string, subject: string): ParsedCtlSubject | undefined {
  const root = `${ctlRoot(lattice)}.`;
  if (!subject.startsWith(root)) return undefined;
  const rest = subject.slice(root.length).split(".");
  const [noun, verb, arg] = rest;
  if (noun === undefined) return undefined;
  return { noun, verb, arg, extra: rest.length > 3 };
}

/** `wasmbus.evt.{lattice}.{eventName}` (reference §5). */
export function eventSubject(lattice: string, eventName: string): string {
  return `${EVENT_PREFIX}.${lattice}.${eventName}`;
}

/** `wasmbus.evt.{lattice}.>`: every event of one lattice. */
export function eventWildcard(lattice: string): string {
  return `${EVENT_PREFIX}.${lattice}.>`;
}

/** Provider contract subjects (reference §4.3). `key` is a provider id unless noted. */
export const providerRpc = {
  /**
   * Link puts. Trellis publishes them to the provider id, reaching every instance on every host and remote providers
   * (docs/protocol.md, "Provider contract"). Links with secrets go to each instance's xkey instead
   * ({@link providerInstanceLinkPut}, reference §4.3, docs/adr/0017-secrets.md).
   */
  linkPut: (lattice: string, providerId: string) => `${PROVIDER_RPC_PREFIX}.${lattice}.${providerId}.linkdefs.put`,
  /** Link deletes go to the provider id, reaching every instance on every host. */
  linkDel: (lattice: string, providerId: string) => `${PROVIDER_RPC_PREFIX}.${lattice}.${providerId}.linkdefs.del`,
  health: (lattice: string, providerId: string) => `${PROVIDER_RPC_PREFIX}.${lattice}.${providerId}.health`,
  shutdown: (lattice: string, providerId: string) => `${PROVIDER_RPC_PREFIX}.${lattice}.${providerId}.default.shutdown`,
  configUpdate: (lattice: string, providerId: string) =>
    `${PROVIDER_RPC_PREFIX}.${lattice}.${providerId}.config.update`,
} as const;

/**
 * Invocation subject of the Trellis invocation protocol v1:
 * `trellis.inv.v1.{lattice}.{target}.{namespace:package/interface}.{function}`.
 * The interface is given without its `@version`; the function may contain dots
 * (`[method]bucket.get`), so a server parses everything after the interface token as the function.
 */
export function invocationSubject(lattice: string, targetId: string, iface: string, fn: string): string {
  return `${INVOCATION_PREFIX}.${lattice}.${targetId}.${stripVersion(iface)}.${fn}`;
}

/** `trellis.inv.v1.{lattice}.{target}.>`: what a target serves; the queue group is {@link invocationQueue}. */
export function invocationWildcard(lattice: string, targetId: string): string {
  return `${INVOCATION_PREFIX}.${lattice}.${targetId}.>`;
}

/** Queue group shared by every instance of one target, on every host: `trellis.inv.v1.{lattice}.{target}`. */
export function invocationQueue(lattice: string, targetId: string): string {
  return `${INVOCATION_PREFIX}.${lattice}.${targetId}`;
}

/** Parses an invocation subject into target, interface (unversioned) and function; undefined when malformed. */
export function parseInvocationSubject(
  lattice: string,
  subject: string,
): { targetId: string; iface: string; fn: string } | undefined {
  const root = `${INVOCATION_PREFIX}.${lattice}.`;
  if (!subject.startsWith(root)) return undefined;
  const parts = subject.slice(root.length).split(".");
  if (parts.length < 3) return undefined;
  const [targetId, iface] = parts;
  if (!targetId || !iface) return undefined;
  const fn = parts.slice(2).join(".");
  if (!fn) return undefined;
  return { targetId, iface, fn };
}

/** `wasi:http/incoming-handler@0.2.0` → `wasi:http/incoming-handler`. */
export function stripVersion(iface: string): string {
  const at = iface.indexOf("@");
  return at < 0 ? iface : iface.slice(0, at);
}

/** JetStream KV bucket holding component specifications and links (reference §3.1). */
export function latticeDataBucket(lattice: string): string {
  return `LATTICEDATA_${lattice}`;
}

/** JetStream KV bucket holding named config (reference §3.1). */
export function configDataBucket(lattice: string): string {
  return `CONFIGDATA_${lattice}`;
}

/** KV key of a component specification in `LATTICEDATA_{lattice}` (reference §3.2). */
export function componentSpecKey(id: string): string {
  return `COMPONENT_${id}`;
}

/** Prefix of component specification keys. */
export const COMPONENT_SPEC_PREFIX = "COMPONENT_";

// ---- Application manifests (src/app, docs/apps.md, ADR 0006) ------------------------------------

/**
 * JetStream KV bucket holding deployed application manifests: `TRELLIS_APPS_{lattice}`; key = app name, value = the
 * app record JSON (`src/app/store.ts`). Trellis-only: wadm keeps its manifests elsewhere (reference §8.3).
 */
export function appsBucket(lattice: string): string {
  return `TRELLIS_APPS_${lattice}`;
}

// ---- Claims (src/claims, reference §3.2, ADR 0016) -------------------------------------------------

/** Prefix of stored claims keys in `LATTICEDATA_{lattice}`: `CLAIMS_{subject public key}`. */
export const CLAIMS_KEY_PREFIX = "CLAIMS_";

/** The `LATTICEDATA_{lattice}` key of a claims subject's stored claims. */
export function claimsKey(subject: string): string {
  return `${CLAIMS_KEY_PREFIX}${subject}`;
}

// ---- Secrets backend (src/secrets, reference §6.5, ADR 0017) --------------------------------------

/** Secrets backend API version token (reference §6.5). */
export const SECRETS_API_VERSION = "v1alpha1";

/** Subjects of a secrets backend: `{topic}.v1alpha1.{backend}.server_xkey` and `.get` (reference §6.5). */
export const secretsSubjects = {
  serverXkey: (topic: string, backend: string) => `${topic}.${SECRETS_API_VERSION}.${backend}.server_xkey`,
  get: (topic: string, backend: string) => `${topic}.${SECRETS_API_VERSION}.${backend}.get`,
} as const;

/** Link puts to one provider instance, keyed by its xkey public key: used for links that carry sealed secrets (reference §4.3). */
export function providerInstanceLinkPut(lattice: string, xkeyPublic: string): string {
  return `${PROVIDER_RPC_PREFIX}.${lattice}.${xkeyPublic}.linkdefs.put`;
}
