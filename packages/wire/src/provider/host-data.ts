/**
 * Host data: what a host writes to a capability provider's stdin when it spawns it (reference §4.2,
 * docs/protocol.md "Provider contract → Host data"), and the provider-facing link form (reference §2.2).
 *
 * Wire form: one line, the standard (padded) base64 of the UTF-8 JSON object, then `\r\n`; the host then closes
 * stdin. Both sides live here: the host encodes ({@link encodeHostData}), providers written on the SDK decode
 * ({@link decodeHostData}).
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { validateId } from "../core/ids.ts";
import { DEFAULT_LINK_NAME, type InterfaceLinkDefinition } from "../core/link.ts";

/**
 * The host data of reference §4.2, with the values a Trellis host sends.
 * Fields a Trellis host has nothing for are still present (empty) so that wasmCloud-style providers parse it.
 */
export interface HostData {
  /** Id of the host that spawned the provider (its `N…` public key). */
  host_id: string;
  /** The lattice name (wasmCloud calls it the RPC prefix). */
  lattice_rpc_prefix: string;
  /** Always `"default"` (legacy, reference §4.2). */
  link_name: string;
  /** NATS user JWT for the provider's connection (the host's own, docs/security.md); `""` when none. */
  lattice_rpc_user_jwt: string;
  /** NATS user nkey seed (`SU…`) for the provider's connection: with a JWT, or alone for an nkey user; `""` when none. */
  lattice_rpc_user_seed: string;
  /** NATS URL the provider connects to, e.g. `nats://127.0.0.1:4222`. */
  lattice_rpc_url: string;
  /** The provider id given in `provider.start` (not a public key). */
  provider_key: string;
  /** `{}` (reference §4.2). */
  env_values: Record<string, string>;
  /** A new UUID v4 for every (re)start of the process. */
  instance_id: string;
  /** Every link where the provider is source or target, with its named configs resolved (reference §2.2). */
  link_definitions: InterfaceLinkDefinition[];
  /** `[]`. */
  cluster_issuers: string[];
  /** The provider's own named configs (from `provider.start`), merged left to right. */
  config: Record<string, string>;
  /** The provider's own secrets: `{}` (Trellis has no secrets). */
  secrets: Record<string, unknown>;
  /** `""`: without secrets there is nothing to seal (reference §6.3). */
  host_xkey_public_key: string;
  /** `""`: see {@link HostData.host_xkey_public_key}. */
  provider_xkey_private_key: string;
  /** Timeout the provider should use for its own lattice calls, in milliseconds. */
  default_rpc_timeout_ms: number;
  /** Trellis extension: NATS user name (with {@link HostData.lattice_rpc_password}); absent or `""` when none. */
  lattice_rpc_user?: string;
  /** Trellis extension: NATS password; absent or `""` when none. */
  lattice_rpc_password?: string;
  /** Trellis extension: NATS authorization token; absent or `""` when none. */
  lattice_rpc_token?: string;
  /** Trellis extension: PEM of the CA that signed the NATS server's certificate; set means "use TLS". */
  lattice_rpc_tls_ca?: string;
  /** Trellis extension: PEM client certificate for mutual TLS. */
  lattice_rpc_tls_cert?: string;
  /** Trellis extension: PEM private key of {@link HostData.lattice_rpc_tls_cert}. */
  lattice_rpc_tls_key?: string;
  /** Whether the provider should log JSON lines (true) or text (false). */
  structured_logging: boolean;
  /** Lowest log level: `trace`, `debug`, `info`, `warn` or `error`. */
  log_level: string;
  /** `{ "enable_observability": false }`: Trellis does not configure OpenTelemetry for providers. */
  otel_config: { enable_observability: boolean } & Record<string, unknown>;
}

/** The standard (padded) base64 of the host data JSON, then `\r\n` (reference §4.1 step 5). */
export function encodeHostData(data: HostData): string {
  return `${Buffer.from(JSON.stringify(data), "utf8").toString("base64")}\r\n`;
}

/**
 * Decodes the first line a provider read from stdin: trims it, base64-decodes it and checks the fields a provider
 * needs. Missing optional fields get the values a Trellis host would send.
 * @param line the line, with or without its `\r\n`.
 * @throws InvalidArgumentError (`host_data` or the bad field) when the line is empty, not base64 JSON, or lacks
 *   `host_id`, `lattice_rpc_prefix` or `provider_key`.
 */
