// Randomness that stays unique across snapshot clones.
//
// A VM restored from a snapshot resumes with the exact memory of the VM that
// was snapshotted. Every clone therefore starts with the same V8 Math.random
// state, the same OpenSSL DRBG state inside Node and the same kernel CRNG
// state: without help, two clones would hand out identical "random" numbers,
// UUIDs and keys. The host sends a fresh 32-byte seed with every `resync`
// (before user code runs after a restore), and we:
//   1. replace Math.random with a small PRNG (sfc32) seeded from that seed;
//   2. XOR the output of crypto.randomBytes / randomFill(Sync) / getRandomValues
//      (node:crypto and globalThis.crypto) with an AES-256-CTR keystream keyed
//      by the seed. XOR with an independent keystream keeps the output at least
//      as unpredictable as either input, and differs per clone;
//   3. re-implement crypto.randomUUID and crypto.randomInt on top of (2),
//      because Node serves those from internal buffers of OpenSSL output;
//   4. (in the entry point) write the seed into the kernel pool.
// Not covered: key generation (generateKeyPair, subtle.generateKey, TLS) draws
// from OpenSSL directly; OpenSSL reseeds from the kernel on its own schedule.

import crypto from 'node:crypto'; // the default export is the mutable CommonJS exports object
import { syncBuiltinESMExports } from 'node:module';

export interface RandomControl {
  /** Reseed Math.random and the crypto mixing stream. seed: any length, 32 bytes recommended. */
  reseed(seed: Buffer): void;
  /** Undo the patches (tests). */
  uninstall(): void;
}

type Mutable = Record<string, unknown>;

// Pure JS on purpose: resync runs right after a restore, when every code path
// is cold for TCG, and OpenSSL calls there cost tens of milliseconds.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function sfc32(seed: Buffer): () => number {
  // Every state word depends on every seed byte (fmix32 chain over the seed's 32-bit words).
  const words: number[] = [];
  for (let j = 0; j + 4 <= seed.length; j += 4) words.push(seed.readUInt32LE(j));
  let h = 0x243f6a88;
  const state: number[] = [];
  for (let i = 0; i < 4; i++) {
    for (const word of words) h = fmix32(((h ^ word) + Math.imul(0x9e3779b9, i + 1)) | 0);
    state.push(h | 0);
  }
  let [a, b, c, d] = state as [number, number, number, number];
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 20; i++) next(); // discard the first outputs, they correlate with the seed words
  // 53 random bits, like V8's own Math.random.
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

function keystream(seed: Buffer): (n: number) => Buffer {
  const key = crypto.createHash('sha256').update('faascell-crypto-mix').update(seed).digest();
  const iv = crypto.createHash('sha256').update('faascell-crypto-iv').update(seed).digest().subarray(0, 16);
  const cipher = crypto.createCipheriv('aes-256-ctr', key, iv);
  return (n) => cipher.update(Buffer.alloc(n));
}

