/**
 * Application manifests in wadm's OAM format (reference §8.1–§8.2): parsing YAML or JSON and validating it into a
 * normalized {@link AppManifest}. Every error is an {@link InvalidArgumentError} whose `field` is the path of the bad
 * value, e.g. `spec.components[2].traits[0].properties.target`.
 *
 * What is accepted (docs/apps.md, "Manifest format"):
 * - `apiVersion: core.oam.dev/v1beta1`, `kind: Application`, `metadata.name` (`[A-Za-z0-9_-]`, ≤ 256 characters),
 *   `metadata.annotations` (`version` — any string but `latest` —, `description`, …), `metadata.labels`;
 * - `spec.components[]` of `type: component` (alias `actor`) or `type: capability`, with `properties.image`,
 *   optional `properties.id` and `properties.config[]` (`{ name, properties? }`);
 * - traits `spreadscaler` / `daemonscaler` (`instances`, alias `replicas`; `spread[]` of `{ name, requirements,
 *   weight? }`) and `link` (`namespace`, `package`, `interfaces`, `name?`, `target: { name, config? }`,
 *   `source: { config? }`; the legacy `target: <name>` with `target_config` / `source_config` is accepted too).
 * - `secrets[]` (`{ name, properties: { policy, key, field?, version? } }`) on components, providers and link sides,
 *   naming a `spec.policies[]` entry of type `policy.secret.wasmcloud.dev/v1alpha1` (its `properties.backend` picks the
 *   backend): each becomes a secret reference stored as config `SECRET_{manifest}-{name}` (sanitized as ids) and
 *   listed with the entity's config, as wadm does (reference §8.3, docs/adr/0017-secrets.md).
 * Not supported, rejected with the path named: shared applications (`properties.application`), custom trait types.
 * Unknown fields are ignored with a warning, as wadm's parser ignores them.
 * @module
 */
import { parseDocument } from "yaml";
import { InvalidArgumentError } from "../core/errors.ts";
import { MAX_ID_LENGTH, validateId } from "../core/ids.ts";
import { DEFAULT_LINK_NAME } from "../core/link.ts";
import { parsePreopens, preopensToWire } from "../core/preopens.ts";

/** The only `apiVersion` wadm accepts (reference §8.1). */
export const OAM_API_VERSION = "core.oam.dev/v1beta1";
/** The only `kind` wadm accepts. */
export const APPLICATION_KIND = "Application";
/** Weight of a spread that gives none (wadm `DEFAULT_SPREAD_WEIGHT`). */
export const DEFAULT_SPREAD_WEIGHT = 100;
/** Annotation holding the manifest version. */
export const VERSION_ANNOTATION = "version";
/** Annotation holding the manifest description. */
export const DESCRIPTION_ANNOTATION = "description";

/** A config entry of a component, provider or link side: named config, created by the app when `properties` is given. */
export interface ConfigRef {
  /** The name as written in the manifest. */
  name: string;
  /** Values to store (the app then owns the config, stored under {@link computeId}); absent: an existing config. */
  properties?: Record<string, string>;
  /** A secret reference (from `secrets:`): stored as `SECRET_{computeId}` with the reference in `properties`. */
  secret?: boolean;
}

/** One `spread` entry of a scaler trait (reference §8.2). */
export interface Spread {
  name: string;
  /** Labels a host must all carry (exact values) to be eligible. */
  requirements: Record<string, string>;
  /** Relative weight; {@link DEFAULT_SPREAD_WEIGHT} when not given. */
  weight: number;
}

/** A `spreadscaler` or `daemonscaler` trait. */
export interface ScalerTrait {
  type: "spreadscaler" | "daemonscaler";
  /** spreadscaler: instances in total (components) or hosts (providers); daemonscaler: per matching host. */
  instances: number;
  spread: Spread[];
  /** Path of the trait in the manifest, for messages. */
  path: string;
}

