// FunctionBench-style "json_serdes" (json_dumps_loads): parses a JSON document
// and serialises it again with indentation. FunctionBench downloads the file
// from an object store; here the document is generated deterministically from
// file_name ("gen02_n{N}.json": N records of ~0.5 KB; FunctionBench's own
// 1.json, 2.json and search.json: a size of similar parse cost) once per
// instance, and every call parses and re-serialises it.
// Payload: {file_name: "gen02_n1024.json"} (minio_address and bucket_name are ignored).
'use strict';

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

/** Records of a file name: FunctionBench's sample files get a size of about the same parse cost. */
function recordsOf(fileName) {
  const known = { '1.json': 560, '2.json': 1350, 'search.json': 3900 };
  if (known[fileName] !== undefined) return known[fileName];
  const m = /_n(\d+)\.json$/.exec(fileName);
  if (m) return Math.min(Number(m[1]), 1_000_000);
  return 1024;
}

const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat'.split(' ');

function generate(fileName, n) {
  const rand = rng(`json:${fileName}`);
  const pick = (a) => a[Math.floor(rand() * a.length)];
  const words = (k) => Array.from({ length: k }, () => pick(WORDS)).join(' ');
  const hex = (k) => Array.from({ length: k }, () => Math.floor(rand() * 16).toString(16)).join('');
  const records = [];
  for (let i = 0; i < n; i++) {
    records.push({
      _id: hex(24),
      index: i,
      guid: `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`,
      isActive: rand() < 0.5,
      balance: Math.round(rand() * 1e6) / 100,
      age: 18 + Math.floor(rand() * 60),
      name: { first: words(1), last: words(1) },
      email: `${words(1)}.${words(1)}@example.org`,
      address: `${Math.floor(rand() * 999)} ${words(2)} street, ${words(1)}`,
      about: words(20),
      registered: new Date(1.4e12 + Math.floor(rand() * 3e11)).toISOString(),
      latitude: rand() * 180 - 90,
      longitude: rand() * 360 - 180,
      tags: Array.from({ length: 5 }, () => pick(WORDS)),
      friends: Array.from({ length: 3 }, (_, k) => ({ id: k, name: words(2) })),
    });
  }
  return JSON.stringify(records);
}

const documents = new Map(); // file name → text: the "object store" of this instance

function main(params) {
  const fileName = params.file_name ?? 'gen02_n1024.json';
  if (typeof fileName !== 'string' || fileName.length === 0) throw new Error('file_name: a non-empty string is required');
  let text = documents.get(fileName);
  if (text === undefined) {
    text = generate(fileName, recordsOf(fileName));
    documents.set(fileName, text);
  }
  const t0 = performance.now();
  const doc = JSON.parse(text);
  const out = JSON.stringify(doc, null, 4);
  return { file_name: fileName, records: doc.length, bytes_in: text.length, bytes_out: out.length, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 };
}

exports.main = main;
