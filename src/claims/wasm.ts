/**
 * Claims embedded in a WebAssembly component or module (reference §6.2, wasmCloud `crates/wascap/src/wasm.rs`):
 * the JWT lives in a custom section named `wasmcloud_jwt` (legacy `jwt` still read); the claims' `hash` is the
 * uppercase hex SHA-256 of the binary with every such section removed, re-encoded as wascap does (sections copied
 * with minimal LEB128 sizes, nested core modules and components re-encoded recursively).
 * Pure functions over bytes.
 * @module
 */
import { createHash } from "node:crypto";
import type { KeyPair } from "@nats-io/nkeys";
import { type Claims, ClaimsError, type ComponentMetadata, decodeJwt, encodeJwt, type Token, verifyJwt, WASCAP_REVISION } from "./jwt.ts";

/** Name of the custom section holding the JWT. */
export const CLAIMS_SECTION = "wasmcloud_jwt";
/** Name used by wascap before 0.9; read, never written. */
export const LEGACY_CLAIMS_SECTION = "jwt";

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
const MODULE_HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
const COMPONENT_HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00);
/** Component section ids that hold a nested binary: core module (1) and component (4). */
const NESTED = new Set([1, 4]);

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

interface Section {
  id: number;
  start: number;
  end: number;
}

function readU32(b: Uint8Array, pos: number): [number, number] {
  let r = 0;
  let mul = 1;
  for (let i = 0; i < 5; i++) {
    if (pos >= b.length) throw new ClaimsError("malformed WebAssembly binary: truncated LEB128");
    const x = b[pos++]!;
    r += (x & 0x7f) * mul;
    if ((x & 0x80) === 0) return [r, pos];
    mul *= 128;
  }
  throw new ClaimsError("malformed WebAssembly binary: LEB128 too long");
}

function isComponent(b: Uint8Array): boolean {
  if (b.length < 8 || !MAGIC.every((m, i) => b[i] === m)) throw new ClaimsError("not a WebAssembly binary (bad magic)");
  return b[6] === 0x01 && b[7] === 0x00;
}

function sections(b: Uint8Array): Section[] {
  const out: Section[] = [];
  let pos = 8;
  while (pos < b.length) {
    const id = b[pos++]!;
    const [size, p] = readU32(b, pos);
    if (p + size > b.length) throw new ClaimsError("malformed WebAssembly binary: section past the end of the file");
    out.push({ id, start: p, end: p + size });
    pos = p + size;
  }
  return out;
}

function customName(b: Uint8Array, s: Section): string {
  const [n, p] = readU32(b, s.start);
  if (p + n > s.end) throw new ClaimsError("malformed WebAssembly binary: custom section name past its end");
  return new TextDecoder().decode(b.subarray(p, p + n));
}

function isClaimsSection(b: Uint8Array, s: Section): boolean {
  if (s.id !== 0) return false;
  const n = customName(b, s);
  return n === CLAIMS_SECTION || n === LEGACY_CLAIMS_SECTION;
}

/**
 * The binary without any `wasmcloud_jwt`/`jwt` custom section, at any depth, re-encoded as wascap's
 * `strip_custom_section` does.
 * @throws ClaimsError for a malformed binary.
 */
export function stripClaims(bytes: Uint8Array): Uint8Array {
  const component = isComponent(bytes);
  const parts: Uint8Array[] = [component ? COMPONENT_HEADER : MODULE_HEADER];
  for (const s of sections(bytes)) {
    if (isClaimsSection(bytes, s)) continue;
    const body = component && NESTED.has(s.id) ? stripClaims(bytes.subarray(s.start, s.end)) : bytes.subarray(s.start, s.end);
    parts.push(Uint8Array.of(s.id, ...leb(body.length)), body);
  }
  return Buffer.concat(parts);
}