/** A `link` trait, normalized to the current wadm form. Its source is the component that carries it. */
export interface LinkTrait {
  type: "link";
  namespace: string;
  package: string;
  /** Sorted, without duplicates. */
  interfaces: string[];
  /** Link name; `default` when not given. */
  name: string;
  /** Manifest name of the target component. */
  target: string;
  targetConfig: ConfigRef[];
  sourceConfig: ConfigRef[];
  path: string;
}

/** One entry of `spec.components`. */
export interface ManifestComponent {
  name: string;
  /** `component` (a WebAssembly component; `actor` is accepted as an alias) or `capability` (a provider). */
  type: "component" | "capability";
  /** Component or provider reference, passed to the host verbatim. */
  image: string;
  /** Explicit id; absent means `{manifest}-{name}` sanitized ({@link computeId}). */
  id?: string;
  config: ConfigRef[];
  /**
   * Trellis: host directories given to a component (`properties.preopens`: list of
   * `{host_path, guest_path?, read_only?}`, read-only by default; the host must allow each path).
   */
  preopens?: { host_path: string; guest_path?: string; read_only?: boolean }[];
  /** At most one scaler trait. */
  scaler?: ScalerTrait;
  links: LinkTrait[];
  /** `spec.components[i]`. */
  path: string;
}

/** A validated manifest. */
export interface AppManifest {
  /** `metadata.name`: unique per lattice, `[A-Za-z0-9_-]`. */
  name: string;
  /** `metadata.annotations.version`, when given. */
  version?: string;
  /** `metadata.annotations.description`, when given. */
  description?: string;
  /** `metadata.annotations` (string values). */
  annotations: Record<string, string>;
  /** `metadata.labels` (string values). */
  labels: Record<string, string>;
  /** `spec.components`, in manifest order. */
  components: ManifestComponent[];
  /** The document as parsed (plain JSON values), stored as is by `app deploy`. */
  raw: Record<string, unknown>;
}

/** A manifest and the warnings found while reading it (ignored fields, ignored policies). */
export interface ParsedManifest {
  manifest: AppManifest;
  warnings: string[];
}

/**
 * wadm's `compute_component_id` (reference §8.3): `{manifest}-{name}`, each lower-cased with every character
 * other than ASCII letters and digits replaced by `_`. Also the stored name of inline config.
 */
export function computeId(manifestName: string, name: string): string {
  return `${sanitize(manifestName)}-${sanitize(name)}`;
}

/** Lower-cases and replaces every character but `[a-z0-9]` with `_` (per code point, as wadm). */
export function sanitize(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/gu, "_");
}

/** The id a manifest component runs under: its `id`, else {@link computeId}. */
export function componentId(manifestName: string, c: Pick<ManifestComponent, "id" | "name">): string {
  return c.id ?? computeId(manifestName, c.name);
}

/** The config name a {@link ConfigRef} resolves to: {@link computeId} for inline config, else the name as is. */
export function configName(manifestName: string, ref: ConfigRef): string {
  if (ref.secret) return `SECRET_${computeId(manifestName, ref.name)}`;
  return ref.properties === undefined ? ref.name : computeId(manifestName, ref.name);
}

/**
 * Parses a manifest from YAML or JSON text (one document).
 * @param source names the text in messages (a file path). @default "manifest"
 * @throws InvalidArgumentError (`field` `manifest`) for a YAML syntax error, with line and column; otherwise as
 *   {@link parseManifest}.
 */
export function parseManifestText(text: string, source = "manifest"): ParsedManifest {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err !== undefined) {
    throw new InvalidArgumentError("manifest", `${source}: not valid YAML: ${err.message.split("\n")[0] ?? err.message}`);
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  return parseManifest(value);
}

/**
 * Validates a manifest given as a parsed JSON/YAML value.
 * @throws InvalidArgumentError whose `field` is the path of the first bad value and whose message names it.
 */