export function decodeHostData(line: string): HostData {
  const text = line.trim();
  if (!text) throw new InvalidArgumentError("host_data", "no host data on stdin (expected one base64 line)");
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(text, "base64").toString("utf8"));
  } catch (err) {
    throw new InvalidArgumentError("host_data", `host data is not base64 of a JSON object: ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError("host_data", "host data must be a JSON object");
  }
  const v = raw as Record<string, unknown>;
  const str = (field: string, dflt?: string): string => {
    const x = v[field];
    if (x === undefined || x === null) {
      if (dflt !== undefined) return dflt;
      throw new InvalidArgumentError(field, `host data has no ${field}`);
    }
    if (typeof x !== "string") throw new InvalidArgumentError(field, `host data field ${field} must be a string`);
    return x;
  };
  const links = v.link_definitions ?? [];
  if (!Array.isArray(links)) throw new InvalidArgumentError("link_definitions", "link_definitions must be an array");
  const timeout = v.default_rpc_timeout_ms;
  return {
    host_id: str("host_id"),
    lattice_rpc_prefix: validateId("lattice_rpc_prefix", str("lattice_rpc_prefix")),
    link_name: str("link_name", DEFAULT_LINK_NAME),
    lattice_rpc_user_jwt: str("lattice_rpc_user_jwt", ""),
    lattice_rpc_user_seed: str("lattice_rpc_user_seed", ""),
    lattice_rpc_url: str("lattice_rpc_url", "nats://127.0.0.1:4222") || "nats://127.0.0.1:4222",
    ...optionalStrings(v, ["lattice_rpc_user", "lattice_rpc_password", "lattice_rpc_token", "lattice_rpc_tls_ca", "lattice_rpc_tls_cert", "lattice_rpc_tls_key"]),
    provider_key: validateId("provider_key", str("provider_key")),
    env_values: stringMap("env_values", v.env_values),
    instance_id: str("instance_id", ""),
    link_definitions: links.map((l, i) => parseInterfaceLinkDefinition(l, `link_definitions[${i}]`)),
    cluster_issuers: Array.isArray(v.cluster_issuers) ? v.cluster_issuers.filter((x): x is string => typeof x === "string") : [],
    config: stringMap("config", v.config),
    secrets: typeof v.secrets === "object" && v.secrets !== null ? (v.secrets as Record<string, unknown>) : {},
    host_xkey_public_key: str("host_xkey_public_key", ""),
    provider_xkey_private_key: str("provider_xkey_private_key", ""),
    default_rpc_timeout_ms: typeof timeout === "number" && timeout > 0 ? timeout : 2000,
    structured_logging: v.structured_logging === true,
    log_level: str("log_level", "info").toLowerCase(),
    otel_config:
      typeof v.otel_config === "object" && v.otel_config !== null
        ? { enable_observability: false, ...(v.otel_config as Record<string, unknown>) }
        : { enable_observability: false },
  };
}

/** The non-empty string fields among `fields` (Trellis extensions a wasmCloud host does not send). */
function optionalStrings<K extends string>(v: Record<string, unknown>, fields: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const f of fields) {
    const x = v[f];
    if (x === undefined || x === null || x === "") continue;
    if (typeof x !== "string") throw new InvalidArgumentError(f, `host data field ${f} must be a string`);
    out[f] = x;
  }
  return out;
}

/**
 * The connection fields of host data for a provider the host spawns: the host's own credentials and TLS settings
 * (wasmCloud 1.x passes the host's RPC JWT and seed the same way, reference §6.6), written only to the provider's
 * stdin. `data` is the host's resolved connection (`NatsConnectData` of src/core/connection.ts, which the wire package
 * does not import); undefined gives empty credentials.
 */
export function hostDataConnectionFields(
  data: { jwt?: string; seed?: string; user?: string; pass?: string; token?: string; tlsCa?: string; tlsCert?: string; tlsKey?: string } | undefined,
): Pick<HostData, "lattice_rpc_user_jwt" | "lattice_rpc_user_seed" | "lattice_rpc_user" | "lattice_rpc_password" | "lattice_rpc_token" | "lattice_rpc_tls_ca" | "lattice_rpc_tls_cert" | "lattice_rpc_tls_key"> {
  return {
    lattice_rpc_user_jwt: data?.jwt ?? "",
    lattice_rpc_user_seed: data?.seed ?? "",
    ...(data?.user !== undefined ? { lattice_rpc_user: data.user, lattice_rpc_password: data.pass ?? "" } : {}),
    ...(data?.token !== undefined ? { lattice_rpc_token: data.token } : {}),
    ...(data?.tlsCa ? { lattice_rpc_tls_ca: data.tlsCa } : {}),
    ...(data?.tlsCert ? { lattice_rpc_tls_cert: data.tlsCert } : {}),
    ...(data?.tlsKey ? { lattice_rpc_tls_key: data.tlsKey } : {}),
  };
}

function stringMap(field: string, value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new InvalidArgumentError(field, `${field} must be a JSON object`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(value)) {
    if (typeof x !== "string") throw new InvalidArgumentError(field, `${field}.${k} must be a string`);
    out[k] = x;
  }
  return out;
}

/**
 * Validates an {@link InterfaceLinkDefinition} from untrusted JSON (host data, a `linkdefs.put`/`linkdefs.del`
 * message). Fills `name` (`default`), empty config maps and null secrets; sorts and de-duplicates `interfaces`.
 * @param field the name reported in errors. @default "link"
 * @throws InvalidArgumentError naming the first bad field.
 */
export function parseInterfaceLinkDefinition(value: unknown, field = "link"): InterfaceLinkDefinition {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(field, `${field} must be a JSON object`);
  }
  const v = value as Record<string, unknown>;
  if (!Array.isArray(v.interfaces)) throw new InvalidArgumentError(`${field}.interfaces`, `${field}.interfaces must be an array`);
  const interfaces = v.interfaces.map((x, i) => validateId(`${field}.interfaces[${i}]`, x));
  return {
    source_id: validateId(`${field}.source_id`, v.source_id),
    target: validateId(`${field}.target`, v.target),
    name: v.name === undefined || v.name === null || v.name === "" ? DEFAULT_LINK_NAME : validateId(`${field}.name`, v.name),
    wit_namespace: validateId(`${field}.wit_namespace`, v.wit_namespace),
    wit_package: validateId(`${field}.wit_package`, v.wit_package),
    interfaces: [...new Set(interfaces)].sort(),
    source_config: stringMap(`${field}.source_config`, v.source_config),
    target_config: stringMap(`${field}.target_config`, v.target_config),
    source_secrets: sealedBytes(`${field}.source_secrets`, v.source_secrets),
    target_secrets: sealedBytes(`${field}.target_secrets`, v.target_secrets),
  };
}

/** Sealed secrets on the wire: a JSON array of bytes, or null/absent (reference §2.2). */
function sealedBytes(field: string, value: unknown): number[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || value.some((b) => typeof b !== "number" || !Number.isInteger(b) || b < 0 || b > 255)) {
    throw new InvalidArgumentError(field, `${field} must be an array of bytes or null`);
  }
  return value as number[];
}

/**
 * The identity of a link as a provider keeps it: `source_id`, `target`, `wit_namespace`, `wit_package`, `name`
 * joined with `\u0000` (reference §4.6 `is_linked`). Deletes carry the same five fields, so a delete finds the put.
 */
export function linkIdentity(l: Pick<InterfaceLinkDefinition, "source_id" | "target" | "wit_namespace" | "wit_package" | "name">): string {
  return [l.source_id, l.target, l.wit_namespace, l.wit_package, l.name].join("\u0000");
}

/** True when two link definitions have the same identity, interfaces and resolved configs. */
export function sameLinkDefinition(a: InterfaceLinkDefinition, b: InterfaceLinkDefinition): boolean {
  return (
    linkIdentity(a) === linkIdentity(b) &&
    a.interfaces.length === b.interfaces.length &&
    [...a.interfaces].sort().every((x, i) => x === [...b.interfaces].sort()[i]) &&
    sameMap(a.source_config, b.source_config) &&
    sameMap(a.target_config, b.target_config)
  );
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}
