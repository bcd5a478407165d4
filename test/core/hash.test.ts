import { describe, expect, it } from 'vitest';
import { Hasher } from '../../src/core/hash.ts';

const key = (bytes: Uint8Array, start = 0, end = bytes.length) => new Hasher().bytes(bytes, start, end).digest();

function body(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('Hasher.bytes', () => {
  it('gives a different key when any single byte of a body changes', () => {
    // 100 bytes: six 16-byte rounds (every lane), one word after them and a byte tail.
    const base = body(100);
    const keys = new Set([key(base)]);
    for (let i = 0; i < base.length; i++) {
      const b = base.slice();
      b[i] = (b[i] as number) ^ 0x01;
      keys.add(key(b));
    }
    expect(keys.size).toBe(base.length + 1);
  });

  it('gives a different key when words swap places between lanes', () => {
    const a = body(64, 7);
    const swapped = a.slice();
    swapped.set(a.subarray(0, 4), 4);
    swapped.set(a.subarray(4, 8), 0);
    const rotated = a.slice();
    rotated.set(a.subarray(0, 16), 16);
    rotated.set(a.subarray(16, 32), 0);
    expect(new Set([key(a), key(swapped), key(rotated)]).size).toBe(3);
  });

  it('gives a different key for a body and the same body with zero bytes added', () => {
    const a = body(48, 3);
    const longer = new Uint8Array(52);
    longer.set(a);
    expect(key(a)).not.toBe(key(longer));
  });

  it('depends on the bytes hashed, not on where they sit in the buffer', () => {
    const a = body(1000, 5);
    for (const offset of [1, 2, 3, 17]) {
      const wider = new Uint8Array(a.length + offset + 5);
      wider.set(a, offset);
      expect(key(wider, offset, offset + a.length)).toBe(key(a));
      expect(key(wider.subarray(offset, offset + a.length))).toBe(key(a));
    }
  });

  it('gives distinct keys across many distinct bodies of every small length', () => {
    const keys = new Set<string>();
    let count = 0;
    for (let n = 0; n < 80; n++) {
      for (let seed = 1; seed <= 20; seed++) {
        keys.add(key(body(n, seed)));
        count++;
      }
    }
    // Length 0 is one body whatever the seed.
    expect(keys.size).toBe(count - 19);
  });
});

describe('Hasher.digest', () => {
  it('is sixteen lowercase hex digits, zero-padded, stable for the same input', () => {
    const keys = new Set<string>();
    for (let n = 0; n < 300; n++) {
      const k = key(body(n, 11));
      expect(k).toMatch(/^[0-9a-f]{16}$/);
      expect(key(body(n, 11))).toBe(k);
      keys.add(k);
    }
    expect(keys.size).toBe(300);
    // Every digit value shows up in some position, so none is mis-encoded.
    expect(new Set([...keys].join('')).size).toBe(16);
  });
});