export function parseManifest(value: unknown): ParsedManifest {
  const warnings: string[] = [];
  const root = obj("manifest", value);
  known("", root, ["apiVersion", "kind", "metadata", "spec"], warnings);
  if (root.apiVersion !== OAM_API_VERSION) {
    throw bad("apiVersion", `must be ${OAM_API_VERSION}, got ${show(root.apiVersion)}`);
  }
  if (root.kind !== APPLICATION_KIND) throw bad("kind", `must be ${APPLICATION_KIND}, got ${show(root.kind)}`);
  const meta = obj("metadata", root.metadata);
  known("metadata", meta, ["name", "annotations", "labels"], warnings);
  const name = str("metadata.name", meta.name);
  if (!/^[A-Za-z0-9_-]+$/.test(name) || name.length > MAX_ID_LENGTH) {
    throw bad("metadata.name", `${JSON.stringify(name)} is not allowed: use 1–${MAX_ID_LENGTH} letters, digits, '_' or '-'`);
  }
  const annotations = stringMap("metadata.annotations", meta.annotations, false);
  const labels = stringMap("metadata.labels", meta.labels, false);
  const version = annotations[VERSION_ANNOTATION];
  if (version === "latest") throw bad("metadata.annotations.version", "latest is not allowed as a version (as in wadm)");
  if (version === "") throw bad("metadata.annotations.version", "must not be empty");

  const spec = obj("spec", root.spec);
  known("spec", spec, ["components", "policies"], warnings);
  const policies = parsePolicies(spec.policies, warnings);
  const list = arr("spec.components", spec.components);
  const components = list.map((c, i) => parseComponent(`spec.components[${i}]`, c, warnings, policies));

  // names and ids unique
  const byName = new Map<string, ManifestComponent>();
  const ids = new Map<string, string>();
  for (const c of components) {
    if (byName.has(c.name)) throw bad(`${c.path}.name`, `duplicate component name ${JSON.stringify(c.name)}`);
    byName.set(c.name, c);
    const id = componentId(name, c);
    ident(c.id === undefined ? `${c.path}.name` : `${c.path}.properties.id`, id);
    const other = ids.get(id);
    if (other !== undefined) throw bad(`${c.path}.properties.id`, `component id ${JSON.stringify(id)} is also the id of ${other}`);
    ids.set(id, c.path);
  }
  // links: targets exist, providers link only to components, no duplicate or overlapping links
  for (const c of components) {
    const seen: LinkTrait[] = [];
    for (const l of c.links) {
      const target = byName.get(l.target);
      if (target === undefined) {
        throw bad(`${l.path}.properties.target`, `no component named ${JSON.stringify(l.target)} in this manifest`);
      }
      if (c.type === "capability" && target.type === "capability") {
        throw bad(`${l.path}.properties.target`, `provider ${c.name} cannot link to provider ${target.name}, only to components (as in wadm)`);
      }
      for (const s of seen) {
        if (s.namespace === l.namespace && s.package === l.package && s.name === l.name && s.interfaces.some((i) => l.interfaces.includes(i))) {
          throw bad(
            `${l.path}.properties`,
            s.target === l.target
              ? `duplicate link ${l.namespace}:${l.package} (link name ${l.name}) to ${l.target}`
              : `link ${l.namespace}:${l.package} (link name ${l.name}) to ${l.target} overlaps the one to ${s.target} at ${s.path}; give one a different link name`,
          );
        }
      }
      seen.push(l);
    }
  }
  // inline config: one set of values per stored name
  const inline = new Map<string, { values: Record<string, string>; path: string }>();
  const checkConfig = (path: string, refs: ConfigRef[]) =>
    refs.forEach((r, i) => {
      const stored = configName(name, r);
      ident(`${path}[${i}].name`, stored);
      if (r.properties === undefined) return;
      const prev = inline.get(stored);
      if (prev && !sameMap(prev.values, r.properties)) {
        throw bad(`${path}[${i}].properties`, `config ${JSON.stringify(r.name)} is also defined at ${prev.path} with other values`);
      }
      inline.set(stored, { values: r.properties, path: `${path}[${i}]` });
    });
  for (const c of components) {
    checkConfig(`${c.path}.properties.config`, c.config);
    for (const l of c.links) {
      checkConfig(`${l.path}.properties.target.config`, l.targetConfig);
      checkConfig(`${l.path}.properties.source.config`, l.sourceConfig);
    }
  }
  const manifest: AppManifest = {
    name,
    annotations,
    labels,
    components,
    raw: JSON.parse(JSON.stringify(root)) as Record<string, unknown>,
  };
  if (version !== undefined) manifest.version = version;
  const description = annotations[DESCRIPTION_ANNOTATION];
  if (description !== undefined) manifest.description = description;
  return { manifest, warnings };
}