function bytesOf(view: ArrayBufferView | ArrayBuffer): Uint8Array {
  if (view instanceof ArrayBuffer) return new Uint8Array(view);
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export function installRandomness(initialSeed: Buffer = crypto.randomBytes(32)): RandomControl {
  // The keystream is created lazily: most functions never ask for crypto randomness after a resync.
  let seedForKs = Buffer.from(initialSeed);
  let ksFn: ((n: number) => Buffer) | undefined;
  const ks = (n: number): Buffer => (ksFn ??= keystream(seedForKs))(n);
  const origMathRandom = Math.random;
  Math.random = sfc32(initialSeed);

  const xorInto = (bytes: Uint8Array): void => {
    if (bytes.byteLength === 0) return;
    const k = ks(bytes.byteLength);
    for (let i = 0; i < bytes.byteLength; i++) bytes[i]! ^= k[i]!;
  };

  const mod = crypto as unknown as Mutable;
  const saved = new Map<string, unknown>();
  const patch = (name: string, fn: unknown): void => {
    if (!(name in mod)) return;
    saved.set(name, mod[name]);
    mod[name] = fn;
  };

  const origRandomBytes = crypto.randomBytes;
  const origRandomFillSync = crypto.randomFillSync;
  const origRandomFill = crypto.randomFill as unknown as (...args: unknown[]) => void;

  const randomBytes = (size: number, cb?: (err: Error | null, buf: Buffer) => void): Buffer | undefined => {
    if (typeof cb === 'function') {
      origRandomBytes(size, (err, buf) => {
        if (!err) xorInto(buf);
        cb(err, buf);
      });
      return undefined;
    }
    const buf = origRandomBytes(size);
    xorInto(buf);
    return buf;
  };

  // Same offset/size semantics as Node: in elements of the view, converted to bytes.
  const region = (buf: ArrayBufferView | ArrayBuffer, offset?: unknown, size?: unknown): Uint8Array => {
    const all = bytesOf(buf);
    const el = (buf as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
    const off = typeof offset === 'number' ? offset * el : 0;
    const len = typeof size === 'number' ? size * el : all.byteLength - off;
    return all.subarray(off, off + len);
  };

  const randomFillSync = <T extends ArrayBufferView | ArrayBuffer>(buf: T, offset?: number, size?: number): T => {
    (origRandomFillSync as (b: unknown, o?: number, s?: number) => unknown)(buf, offset, size);
    xorInto(region(buf, offset, size));
    return buf;
  };

  const randomFill = (buf: ArrayBufferView | ArrayBuffer, ...rest: unknown[]): void => {
    const cb = rest[rest.length - 1];
    if (typeof cb !== 'function') {
      origRandomFill(buf, ...rest); // let Node raise its own argument error
      return;
    }
    const args = rest.slice(0, -1);
    origRandomFill(buf, ...args, (err: Error | null, out: unknown) => {
      if (!err) xorInto(region(buf, args[0], args[1]));
      (cb as (e: Error | null, b: unknown) => void)(err, out);
    });
  };

  const randomUUID = (): string => {
    const b = randomBytes(16)!;
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const h = b.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };

  const origRandomInt = crypto.randomInt as unknown as (...args: unknown[]) => unknown;
  // Rejection sampling over 48-bit draws, the range Node itself supports.
  const randomInt = (...args: unknown[]): unknown => {
    const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as (e: Error | null, n?: number) => void) : undefined;
    const [min, max] = args.length >= 2 ? args : [0, args[0]];
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || (max as number) <= (min as number) || (max as number) - (min as number) > 2 ** 48) {
      return origRandomInt(...args, ...(cb ? [cb] : [])); // Node's validation and error messages
    }
    const lo = min as number;
    const range = (max as number) - lo;
    const limit = 2 ** 48 - (2 ** 48 % range);
    let n: number;
    do n = randomBytes(6)!.readUIntBE(0, 6);
    while (n >= limit);
    const value = lo + (n % range);
    if (cb) {
      process.nextTick(cb, null, value);
      return undefined;
    }
    return value;
  };

  patch('randomBytes', randomBytes);
  patch('randomFillSync', randomFillSync);
  patch('randomFill', randomFill);
  patch('randomUUID', randomUUID);
  patch('randomInt', randomInt);

  // Web Crypto: globalThis.crypto is crypto.webcrypto; patch the instance methods.
  const web = crypto.webcrypto as unknown as Mutable & { getRandomValues: (a: ArrayBufferView) => ArrayBufferView };
  const origGetRandomValues = web.getRandomValues;
  const origWebUUID = web.randomUUID;
  const hadOwn = Object.prototype.hasOwnProperty.call(web, 'getRandomValues');
  web.getRandomValues = function getRandomValues<T extends ArrayBufferView>(arr: T): T {
    origGetRandomValues.call(crypto.webcrypto, arr);
    xorInto(bytesOf(arr));
    return arr;
  };
  web.randomUUID = randomUUID;
  // node:crypto's getRandomValues forwards to webcrypto's, so it is covered through the instance patch.
  syncBuiltinESMExports();

  return {
    reseed(seed) {
      seedForKs = Buffer.from(seed);
      ksFn = undefined;
      Math.random = sfc32(seed);
    },
    uninstall() {
      Math.random = origMathRandom;
      for (const [name, fn] of saved) mod[name] = fn;
      if (hadOwn) {
        web.getRandomValues = origGetRandomValues;
        web.randomUUID = origWebUUID;
      } else {
        delete (web as Mutable).getRandomValues;
        delete (web as Mutable).randomUUID;
      }
      syncBuiltinESMExports();
    },
  };
}
