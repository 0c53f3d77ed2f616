// FunctionBench-style "lr_serving": predicts the sentiment of a review `x` with a
// TF-IDF vectoriser and a logistic regression. FunctionBench downloads the pickled
// vectoriser and model (trained on reviews{N}mb.csv) from an object store; here a
// model of that scale (vocabulary ~8000 × sqrt(N) words) is generated
// deterministically and serialised to JSON once per instance (the "object store"),
// then loaded:
//   main             (lr_serving)      loads the model on the first call and keeps it;
//   mainLoadPerCall  (new_lr_serving)  parses the serialised model on every call.
// Payload: {x: "text", model_object_key: "lr_model_reviews10mb.pk",
//           tfidf_vect_object_key: "lr_vectorizer_reviews10mb.pk"} (minio_address, bucket_name ignored).
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

const POSITIVE = 'good great nice perfect perfectly love loved amazing favorite magical delicious excellent friendly best wonderful fresh tasty cozy recommend happy enjoy awesome lovely die'.split(' ');
const NEGATIVE = 'bad terrible awful worst rude slow cold dirty bland disappointing overpriced never horrible poor stale noisy wrong sick waste mediocre'.split(' ');
const COMMON = 'the a an and or but of to in on at for with was were is are it this that my our their we i they you food service place staff time really very just like going there weekends always taking cafe some pastry before visiting parents ambiance lobster cheese steaks cooked'.split(' ');
const SYLLABLES = 'ka ri to mu se la pe no vi da lo zu ne ha fi go sa te ru mo'.split(' ');

/** The i-th made-up word of the vocabulary (distinct for distinct i). */
function syntheticWord(i) {
  let w = '';
  let n = i + 1;
  while (n > 0) {
    w += SYLLABLES[n % SYLLABLES.length];
    n = Math.floor(n / SYLLABLES.length);
  }
  return w + 'x';
}

function datasetMiB(key) {
  const m = /reviews(\d+)mb/i.exec(String(key ?? ''));
  return m ? Math.max(1, Math.min(Number(m[1]), 1000)) : 10;
}

/** The serialised vectoriser + model for a dataset size (what the pickles hold). */
function serialisedModel(mib) {
  const rand = rng(`lr-model:${mib}`);
  const size = Math.round(8000 * Math.sqrt(mib));
  const words = [...POSITIVE, ...NEGATIVE, ...COMMON];
  for (let i = 0; words.length < size; i++) words.push(syntheticWord(i));
  const vocabulary = {};
  words.forEach((w, i) => (vocabulary[w] = i));
  const docs = 2500 * mib;
  const idf = words.map(() => 1 + Math.log((1 + docs) / (1 + Math.floor(rand() ** 3 * docs))));
  const coef = words.map((w, i) => (i < POSITIVE.length ? 2 + rand() : i < POSITIVE.length + NEGATIVE.length ? -2 - rand() : (rand() - 0.5) * 0.4));
  return JSON.stringify({ vectorizer: { vocabulary, idf }, model: { coef, intercept: 0.1 } });
}

function load(text) {
  const o = JSON.parse(text);
  return { vocabulary: new Map(Object.entries(o.vectorizer.vocabulary)), idf: Float64Array.from(o.vectorizer.idf), coef: Float64Array.from(o.model.coef), intercept: o.model.intercept };
}

/** TF-IDF (raw counts × idf, l2-normalised, as sklearn's TfidfVectorizer) then the logistic function. */
function predict(m, x) {
  const counts = new Map();
  for (const tok of x.toLowerCase().match(/[a-z']+/g) ?? []) {
    const idx = m.vocabulary.get(tok);
    if (idx !== undefined) counts.set(idx, (counts.get(idx) ?? 0) + 1);
  }
  let norm = 0;
  for (const [idx, c] of counts) norm += (c * m.idf[idx]) ** 2;
  norm = Math.sqrt(norm) || 1;
  let z = m.intercept;
  for (const [idx, c] of counts) z += (m.coef[idx] * c * m.idf[idx]) / norm;
  const p = 1 / (1 + Math.exp(-z));
  return { y: p >= 0.5 ? 'positive' : 'negative', probability: Math.round(p * 1e4) / 1e4, known_words: counts.size };
}

const store = new Map(); // dataset size → serialised model: the instance's "object store"
const loaded = new Map(); // dataset size → loaded model (lr_serving keeps it)

function args(params) {
  const x = params.x ?? 'The food was good.';
  if (typeof x !== 'string') throw new Error('x: a string is required');
  const mib = datasetMiB(params.model_object_key ?? params.tfidf_vect_object_key);
  let text = store.get(mib);
  if (text === undefined) store.set(mib, (text = serialisedModel(mib)));
  return { x, mib, text };
}

function main(params) {
  const { x, mib, text } = args(params);
  let m = loaded.get(mib);
  if (!m) loaded.set(mib, (m = load(text)));
  return { x, ...predict(m, x), vocabulary: m.vocabulary.size };
}

function mainLoadPerCall(params) {
  const { x, text } = args(params);
  const t0 = performance.now();
  const m = load(text);
  const loadMs = performance.now() - t0;
  return { x, ...predict(m, x), vocabulary: m.vocabulary.size, model_bytes: text.length, load_ms: Math.round(loadMs * 1000) / 1000 };
}

exports.main = main;
exports.mainLoadPerCall = mainLoadPerCall;