function parseComponent(path: string, value: unknown, warnings: string[], policies: Policies): ManifestComponent {
  const c = obj(path, value);
  known(path, c, ["name", "type", "properties", "traits"], warnings);
  const name = str(`${path}.name`, c.name);
  const type = c.type === "actor" ? "component" : c.type;
  if (type !== "component" && type !== "capability") {
    throw bad(`${path}.type`, `must be component (alias actor) or capability, got ${show(c.type)}`);
  }
  const props = obj(`${path}.properties`, c.properties);
  known(`${path}.properties`, props, ["image", "id", "config", "secrets", "application", "preopens"], warnings);
  if (props.application !== undefined) {
    throw bad(`${path}.properties.application`, "shared application components are not supported by Trellis");
  }
  const out: ManifestComponent = {
    name,
    type,
    image: str(`${path}.properties.image`, props.image),
    config: [...configList(`${path}.properties.config`, props.config), ...secretList(`${path}.properties.secrets`, props.secrets, policies)],
    links: [],
    path,
  };
  if (props.id !== undefined) out.id = ident(`${path}.properties.id`, props.id);
  if (props.preopens !== undefined) {
    if (type !== "component") throw bad(`${path}.properties.preopens`, "preopens are for components only");
    try {
      out.preopens = preopensToWire(parsePreopens(props.preopens));
    } catch (err) {
      throw bad(`${path}.properties.${(err as InvalidArgumentError).field ?? "preopens"}`, (err as Error).message);
    }
  }
  const traits = c.traits === undefined || c.traits === null ? [] : arr(`${path}.traits`, c.traits);
  traits.forEach((t, i) => {
    const tp = `${path}.traits[${i}]`;
    const trait = obj(tp, t);
    known(tp, trait, ["type", "properties"], warnings);
    const ttype = trait.type;
    if (ttype === "spreadscaler" || ttype === "daemonscaler") {
      if (out.scaler) {
        throw bad(`${tp}.type`, `${name} already has a ${out.scaler.type} at ${out.scaler.path}; give a component at most one scaler trait`);
      }
      out.scaler = parseScaler(tp, ttype, trait.properties, warnings);
    } else if (ttype === "link") {
      out.links.push(parseLink(tp, trait.properties, warnings, policies));
    } else {
      throw bad(`${tp}.type`, `unknown trait type ${show(ttype)}: use spreadscaler, daemonscaler or link`);
    }
  });
  return out;
}

function parseScaler(path: string, type: ScalerTrait["type"], value: unknown, warnings: string[]): ScalerTrait {
  const p = obj(`${path}.properties`, value);
  known(`${path}.properties`, p, ["instances", "replicas", "spread"], warnings);
  const raw = p.instances ?? p.replicas;
  const field = p.instances !== undefined ? "instances" : "replicas";
  if (raw === undefined) throw bad(`${path}.properties.instances`, "is required");
  if (typeof raw !== "number" || !Number.isInteger(raw) || raw < 0) {
    throw bad(`${path}.properties.${field}`, `must be a non-negative integer, got ${show(raw)}`);
  }
  const spreads = p.spread === undefined || p.spread === null ? [] : arr(`${path}.properties.spread`, p.spread);
  const names = new Set<string>();
  const spread = spreads.map((s, i): Spread => {
    const sp = `${path}.properties.spread[${i}]`;
    const o = obj(sp, s);
    known(sp, o, ["name", "requirements", "weight"], warnings);
    const n = str(`${sp}.name`, o.name);
    if (names.has(n)) throw bad(`${sp}.name`, `duplicate spread name ${JSON.stringify(n)}`);
    names.add(n);
    let weight = DEFAULT_SPREAD_WEIGHT;
    if (o.weight !== undefined && o.weight !== null) {
      if (typeof o.weight !== "number" || !Number.isInteger(o.weight) || o.weight <= 0) {
        throw bad(`${sp}.weight`, `must be a positive integer, got ${show(o.weight)}`);
      }
      weight = o.weight;
    }
    return { name: n, requirements: stringMap(`${sp}.requirements`, o.requirements, false), weight };
  });
  return { type, instances: raw, spread, path };
}

