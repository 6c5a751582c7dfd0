/**
 * XKey sealing (reference §6.3): nkeys curve keys (`X…`, seeds `SX…`); `seal` is NaCl box (X25519 +
 * XSalsa20-Poly1305) with a random nonce, framed `xkv1` + nonce + ciphertext, as `@nats-io/nkeys` 2.x does.
 * @module
 */
import { createCurve, fromCurveSeed, fromPublic, type KeyPair } from "@nats-io/nkeys";
import { ErrorCode, InvalidArgumentError, TrellisError } from "../core/errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A new curve key pair. */
export function newXKey(): KeyPair {
  return createCurve();
}

/**
 * The curve key pair of a seed (`SX…`).
 * @throws InvalidArgumentError (`xkey`) when it is not a curve seed; the seed is never in the message.
 */
export function xkeyFromSeed(seed: string): KeyPair {
  try {
    const kp = fromCurveSeed(encoder.encode(seed.trim()));
    if (!kp.getPublicKey().startsWith("X")) throw new Error("not a curve key");
    return kp;
  } catch (err) {
    throw new InvalidArgumentError("xkey", `not a curve (xkey) seed: ${(err as Error).message}`);
  }
}

/**
 * Checks that `key` is a curve public key (`X…`).
 * @throws InvalidArgumentError (`xkey`) otherwise.
 */
export function checkXKeyPublic(key: string): string {
  try {
    fromPublic(key);
  } catch {
    throw new InvalidArgumentError("xkey", `not an xkey public key: ${JSON.stringify(key.slice(0, 60))}`);
  }
  if (!key.startsWith("X")) throw new InvalidArgumentError("xkey", `not an xkey public key (X…): ${JSON.stringify(key.slice(0, 60))}`);
  return key;
}

/** The seed (`SX…`) of a curve key pair, as a string. */
export function xkeySeed(kp: KeyPair): string {
  return decoder.decode(kp.getSeed());
}

/** Seals the JSON of `value` from `sender` to `recipient` (a public `X…` key). */
export function sealJson(value: unknown, sender: KeyPair, recipient: string): Uint8Array {
  return sender.seal(encoder.encode(JSON.stringify(value)), recipient);
}

/**
 * Opens what `sender` (public `X…`) sealed to `recipient` and parses it as JSON.
 * @throws TrellisError `SECRETS_ERROR` when it cannot be opened (wrong keys, tampered) or is not JSON.
 */
export function openJson<T>(sealed: Uint8Array, recipient: KeyPair, sender: string): T {
  let plain: Uint8Array | null;
  try {
    plain = recipient.open(sealed, sender);
  } catch (err) {
    throw new TrellisError(ErrorCode.Secrets, `cannot open sealed data: ${(err as Error).message}`);
  }
  if (!plain) throw new TrellisError(ErrorCode.Secrets, "cannot open sealed data: not sealed for this key, or changed in transit");
  try {
    return JSON.parse(decoder.decode(plain)) as T;
  } catch {
    throw new TrellisError(ErrorCode.Secrets, "sealed data is not JSON");
  }
}