/** Uppercase hex SHA-256 of `bytes` (wascap's `compute_hash`). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex").toUpperCase();
}

/** The `hash` claims of `bytes` must carry: SHA-256 of the binary without claims sections. */
export function moduleHash(bytes: Uint8Array): string {
  return sha256Hex(stripClaims(bytes));
}

/**
 * Signs `claims` (their `wascap.hash` is replaced by the binary's hash) and returns the binary without old claims
 * plus a new `wasmcloud_jwt` custom section at the end.
 * @throws ClaimsError for a malformed binary or an issuer that is not `claims.iss`.
 */
export function embedClaims(
  bytes: Uint8Array,
  claims: Claims<ComponentMetadata>,
  issuer: KeyPair,
): { bytes: Uint8Array; jwt: string; claims: Claims<ComponentMetadata> } {
  const stripped = stripClaims(bytes);
  const signed = { ...claims, wascap: orderedMeta({ ...(claims.wascap ?? { prov: false, hash: "" }), hash: sha256Hex(stripped) }) };
  const jwt = encodeJwt(signed, issuer);
  const enc = new TextEncoder();
  const name = enc.encode(CLAIMS_SECTION);
  const data = enc.encode(jwt);
  const content = Uint8Array.of(...leb(name.length), ...name, ...data);
  return { bytes: Buffer.concat([stripped, Uint8Array.of(0, ...leb(content.length)), content]), jwt, claims: signed };
}

function orderedMeta(m: ComponentMetadata): ComponentMetadata {
  const o: ComponentMetadata = {} as ComponentMetadata;
  if (m.name !== undefined) o.name = m.name;
  o.hash = m.hash;
  if (m.tags !== undefined) o.tags = m.tags;
  if (m.rev !== undefined) o.rev = m.rev;
  if (m.ver !== undefined) o.ver = m.ver;
  if (m.call_alias !== undefined) o.call_alias = m.call_alias;
  o.prov = m.prov;
  return o;
}

/** The raw JWT of the top-level claims section, if any (no verification). */
export function findClaimsJwt(bytes: Uint8Array): string | undefined {
  isComponent(bytes);
  for (const s of sections(bytes)) {
    if (!isClaimsSection(bytes, s)) continue;
    const [n, p] = readU32(bytes, s.start);
    return new TextDecoder().decode(bytes.subarray(p + n, s.end));
  }
  return undefined;
}

/**
 * Reads the embedded claims and checks the module hash (from wascap revision 3 on), without checking the signature
 * or dates (see {@link verifyComponentClaims}).
 * @returns undefined for an unsigned binary.
 * @throws ClaimsError when the JWT is malformed or the hash does not match (the binary was changed after signing).
 */
export function extractClaims(bytes: Uint8Array): Token<ComponentMetadata> | undefined {
  const jwt = findClaimsJwt(bytes);
  if (jwt === undefined) return undefined;
  const claims = decodeJwt<ComponentMetadata>(jwt);
  if (!claims.wascap) throw new ClaimsError("embedded claims have no wascap metadata");
  if ((claims.wascap_revision ?? 0) >= WASCAP_REVISION) {
    const hash = moduleHash(bytes);
    if (claims.wascap.hash !== hash) {
      throw new ClaimsError(
        `the component does not match its embedded claims: module hash ${hash} differs from the signed hash ${claims.wascap.hash} (the file was changed after signing)`,
        { subject: claims.sub, issuer: claims.iss },
      );
    }
  }
  return { jwt, claims };
}

/**
 * Extracts and fully verifies embedded claims: module hash, signature and dates.
 * @param nowSec time to check dates against, in seconds. @default now
 * @returns undefined for an unsigned binary.
 * @throws ClaimsError naming what failed.
 */
export function verifyComponentClaims(bytes: Uint8Array, nowSec?: number): Token<ComponentMetadata> | undefined {
  const t = extractClaims(bytes);
  if (!t) return undefined;
  verifyJwt(t.jwt, nowSec);
  return t;
}