function parseLink(path: string, value: unknown, warnings: string[], policies: Policies): LinkTrait {
  const pp = `${path}.properties`;
  const p = obj(pp, value);
  known(pp, p, ["namespace", "package", "interfaces", "name", "target", "source", "target_config", "source_config"], warnings);
  const interfaces = arr(`${pp}.interfaces`, p.interfaces).map((v, i) => ident(`${pp}.interfaces[${i}]`, v));
  if (interfaces.length === 0) throw bad(`${pp}.interfaces`, "must name at least one interface");
  let target: string;
  let targetConfig: ConfigRef[];
  let sourceConfig: ConfigRef[];
  if (typeof p.target === "string") {
    // legacy form: target is the component name, configs beside it
    target = str(`${pp}.target`, p.target);
    targetConfig = configList(`${pp}.target_config`, p.target_config);
  } else {
    const t = obj(`${pp}.target`, p.target);
    known(`${pp}.target`, t, ["name", "config", "secrets"], warnings);
    if (p.target_config !== undefined) throw bad(`${pp}.target_config`, "use target.config with the target: { name } form");
    target = str(`${pp}.target.name`, t.name);
    targetConfig = [...configList(`${pp}.target.config`, t.config), ...secretList(`${pp}.target.secrets`, t.secrets, policies)];
  }
  if (p.source !== undefined && p.source !== null) {
    const s = obj(`${pp}.source`, p.source);
    known(`${pp}.source`, s, ["config", "secrets"], warnings);
    if (p.source_config !== undefined) throw bad(`${pp}.source_config`, "give source.config or source_config, not both");
    sourceConfig = [...configList(`${pp}.source.config`, s.config), ...secretList(`${pp}.source.secrets`, s.secrets, policies)];
  } else {
    sourceConfig = configList(`${pp}.source_config`, p.source_config);
  }
  return {
    type: "link",
    namespace: ident(`${pp}.namespace`, p.namespace),
    package: ident(`${pp}.package`, p.package),
    interfaces: [...new Set(interfaces)].sort(),
    name: p.name === undefined || p.name === null ? DEFAULT_LINK_NAME : ident(`${pp}.name`, p.name),
    target,
    targetConfig,
    sourceConfig,
    path,
  };
}

function configList(path: string, value: unknown): ConfigRef[] {
  if (value === undefined || value === null) return [];
  return arr(path, value).map((v, i) => {
    const p = `${path}[${i}]`;
    const o = obj(p, v);
    for (const k of Object.keys(o)) if (k !== "name" && k !== "properties") throw bad(`${p}.${k}`, "unknown field of a config entry (name, properties)");
    const ref: ConfigRef = { name: str(`${p}.name`, o.name) };
    if (o.properties !== undefined && o.properties !== null) ref.properties = stringMap(`${p}.properties`, o.properties, true);
    return ref;
  });
}

// ---- secrets (reference §8.1, §8.3; docs/adr/0017-secrets.md) ---------------------------------------

/** Secret policies by name: their `properties` (with `backend`). */
type Policies = Map<string, Record<string, string>>;

const SECRET_POLICY_TYPE = "policy.secret.wasmcloud.dev/v1alpha1";

