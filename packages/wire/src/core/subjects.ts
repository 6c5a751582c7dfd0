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
  /** Scatter-gather: every host whose labels match the constraints answers (reference §1.4). */
  componentAuction: (lattice: string) => `${ctlRoot(lattice)}.component.auction`,
  /** Scatter-gather: every host whose labels match the constraints answers (reference §1.4). */
  providerAuction: (lattice: string) => `${ctlRoot(lattice)}.provider.auction`,
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
    { subject: `${root}.component.auction` },
    { subject: `${root}.provider.auction` },
    { subject: `${root}.claims.*`, queue: `${root}.claims` },
  ];
}

/**
 * Catch-all subscriptions (queue `wasmbus.ctl.v1.{lattice}.unsupported`, so one host answers) through which a subject
 * no host serves gets an immediate "unsupported subject" reply (docs/control-interface.md): one- and two-token
 * subjects, subjects of four or more tokens, and three-token subjects of nouns that are not host-addressed. A
 * three-token subject of a host-addressed noun (`component`, `provider`, `label`, `host`) is left to the addressed
 * host (an unknown verb gets "unsupported subject" from it) so that a request to a host that does not exist still gets
 * NATS's immediate no-responders status. A message on these that some subscription of {@link ctlSubscriptions}
 * serves is ignored here ({@link isServedCtlSubject}).
 */
export function ctlCatchAllSubscriptions(lattice: string): { subject: string; queue: string }[] {
  const root = ctlRoot(lattice);
  const queue = `${root}.unsupported`;
  return [
    `${root}.*`,
    `${root}.*.*`,
    `${root}.*.*.*.>`,
    `${root}.link.*.*`,
    `${root}.claims.*.*`,
    `${root}.registry.*.*`,
  ].map((subject) => ({ subject, queue }));
}

