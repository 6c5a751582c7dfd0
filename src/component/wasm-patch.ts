/**
 * Per-component memory cap (issue 3 §3): rewrites the maximum of every linear memory a core module defines, so that
 * `memory.grow` beyond the cap fails inside the guest (which then traps) instead of exhausting the host.
 * WebAssembly memories live outside the V8 heap, so worker `resourceLimits` alone cannot bound them.
 * @module
 */
import { ErrorCode, TrellisError } from "../core/errors.ts";

/** WebAssembly page size in bytes. */
export const WASM_PAGE = 65536;

function readU32(b: Uint8Array, pos: number): [number, number] {
  let r = 0;
  let mul = 1;
  for (let i = 0; i < 5; i++) {
    const x = b[pos++]!;
    r += (x & 0x7f) * mul;
    if ((x & 0x80) === 0) return [r, pos];
    mul *= 128;
  }
  throw new TrellisError(ErrorCode.ComponentLoad, "malformed core module: LEB128 too long");
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/**
 * Returns a copy of core module `bytes` whose defined 32-bit memories have a maximum of at most `maxPages`
 * pages, or `bytes` unchanged when it defines none.
 * @throws TrellisError `COMPONENT_LOAD_FAILED` when a memory's initial size already exceeds the cap.
 */
export function capMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  let pos = 8;
  while (pos < bytes.length) {
    const sectionStart = pos;
    const id = bytes[pos++]!;
    let size: number;
    [size, pos] = readU32(bytes, pos);
    const contentStart = pos;
    const end = pos + size;
    if (id === 5) {
      const [count, afterCount] = readU32(bytes, contentStart);
      let p = afterCount;
      const out: number[] = [...leb(count)];
      for (let i = 0; i < count; i++) {
        const flags = bytes[p++]!;
        if (flags !== 0x00 && flags !== 0x01) {
          // shared or 64-bit memory: leave the section untouched
          return bytes;
        }
        let min: number;
        [min, p] = readU32(bytes, p);
        let max = Infinity;
        if (flags === 0x01) [max, p] = readU32(bytes, p);
        if (min > maxPages) {
          throw new TrellisError(
            ErrorCode.ComponentLoad,
            `the component needs ${((min * WASM_PAGE) / 1048576).toFixed(1)} MiB of memory at start, more than its cap of ${((maxPages * WASM_PAGE) / 1048576).toFixed(1)} MiB`,
          );
        }
        out.push(0x01, ...leb(min), ...leb(Math.min(max, maxPages)));
      }
      const content = Uint8Array.from(out);
      const head = Uint8Array.from([5, ...leb(content.length)]);
      const result = new Uint8Array(sectionStart + head.length + content.length + (bytes.length - end));
      result.set(bytes.subarray(0, sectionStart), 0);
      result.set(head, sectionStart);
      result.set(content, sectionStart + head.length);
      result.set(bytes.subarray(end), sectionStart + head.length + content.length);
      return result;
    }
    pos = end;
  }
  return bytes;
}