function parsePolicies(value: unknown, warnings: string[]): Policies {
  const out: Policies = new Map();
  if (value === undefined || value === null) return out;
  arr("spec.policies", value).forEach((v, i) => {
    const p = `spec.policies[${i}]`;
    const o = obj(p, v);
    known(p, o, ["name", "type", "properties"], warnings);
    const name = str(`${p}.name`, o.name);
    if (o.type !== SECRET_POLICY_TYPE) {
      warnings.push(`${p}: policy type ${show(o.type)} is ignored (only ${SECRET_POLICY_TYPE} is used)`);
      return;
    }
    const props = stringMap(`${p}.properties`, o.properties, true);
    if (!props.backend) throw bad(`${p}.properties.backend`, "is required (the secrets backend, e.g. nats-kv)");
    out.set(name, props);
  });
  return out;
}

/** `secrets:` entries → config refs holding the secret reference (1.x `SecretConfig` string map). */
function secretList(path: string, value: unknown, policies: Policies): ConfigRef[] {
  if (value === undefined || value === null) return [];
  return arr(path, value).map((v, i) => {
    const p = `${path}[${i}]`;
    const o = obj(p, v);
    const name = str(`${p}.name`, o.name);
    const props = stringMap(`${p}.properties`, obj(`${p}.properties`, o.properties), true);
    const policyName = str(`${p}.properties.policy`, props.policy);
    const policy = policies.get(policyName);
    if (!policy) throw bad(`${p}.properties.policy`, `no spec.policies entry named ${JSON.stringify(policyName)} of type ${SECRET_POLICY_TYPE}`);
    const { backend, ...policyProps } = policy;
    const ref: Record<string, string> = {
      name,
      backend: backend!,
      key: str(`${p}.properties.key`, props.key),
      policy: JSON.stringify({ type: "properties.secret.wasmcloud.dev/v1alpha1", properties: policyProps }),
      type: "secret.wasmcloud.dev/v1alpha1",
    };
    if (props.field) ref.field = props.field;
    if (props.version) ref.version = props.version;
    return { name, properties: ref, secret: true };
  });
}

// ---- small readers ---------------------------------------------------------------------------------

function bad(field: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(field, `${field}: ${message}`);
}

/** {@link validateId} with the error message in the `path: …` form. */
function ident(path: string, v: unknown): string {
  try {
    return validateId(path, v);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw bad(path, err.message.startsWith(path) ? err.message.slice(path.length).trim() : err.message);
    throw err;
  }
}

function show(v: unknown): string {
  return v === undefined ? "nothing" : v === null ? "null" : JSON.stringify(v);
}

function obj(path: string, v: unknown): Record<string, unknown> {
  if (v === undefined || v === null) throw bad(path, "is required");
  if (typeof v !== "object" || Array.isArray(v)) throw bad(path, `must be a mapping, got ${Array.isArray(v) ? "a list" : show(v)}`);
  return v as Record<string, unknown>;
}

function arr(path: string, v: unknown): unknown[] {
  if (v === undefined || v === null) throw bad(path, "is required");
  if (!Array.isArray(v)) throw bad(path, `must be a list, got ${show(v)}`);
  return v;
}

function str(path: string, v: unknown): string {
  if (v === undefined || v === null) throw bad(path, "is required");
  if (typeof v !== "string") throw bad(path, `must be a string, got ${show(v)}`);
  if (v.trim() === "") throw bad(path, "must not be empty");
  return v;
}

/**
 * A string → string map. With `coerce`, numbers and booleans become strings (YAML `port: 8080`); otherwise every
 * value must be a string.
 */
function stringMap(path: string, v: unknown, coerce: boolean): Record<string, string> {
  if (v === undefined || v === null) return {};
  const o = obj(path, v);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(o)) {
    if (typeof val === "string") out[k] = val;
    else if (coerce && (typeof val === "number" || typeof val === "boolean")) out[k] = String(val);
    else throw bad(`${path}.${k}`, `must be a string, got ${show(val)}${coerce ? "" : " (quote it)"}`);
  }
  return out;
}

function known(path: string, o: Record<string, unknown>, keys: readonly string[], warnings: string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) warnings.push(`${path ? `${path}.` : ""}${k} is not a known field; ignored`);
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}