/** True when a NATS subject matches a subscription pattern (`*` one token, `>` one or more trailing tokens). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** True when some host's {@link ctlSubscriptions} (for any host id) receive `subject`. */
export function isServedCtlSubject(lattice: string, subject: string): boolean {
  return ctlSubscriptions(lattice, "*").some((s) => subjectMatches(s.subject, subject));
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
  // on every invocation a target receives: index arithmetic, no split/join
  const start = INVOCATION_PREFIX.length + lattice.length + 2;
  if (!subject.startsWith(INVOCATION_PREFIX) || subject[INVOCATION_PREFIX.length] !== "." || !subject.startsWith(lattice, INVOCATION_PREFIX.length + 1) || subject[start - 1] !== ".") {
    return undefined;
  }
  const a = subject.indexOf(".", start);
  if (a <= start) return undefined;
  const b = subject.indexOf(".", a + 1);
  if (b <= a + 1 || b === subject.length - 1) return undefined;
  return { targetId: subject.slice(start, a), iface: subject.slice(a + 1, b), fn: subject.slice(b + 1) };
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

// ---- wadm API and state (src/app/wadm, docs/apps.md "wadm API", ADR 0013) -------------------------

/** Prefix of wadm's API (`wadm_types::api::DEFAULT_WADM_TOPIC_PREFIX`). */
export const WADM_API_PREFIX = "wadm.api";

/** `wadm.api.{lattice}`: the root of one lattice's wadm API. */
export function wadmApiRoot(lattice: string): string {
  return `${WADM_API_PREFIX}.${lattice}`;
}

/**
 * wadm API subjects for one lattice (reference §7; wadm `crates/wadm/src/server/mod.rs`):
 * `wadm.api.{lattice}.model.{operation}[.{name}]`. `model.get` without a name lists the models.
 */
export const wadmApi = {
  list: (lattice: string) => `${wadmApiRoot(lattice)}.model.get`,
  get: (lattice: string, name: string) => `${wadmApiRoot(lattice)}.model.get.${name}`,
  put: (lattice: string) => `${wadmApiRoot(lattice)}.model.put`,
  versions: (lattice: string, name: string) => `${wadmApiRoot(lattice)}.model.versions.${name}`,
  del: (lattice: string, name: string) => `${wadmApiRoot(lattice)}.model.del.${name}`,
  deploy: (lattice: string, name: string) => `${wadmApiRoot(lattice)}.model.deploy.${name}`,
  undeploy: (lattice: string, name: string) => `${wadmApiRoot(lattice)}.model.undeploy.${name}`,
  status: (lattice: string, name: string) => `${wadmApiRoot(lattice)}.model.status.${name}`,
  /** What a server subscribes to: every wadm API subject of the lattice. */
  wildcard: (lattice: string) => `${wadmApiRoot(lattice)}.>`,
  /** Queue group of the Trellis hosts serving the wadm API of one lattice. */
  queue: (lattice: string) => `trellis.wadm.${lattice}`,
} as const;

/** JetStream KV bucket wadm keeps lattice state in (wadm's `--state-bucket-name` default), read by washboard. */
export const WADM_STATE_BUCKET = "wadm_state";

/** Key of one kind of state in {@link WADM_STATE_BUCKET}: `{kind}_{lattice}` (wadm `storage/nats_kv.rs` `generate_key`). */
export function wadmStateKey(kind: "host" | "component" | "provider", lattice: string): string {
  return `${kind}_${lattice}`;
}

/**
 * JetStream KV bucket holding the version history of each application put through the wadm API or `trellis app
 * put|deploy`: `TRELLIS_APP_VERSIONS_{lattice}`; key = app name (src/app/wadm/models.ts).
 */
export function appVersionsBucket(lattice: string): string {
  return `TRELLIS_APP_VERSIONS_${lattice}`;
}

// ---- Target exit notices (docs/protocol.md, "Target exit notices", ADR 0014) ---------------------

/** Prefix of target exit notices: a supervising host tells callers that a target's process went away. */
export const TARGET_EXIT_PREFIX = "trellis.exit.v1";

/**
 * `trellis.exit.v1.{lattice}.{target}`: published (no reply) by the host that supervised `target` when its process
 * exited; invocation clients fail their pending calls to `target` at once (docs/protocol.md, "Target exit notices").
 */
export function targetExitSubject(lattice: string, targetId: string): string {
  return `${TARGET_EXIT_PREFIX}.${lattice}.${targetId}`;
}

/** `trellis.exit.v1.{lattice}.*`: every target exit notice of one lattice (what an invocation client watches). */
export function targetExitWildcard(lattice: string): string {
  return `${TARGET_EXIT_PREFIX}.${lattice}.*`;
}

// ---- Subjects given by the operator (policy service, src/policy, docs/security.md) ---------------

/**
 * True when `subject` is a NATS subject one may publish or send a request to: dot-separated non-empty tokens without
 * whitespace or wildcards (`*`, `>`). Used for `--policy-topic` (reference §6.4).
 */
export function isPublishSubject(subject: string): boolean {
  if (!subject || subject.length > 4096) return false;
  return subject.split(".").every((t) => t.length > 0 && !/[\s*>]/.test(t));
}

/**
 * True when `subject` is a NATS subject one may subscribe to: like {@link isPublishSubject}, but a token may be `*`,
 * and the last token may be `>`. Used for `--policy-changes-topic`.
 */
export function isSubscribeSubject(subject: string): boolean {
  if (!subject || subject.length > 4096) return false;
  const tokens = subject.split(".");
  return tokens.every((t, i) => t === "*" || (t === ">" && i === tokens.length - 1) || (t.length > 0 && !/[\s*>]/.test(t)));
}
// ---- Resident reconciler and host liveness (src/app/reconciler, ADR 0012) -----------------------

/** Prefix of host liveness beats (Trellis-only, ADR 0012). */
export const LIVENESS_PREFIX = "trellis.live.v1";

/**
 * `trellis.live.v1.{lattice}.{hostId}`: a host's short liveness beat (every `livenessIntervalMs`, default 1 s), which
 * the active reconciler watches to notice a dead host in seconds rather than after the 30 s heartbeat (ADR 0012).
 */
export function livenessSubject(lattice: string, hostId: string): string {
  return `${LIVENESS_PREFIX}.${lattice}.${hostId}`;
}

/** `trellis.live.v1.{lattice}.*`: every host's liveness beat. */
export function livenessWildcard(lattice: string): string {
  return `${LIVENESS_PREFIX}.${lattice}.*`;
}

/**
 * JetStream KV bucket of the reconciler lease: `TRELLIS_RECONCILER_{lattice}`, key {@link RECONCILER_LEASE_KEY}, value
 * the lease JSON (`src/app/reconciler/lease.ts`). One reconciler per lattice is active: the lease holder.
 */
export function reconcilerBucket(lattice: string): string {
  return `TRELLIS_RECONCILER_${lattice}`;
}

/** Key of the reconciler lease in {@link reconcilerBucket}. */
export const RECONCILER_LEASE_KEY = "lease";
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

// ---- Explain: finished spans of explained traces (src/tracing, docs/protocol.md "Explain", ADR 0025) ---------------

/** Prefix of the explain subjects. */
export const EXPLAIN_PREFIX = "trellis.explain.v1";

/**
 * `trellis.explain.v1.{lattice}.span.{traceId}`: every process publishes each finished span of an explained trace
 * (trace state `trellis=e`) here, as JSON (docs/protocol.md "Explain"). `traceId` is 32 lower-case hex digits.
 */
export function explainSpanSubject(lattice: string, traceId: string): string {
  return `${EXPLAIN_PREFIX}.${lattice}.span.${traceId}`;
}

/** `trellis.explain.v1.{lattice}.span.*`: the finished spans of every explained trace. */
export function explainSpanWildcard(lattice: string): string {
  return `${EXPLAIN_PREFIX}.${lattice}.span.*`;
}

/**
 * `trellis.explain.v1.{lattice}.follow`: a follow request (`{ "target": id, "until_ms": epoch ms }`); every process
 * serving or calling `target` explains the next call that reaches it before `until_ms` (docs/protocol.md "Explain").
 */
export function explainFollowSubject(lattice: string): string {
  return `${EXPLAIN_PREFIX}.${lattice}.follow`;
}
