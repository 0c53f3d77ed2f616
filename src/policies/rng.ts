import type { Rng } from './types.js';

/**
 * Seeded PRNG (xoshiro128**, state seeded with splitmix32). Deterministic for a
 * given seed so simulator runs and tests are reproducible; not cryptographic.
 */
export class SeededRng implements Rng {
  /**
   * a, b, c, d as 32-bit patterns in a typed array: as numbers in fields, values ≥ 2^30 are heap numbers
   * and every draw allocated (4–6× slower; the simulator draws one per invocation). Same sequence.
   */
  private readonly s = new Int32Array(4);

  constructor(seed: number) {
    let s = seed >>> 0;
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    const st = this.s;
    for (let i = 0; i < 4; i++) st[i] = split();
    // An all-zero state would stay zero forever.
    if ((st[0]! | st[1]! | st[2]! | st[3]!) === 0) st[0] = 1;
  }

  /** uniform 32-bit unsigned integer */
  nextU32(): number {
    const st = this.s;
    let a = st[0]!;
    let b = st[1]!;
    let c = st[2]!;
    let d = st[3]!;
    const x = Math.imul(b, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
    st[0] = a;
    st[1] = b;
    st[2] = c;
    st[3] = d;
    return result;
  }

  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** integer in [0, n) */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** A seeded Rng. Strings are hashed (FNV-1a) so seeds can be names. */
export function createRng(seed: number | string = 1): SeededRng {
  if (typeof seed === 'string') {
    let h = 0x811c9dc5;
    for (let i = 0; i < seed.length; i++) {
      h ^= seed.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return new SeededRng(h);
  }
  // Mix in the high bits so large integer seeds differ.
  return new SeededRng((seed >>> 0) ^ Math.floor(seed / 4294967296));
}
