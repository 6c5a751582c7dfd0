/**
 * Opening link secrets (reference §2.2, §6.3): a host seals `{name: {kind, value}}` from its xkey to this provider
 * instance's xkey (`provider_xkey_private_key` of the host data); the SDK opens it and gives the provider its side's
 * secrets as `link.secrets`. Values never go to a log.
 * @module
 */
import { fromCurveSeed, type KeyPair } from "@nats-io/nkeys";

/** A secret value (1.x `SecretValue`): a string, or bytes. */
export type SecretValue = { kind: "String"; value: string } | { kind: "Bytes"; value: Uint8Array };

/** Opens sealed link secrets with this instance's key; built from the host data's xkeys. */
export class SecretOpener {
  readonly #kp: KeyPair;
  readonly #hostPublic: string;

  private constructor(kp: KeyPair, hostPublic: string) {
    this.#kp = kp;
    this.#hostPublic = hostPublic;
  }

  /** An opener when the host data has both xkeys, else undefined (the host sends no secrets). */
  static fromHostData(hd: { provider_xkey_private_key: string; host_xkey_public_key: string }): SecretOpener | undefined {
    if (!hd.provider_xkey_private_key || !hd.host_xkey_public_key) return undefined;
    return new SecretOpener(fromCurveSeed(new TextEncoder().encode(hd.provider_xkey_private_key)), hd.host_xkey_public_key);
  }

  /** This instance's xkey public key: link puts with secrets arrive on `wasmbus.rpc.{lattice}.{it}.linkdefs.put`. */
  get publicKey(): string {
    return this.#kp.getPublicKey();
  }

  /**
   * Opens a sealed secrets map.
   * @throws Error when it was not sealed by this host for this instance or is malformed (the message holds no value).
   */
  open(sealed: readonly number[] | null): Record<string, SecretValue> {
    if (!sealed || sealed.length === 0) return {};
    const plain = this.#kp.open(Uint8Array.from(sealed), this.#hostPublic);
    if (!plain) throw new Error("link secrets cannot be opened: not sealed by this provider's host for this instance");
    const raw = JSON.parse(new TextDecoder().decode(plain)) as Record<string, { kind?: unknown; value?: unknown }>;
    const out: Record<string, SecretValue> = {};
    for (const [name, v] of Object.entries(raw)) {
      if (v.kind === "String" && typeof v.value === "string") out[name] = { kind: "String", value: v.value };
      else if (v.kind === "Bytes" && Array.isArray(v.value)) out[name] = { kind: "Bytes", value: Uint8Array.from(v.value as number[]) };
      else throw new Error(`link secret ${name} has an unknown shape`);
    }
    return out;
  }
}

/** The string value of a secret, or undefined when absent (bytes are decoded as UTF-8). */
export function secretString(secrets: Readonly<Record<string, SecretValue>>, name: string): string | undefined {
  const s = secrets[name];
  if (!s) return undefined;
  return s.kind === "String" ? s.value : new TextDecoder().decode(s.value);
}

/** The provider's own secrets from host data `secrets` (`{name: {kind, value}}`); malformed entries are skipped. */
export function hostDataSecrets(raw: Record<string, unknown>): Record<string, SecretValue> {
  const out: Record<string, SecretValue> = {};
  for (const [name, v] of Object.entries(raw)) {
    const e = v as { kind?: unknown; value?: unknown } | null;
    if (e?.kind === "String" && typeof e.value === "string") out[name] = { kind: "String", value: e.value };
    else if (e?.kind === "Bytes" && Array.isArray(e.value)) out[name] = { kind: "Bytes", value: Uint8Array.from(e.value as number[]) };
  }
  return Object.freeze(out);
}
