/**
 * The nkey kinds wascap uses that `@nats-io/nkeys` does not create: module (`M…`) and service (`V…`) public keys
 * (reference §6.1). Only public keys are made here (a claims subject never signs); signing keys (accounts, `A…`)
 * come from `@nats-io/nkeys`.
 * @module
 */
import { randomBytes } from "node:crypto";
import { createAccount, fromPublic, fromSeed, type KeyPair } from "@nats-io/nkeys";
import { InvalidArgumentError } from "../core/errors.ts";

/** Prefix bytes of nkey public keys (nkeys `PrefixByte`): module `M` = 12 << 3, service `V` = 21 << 3. */
const PREFIX = { module: 12 << 3, service: 21 << 3 } as const;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/**
 * A fresh random public key of `kind` (`M…` for components, `V…` for providers), as wascap makes for a claims
 * subject: base32 of prefix byte, 32 random bytes and a little-endian CRC16.
 */
export function newSubjectKey(kind: "module" | "service"): string {
  const raw = new Uint8Array(35);
  raw[0] = PREFIX[kind];
  raw.set(randomBytes(32), 1);
  const crc = crc16(raw.subarray(0, 33));
  raw[33] = crc & 0xff;
  raw[34] = crc >> 8;
  return base32(raw);
}

/** True when `key` looks like an nkey public key of the given first letter (56 base32 characters). */
export function isPublicKey(key: string, letter: string): boolean {
  return key.length === 56 && key.startsWith(letter) && /^[A-Z2-7]+$/.test(key);
}

/**
 * The account key pair of an issuer seed (`SA…`).
 * @throws InvalidArgumentError (`issuer`) when `seed` is not an account seed. The seed never appears in the message.
 */
export function issuerKeyPair(seed: string): KeyPair {
  let kp: KeyPair;
  try {
    kp = fromSeed(new TextEncoder().encode(seed.trim()));
  } catch (err) {
    throw new InvalidArgumentError("issuer", `the issuer is not an nkey seed: ${(err as Error).message}`);
  }
  if (!kp.getPublicKey().startsWith("A")) {
    throw new InvalidArgumentError("issuer", "the issuer seed must be an account seed (SA…), as wascap signs with account keys");
  }
  return kp;
}

/** A new account key pair, for an issuer; returns its seed (`SA…`) and public key (`A…`). */
export function newIssuer(): { seed: string; publicKey: string } {
  const kp = createAccount();
  return { seed: new TextDecoder().decode(kp.getSeed()), publicKey: kp.getPublicKey() };
}

/**
 * Verifies an Ed25519 signature by the nkey public key `issuer`.
 * @returns false when the key is not a valid nkey or the signature does not match.
 */
export function verifyBy(issuer: string, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    return fromPublic(issuer).verify(data, sig);
  } catch {
    return false;
  }
}
