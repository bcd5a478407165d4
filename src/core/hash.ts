// A fast non-cryptographic 64-bit hash (two independent 32-bit multiply-xorshift lanes) for cache keys.
// Runtime-neutral: no node:crypto here, and the early path cannot afford a SHA per message. Bodies are
// read four bytes at a time through a DataView, which V8 compiles to plain loads.

export class Hasher {
  private h1 = 0x9e3779b9 | 0;
  private h2 = 0x85ebca6b | 0;

  bytes(buf: Uint8Array, start = 0, end = buf.length): this {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let h1 = this.h1;
    let h2 = this.h2;
    let i = start;
    for (const stop = end - 3; i < stop; i += 4) {
      const w = dv.getUint32(i, true);
      h1 = Math.imul(h1 ^ w, 0x01000193);
      h1 ^= h1 >>> 15;
      h2 = Math.imul(h2 ^ w, 0x5bd1e995);
      h2 ^= h2 >>> 13;
    }
    for (; i < end; i++) {
      const b = buf[i] as number;
      h1 = Math.imul(h1 ^ b, 0x01000193);
      h2 = Math.imul(h2 ^ b, 0x5bd1e995);
    }
    // The length goes in too, so a tail of zero bytes changes the key.
    this.h1 = Math.imul(h1 ^ (end - start), 0x01000193);
    this.h2 = h2;
    return this;
  }

  string(s: string): this {
    let h1 = this.h1;
    let h2 = this.h2;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    // A separator so that ("ab","c") and ("a","bc") differ.
    this.h1 = Math.imul(h1 ^ 0xff, 0x01000193);
    this.h2 = h2;
    return this;
  }

  digest(): string {
    let a = this.h1;
    let b = this.h2;
    a ^= a >>> 16;
    a = Math.imul(a, 0x85ebca6b);
    a ^= a >>> 13;
    b ^= b >>> 16;
    b = Math.imul(b, 0xc2b2ae35);
    b ^= b >>> 13;
    return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
  }
}
