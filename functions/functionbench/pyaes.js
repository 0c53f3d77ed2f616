// FunctionBench-style "pyaes": AES-128 in CTR mode written in the language
// itself (as pyaes is pure Python), encrypting and decrypting a generated
// message of message_length letters num_iterations times.
// Payload: {message_length: 100, num_iterations: 1}; no network, no packages.
'use strict';

// --- AES tables, computed (not typed in): S-box from GF(2^8) inverses + the affine map
const SBOX = new Uint8Array(256);
const TE = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
{
  const exp = new Uint8Array(256);
  const log = new Uint8Array(256);
  let x = 1;
  for (let i = 0; i < 255; i++) {
    exp[i] = x;
    log[x] = i;
    x ^= ((x << 1) ^ (x & 0x80 ? 0x1b : 0)) & 0xff; // x *= 3
  }
  const rotl8 = (v, n) => ((v << n) | (v >>> (8 - n))) & 0xff;
  for (let a = 0; a < 256; a++) {
    const inv = a === 0 ? 0 : exp[(255 - log[a]) % 255];
    SBOX[a] = inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^ rotl8(inv, 4) ^ 0x63;
  }
  for (let a = 0; a < 256; a++) {
    const s = SBOX[a];
    const s2 = ((s << 1) ^ (s & 0x80 ? 0x1b : 0)) & 0xff;
    const s3 = s2 ^ s;
    const t = ((s2 << 24) | (s << 16) | (s << 8) | s3) >>> 0;
    TE[0][a] = t;
    TE[1][a] = ((t >>> 8) | (t << 24)) >>> 0;
    TE[2][a] = ((t >>> 16) | (t << 16)) >>> 0;
    TE[3][a] = ((t >>> 24) | (t << 8)) >>> 0;
  }
}

/** The 44 round-key words of a 16-byte key. */
function expandKey(key) {
  const w = new Uint32Array(44);
  for (let i = 0; i < 4; i++) w[i] = ((key[4 * i] << 24) | (key[4 * i + 1] << 16) | (key[4 * i + 2] << 8) | key[4 * i + 3]) >>> 0;
  let rcon = 1;
  for (let i = 4; i < 44; i++) {
    let t = w[i - 1];
    if (i % 4 === 0) {
      t = ((SBOX[(t >>> 16) & 255] << 24) | (SBOX[(t >>> 8) & 255] << 16) | (SBOX[t & 255] << 8) | SBOX[t >>> 24]) ^ (rcon << 24);
      rcon = ((rcon << 1) ^ (rcon & 0x80 ? 0x1b : 0)) & 0xff;
    }
    w[i] = (w[i - 4] ^ t) >>> 0;
  }
  return w;
}

/** Encrypt one block given as four big-endian words; writes 16 bytes to out at off. */
function encryptBlock(rk, s0, s1, s2, s3, out, off) {
  const [T0, T1, T2, T3] = TE;
  s0 ^= rk[0];
  s1 ^= rk[1];
  s2 ^= rk[2];
  s3 ^= rk[3];
  let k = 4;
  for (let r = 1; r < 10; r++, k += 4) {
    const t0 = T0[s0 >>> 24] ^ T1[(s1 >>> 16) & 255] ^ T2[(s2 >>> 8) & 255] ^ T3[s3 & 255] ^ rk[k];
    const t1 = T0[s1 >>> 24] ^ T1[(s2 >>> 16) & 255] ^ T2[(s3 >>> 8) & 255] ^ T3[s0 & 255] ^ rk[k + 1];
    const t2 = T0[s2 >>> 24] ^ T1[(s3 >>> 16) & 255] ^ T2[(s0 >>> 8) & 255] ^ T3[s1 & 255] ^ rk[k + 2];
    const t3 = T0[s3 >>> 24] ^ T1[(s0 >>> 16) & 255] ^ T2[(s1 >>> 8) & 255] ^ T3[s2 & 255] ^ rk[k + 3];
    s0 = t0;
    s1 = t1;
    s2 = t2;
    s3 = t3;
  }
  const last = (a, b, c, d, key) => ((SBOX[a >>> 24] << 24) | (SBOX[(b >>> 16) & 255] << 16) | (SBOX[(c >>> 8) & 255] << 8) | SBOX[d & 255]) ^ key;
  const words = [last(s0, s1, s2, s3, rk[40]), last(s1, s2, s3, s0, rk[41]), last(s2, s3, s0, s1, rk[42]), last(s3, s0, s1, s2, rk[43])];
  for (let i = 0; i < 4; i++) {
    const v = words[i];
    out[off + 4 * i] = v >>> 24;
    out[off + 4 * i + 1] = (v >>> 16) & 255;
    out[off + 4 * i + 2] = (v >>> 8) & 255;
    out[off + 4 * i + 3] = v & 255;
  }
}

/** AES-128-CTR with a 128-bit big-endian counter starting at `initial` (pyaes' Counter default: 1). */
function aesCtr(key, input, initial = 1) {
  const rk = expandKey(key);
  const out = new Uint8Array(input.length);
  const ks = new Uint8Array(16);
  // counter as four 32-bit words, most significant first
  const c = new Uint32Array([0, 0, 0, initial >>> 0]);
  for (let off = 0; off < input.length; off += 16) {
    encryptBlock(rk, c[0], c[1], c[2], c[3], ks, 0);
    const n = Math.min(16, input.length - off);
    for (let i = 0; i < n; i++) out[off + i] = input[off + i] ^ ks[i];
    for (let w = 3; w >= 0; w--) {
      c[w] = (c[w] + 1) >>> 0;
      if (c[w] !== 0) break;
    }
  }
  return out;
}

// --- deterministic inputs (FunctionBench draws them at random; these are seeded)
function rng(seedText) {
  let s = 2166136261;
  for (let i = 0; i < seedText.length; i++) s = Math.imul(s ^ seedText.charCodeAt(i), 16777619);
  s = s >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

function intParam(params, name, dflt, min, max) {
  const v = params[name] ?? dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name}: an integer from ${min} to ${max} is required (got ${JSON.stringify(v)})`);
  return v;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function main(params) {
  const length = intParam(params, 'message_length', 100, 0, 64 * 1024 * 1024);
  const iterations = intParam(params, 'num_iterations', 1, 0, 1_000_000);
  const rand = rng(`pyaes:${length}`);
  const message = new Uint8Array(length);
  for (let i = 0; i < length; i++) message[i] = LETTERS.charCodeAt(Math.floor(rand() * LETTERS.length));
  const key = new Uint8Array(16);
  for (let i = 0; i < 16; i++) key[i] = Math.floor(rand() * 256);
  const t0 = performance.now();
  let ciphertext = new Uint8Array(0);
  for (let i = 0; i < iterations; i++) {
    ciphertext = aesCtr(key, message);
    const plaintext = aesCtr(key, ciphertext);
    for (let j = 0; j < length; j++) if (plaintext[j] !== message[j]) throw new Error(`decryption mismatch at byte ${j}`);
  }
  return {
    message_length: length,
    num_iterations: iterations,
    ciphertext_head: Buffer.from(ciphertext.subarray(0, 16)).toString('hex'),
    latency_ms: Math.round((performance.now() - t0) * 1000) / 1000,
  };
}

exports.main = main;
exports.aesCtr = aesCtr;
