/**
 * How a provider process learns who it is: host data on stdin when a host spawned it (reference §4.2), or flags and
 * environment variables when it was started by hand (a "remote" provider, docs/protocol.md "Remote providers").
 * @module
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { InvalidArgumentError } from "../../wire/src/core/errors.ts";
import { validateId } from "../../wire/src/core/ids.ts";
import { decodeHostData, type HostData } from "../../wire/src/provider/host-data.ts";
import { NATS_AUTH_SETTINGS, type ProviderNatsAuth, remoteConnectionFields } from "./connection.ts";

/** Settings of a remote provider. */
export interface RemoteSettings {
  /** NATS URL(s), comma-separated. Flag `--nats-url`, env `TRELLIS_NATS_URL`. @default "nats://127.0.0.1:4222" */
  natsUrl: string;
  /** Lattice name. Flag `--lattice`, env `TRELLIS_LATTICE`. @default "default" */
  lattice: string;
  /** Provider id. Flag `--provider-id`, env `TRELLIS_PROVIDER_ID`. Required. */
  providerId: string;
  /** Names of the provider's own configs, merged left to right. Flag `--config NAME` (repeat), env `TRELLIS_PROVIDER_CONFIG` (comma-separated). */
  configNames: string[];
  /** Log level. Flag `--log-level`, env `TRELLIS_LOG_LEVEL`. @default "info" */
  logLevel: string;
  /**
   * Credentials and TLS (docs/security.md): flags `--nats-creds`, `--nats-nkey`, `--nats-user`, `--nats-password`,
   * `--nats-token`, `--nats-tls-ca`, `--nats-tls-cert`, `--nats-tls-key`, env `TRELLIS_NATS_*` twins. @default none
   */
  natsAuth?: ProviderNatsAuth;
}

/**
 * Reads remote settings from `argv` and `env`; undefined when neither `--provider-id` nor `TRELLIS_PROVIDER_ID` is
 * given (the process then expects host data on stdin). Unknown flags are left for the provider.
 * @throws InvalidArgumentError for a bad provider id or lattice name.
 */
export function remoteSettings(argv: readonly string[], env: NodeJS.ProcessEnv): RemoteSettings | undefined {
  const { values } = parseArgs({
    args: [...argv],
    strict: false,
    allowPositionals: true,
    options: {
      "nats-url": { type: "string" },
      lattice: { type: "string" },
      "provider-id": { type: "string" },
      config: { type: "string", multiple: true },
      "log-level": { type: "string" },
      ...Object.fromEntries(NATS_AUTH_SETTINGS.map((a) => [a.flag, { type: "string" as const }])),
    },
  });
  const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
  const providerId = str(values["provider-id"]) ?? str(env.TRELLIS_PROVIDER_ID);
  if (providerId === undefined) return undefined;
  const cfgFlag = Array.isArray(values.config) ? values.config.filter((x): x is string => typeof x === "string") : [];
  const cfgEnv = (env.TRELLIS_PROVIDER_CONFIG ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const natsAuth: ProviderNatsAuth = {};
  for (const a of NATS_AUTH_SETTINGS) {
    const v = str(values[a.flag]) ?? str(env[a.env]);
    if (v !== undefined) natsAuth[a.key] = v;
  }
  return {
    natsAuth,
    natsUrl: str(values["nats-url"]) ?? str(env.TRELLIS_NATS_URL) ?? "nats://127.0.0.1:4222",
    lattice: validateId("lattice", str(values.lattice) ?? str(env.TRELLIS_LATTICE) ?? "default"),
    providerId: validateId("provider-id", providerId),
    configNames: (cfgFlag.length > 0 ? cfgFlag : cfgEnv).map((c, i) => validateId(`config[${i}]`, c)),
    logLevel: (str(values["log-level"]) ?? str(env.TRELLIS_LOG_LEVEL) ?? "info").toLowerCase(),
  };
}

/**
 * Host data for a remote provider: no host, a fresh instance id, links and config filled in later; connection fields
 * from {@link RemoteSettings.natsAuth} (files read now).
 * @throws ProviderAuthError for bad or unreadable credential settings.
 */
export function remoteHostData(s: RemoteSettings, timeoutMs: number): HostData {
  return {
    host_id: "",
    lattice_rpc_prefix: s.lattice,
    link_name: "default",
    ...remoteConnectionFields(s.natsUrl, s.natsAuth ?? {}),
    provider_key: s.providerId,
    env_values: {},
    instance_id: randomUUID(),
    link_definitions: [],
    cluster_issuers: [],
    config: {},
    secrets: {},
    host_xkey_public_key: "",
    provider_xkey_private_key: "",
    default_rpc_timeout_ms: timeoutMs,
    structured_logging: true,
    log_level: s.logLevel,
    otel_config: { enable_observability: false },
  };
}

/**
 * Reads the first line of `stdin` (up to `\n` or the end of the stream) and decodes it as host data.
 * @param timeoutMs give up after this long, in milliseconds. @default 10000
 * @throws InvalidArgumentError when stdin is a terminal (started by hand without `--provider-id`), is empty, times
 *   out, or does not hold host data.
 */
export async function readHostData(stdin: NodeJS.ReadableStream & { isTTY?: boolean }, timeoutMs = 10_000): Promise<HostData> {
  if (stdin.isTTY) {
    throw new InvalidArgumentError(
      "host_data",
      "no host data: stdin is a terminal. A host writes host data to a provider's stdin; to run a provider by hand " +
        "give --provider-id (and --nats-url, --lattice) or TRELLIS_PROVIDER_ID",
    );
  }
  const line = await new Promise<string>((resolve, reject) => {
    let buf = "";
    const done = (err?: Error) => {
      clearTimeout(timer);
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.off("error", onError);
      stdin.pause();
      if (err) reject(err);
      else resolve(buf.split("\n")[0] ?? "");
    };
    const onData = (chunk: Buffer | string) => {
      buf += chunk.toString();
      if (buf.includes("\n")) done();
    };
    const onEnd = () => done();
    const onError = (err: Error) => done(err);
    const timer = setTimeout(() => done(new InvalidArgumentError("host_data", `no host data on stdin within ${timeoutMs} ms`)), timeoutMs);
    stdin.on("data", onData);
    stdin.once("end", onEnd);
    stdin.once("error", onError);
    stdin.resume();
  });
  return decodeHostData(line);
}
