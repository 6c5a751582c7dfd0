/**
 * Host identity: an nkey (`N…`, reference §6.1), a friendly name and the built-in `hostcore.*` labels.
 * @module
 */
import { arch, platform } from "node:os";
import { createServer, fromSeed } from "@nats-io/nkeys";
import { InvalidArgumentError } from "../core/errors.ts";

/** The host's keys: `id` is the public key (`N…`, 56 characters). */
export interface HostKeys {
  id: string;
  /** The seed (`SN…`); keep it secret. */
  seed: string;
}

/**
 * A new server nkey, or the one of `seed`.
 * @throws InvalidArgumentError (`hostSeed`) when the seed is not a server nkey seed.
 */
export function hostKeys(seed?: string): HostKeys {
  if (seed === undefined) {
    const kp = createServer();
    return { id: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
  }
  try {
    const kp = fromSeed(new TextEncoder().encode(seed));
    const id = kp.getPublicKey();
    if (!id.startsWith("N")) throw new Error("not a server key");
    return { id, seed };
  } catch (err) {
    throw new InvalidArgumentError("hostSeed", `hostSeed is not a server nkey seed (SN…): ${(err as Error).message}`);
  }
}

const ADJECTIVES = ["amber", "brisk", "calm", "dawn", "eager", "fern", "gentle", "hollow", "ivory", "jolly", "keen", "lucid", "misty", "noble", "olive", "proud", "quiet", "rapid", "silent", "tidy", "urban", "vivid", "wild", "young", "zesty"];
const NOUNS = ["anchor", "brook", "cedar", "delta", "ember", "fjord", "grove", "harbor", "island", "juniper", "kestrel", "lagoon", "meadow", "nebula", "orchard", "prairie", "quarry", "ridge", "summit", "trellis", "upland", "valley", "willow", "yarrow", "zephyr"];

/** A friendly name `{adjective}-{noun}-{number}`, as wasmCloud hosts have (reference §6.1). */
export function friendlyName(): string {
  const pick = (xs: string[]) => xs[Math.floor(Math.random() * xs.length)] ?? xs[0];
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${Math.floor(Math.random() * 10000)}`;
}

/** `hostcore.os`, `hostcore.arch`, `hostcore.osfamily` with the values wasmCloud hosts use (Rust's `std::env::consts`). */
export function builtinLabels(): Record<string, string> {
  const a = arch();
  const archName = a === "x64" ? "x86_64" : a === "arm64" ? "aarch64" : a === "ia32" ? "x86" : a;
  const p = platform();
  const os = p === "darwin" ? "macos" : p === "win32" ? "windows" : p;
  return { "hostcore.arch": archName, "hostcore.os": os, "hostcore.osfamily": p === "win32" ? "windows" : "unix" };
}
