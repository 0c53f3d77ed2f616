// FunctionBench-style "lr_training": reads a CSV of reviews (Score,Text), cleans
// the text, fits a TF-IDF vectoriser (min_df 100), trains a logistic regression
// (positive = Score ≥ 4) and serialises the model. FunctionBench downloads
// reviews{N}mb.csv from an object store; here a CSV of about N MiB (~400-byte
// reviews, Zipf-distributed words plus sentiment words that follow the score) is
// generated deterministically on every call, as a download would be.
// Payload: {dataset_object_key: "reviews10mb.csv"} (minio_address, bucket_name ignored).
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

const POSITIVE = 'good great nice perfect love amazing favorite delicious excellent friendly best wonderful fresh tasty recommend'.split(' ');
const NEGATIVE = 'bad terrible awful worst rude slow cold dirty bland disappointing overpriced horrible poor stale mediocre'.split(' ');
const SYLLABLES = 'ka ri to mu se la pe no vi da lo zu ne ha fi go sa te ru mo'.split(' ');
const BASE_WORDS = 30_000;
const EPOCHS = 10;

function syntheticWord(i) {
  let w = '';
  let n = i + 1;
  while (n > 0) {
    w += SYLLABLES[n % SYLLABLES.length];
    n = Math.floor(n / SYLLABLES.length);
  }
  return w;
}

function datasetMiB(key) {
  const m = /reviews(\d+)mb/i.exec(String(key ?? ''));
  return m ? Math.max(1, Math.min(Number(m[1]), 200)) : 10;
}

/** The CSV text: Score,Text rows until about mib MiB. */
function generateCsv(mib) {
  const rand = rng(`reviews:${mib}`);
  const words = Array.from({ length: BASE_WORDS }, (_, i) => syntheticWord(i));
  // Zipf(1) over the base words: cumulative weights for inverse-CDF sampling
  const cdf = new Float64Array(BASE_WORDS);
  let acc = 0;
  for (let i = 0; i < BASE_WORDS; i++) cdf[i] = acc += 1 / (i + 1);
  const draw = () => {
    const u = rand() * acc;
    let lo = 0;
    let hi = BASE_WORDS - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return words[lo];
  };
  const target = mib * 1024 * 1024;
  const parts = ['Score,Text\n'];
  let size = parts[0].length;
  while (size < target) {
    const score = 1 + Math.floor(rand() * 5);
    const sentiment = score >= 4 ? POSITIVE : NEGATIVE;
    const n = 40 + Math.floor(rand() * 60);
    const toks = [];
    for (let k = 0; k < n; k++) toks.push(rand() < 0.05 ? sentiment[Math.floor(rand() * sentiment.length)] : draw());
    const line = `${score},"${toks.join(' ')}."\n`;
    parts.push(line);
    size += line.length;
  }
  return parts.join('');
}

function main(params) {
  const key = params.dataset_object_key ?? 'reviews10mb.csv';
  if (typeof key !== 'string') throw new Error('dataset_object_key: a string is required');
  const mib = datasetMiB(key);
  const t0 = performance.now();
  const csv = generateCsv(mib);
  const tGen = performance.now();

  // read the CSV and clean each review: letters only, lower case, as token ids
  const ids = new Map();
  const docs = [];
  const labels = [];
  let pos = csv.indexOf('\n') + 1;
  while (pos < csv.length) {
    const end = csv.indexOf('\n', pos);
    const line = csv.slice(pos, end < 0 ? csv.length : end);
    pos = end < 0 ? csv.length : end + 1;
    const comma = line.indexOf(',');
    if (comma < 0) continue;
    labels.push(Number(line.slice(0, comma)) >= 4 ? 1 : 0);
    const toks = line.slice(comma + 1).replace(/[^a-zA-Z]+/g, ' ').toLowerCase().split(' ');
    const doc = [];
    for (const t of toks) {
      if (t === '') continue;
      let id = ids.get(t);
      if (id === undefined) ids.set(t, (id = ids.size));
      doc.push(id);
    }
    docs.push(Int32Array.from(doc));
  }

  // TF-IDF with min_df = 100: document frequencies, then l2-normalised sparse rows
  const df = new Int32Array(ids.size);
  const seen = new Int32Array(ids.size).fill(-1);
  docs.forEach((d, i) => {
    for (const id of d) {
      if (seen[id] === i) continue;
      seen[id] = i;
      df[id]++;
    }
  });
  const column = new Int32Array(ids.size).fill(-1);
  let features = 0;
  for (let id = 0; id < df.length; id++) if (df[id] >= 100) column[id] = features++;
  const idf = new Float64Array(features);
  for (let id = 0; id < df.length; id++) if (column[id] >= 0) idf[column[id]] = 1 + Math.log((1 + docs.length) / (1 + df[id]));
  const scratch = new Float64Array(features); // counts of the current review, by column
  const rows = docs.map((d) => {
    const touched = [];
    for (const id of d) {
      const c = column[id];
      if (c < 0) continue;
      if (scratch[c] === 0) touched.push(c);
      scratch[c]++;
    }
    const idx = Int32Array.from(touched);
    const val = new Float64Array(idx.length);
    let norm = 0;
    for (let k = 0; k < idx.length; k++) {
      val[k] = scratch[idx[k]] * idf[idx[k]];
      norm += val[k] * val[k];
      scratch[idx[k]] = 0;
    }
    norm = Math.sqrt(norm) || 1;
    for (let k = 0; k < val.length; k++) val[k] /= norm;
    return { idx, val };
  });

  // logistic regression by stochastic gradient descent (l2-regularised)
  const w = new Float64Array(features);
  let b = 0;
  const lambda = 1e-4;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const lr = 0.5 / (1 + epoch);
    for (let i = 0; i < rows.length; i++) {
      const { idx, val } = rows[i];
      let z = b;
      for (let k = 0; k < idx.length; k++) z += w[idx[k]] * val[k];
      const g = 1 / (1 + Math.exp(-z)) - labels[i];
      for (let k = 0; k < idx.length; k++) w[idx[k]] -= lr * (g * val[k] + lambda * w[idx[k]]);
      b -= lr * g;
    }
  }
  let correct = 0;
  rows.forEach(({ idx, val }, i) => {
    let z = b;
    for (let k = 0; k < idx.length; k++) z += w[idx[k]] * val[k];
    if ((z >= 0 ? 1 : 0) === labels[i]) correct++;
  });
  const vocabulary = {};
  for (const [t, id] of ids) if (column[id] >= 0) vocabulary[t] = column[id];
  const model = JSON.stringify({ vectorizer: { vocabulary, idf: Array.from(idf) }, model: { coef: Array.from(w), intercept: b } });
  return {
    dataset_object_key: key,
    csv_bytes: csv.length,
    reviews: docs.length,
    features,
    epochs: EPOCHS,
    training_accuracy: Math.round((correct / rows.length) * 1e4) / 1e4,
    model_bytes: model.length,
    generate_ms: Math.round(tGen - t0),
    latency_ms: Math.round((performance.now() - t0) * 1000) / 1000,
  };
}

exports.main = main;
