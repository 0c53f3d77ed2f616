// FunctionBench-style "rnn_serving": a character-level RNN (the shape of PyTorch's
// name-generation tutorial that FunctionBench serves: category + letter + hidden →
// hidden (128) and output, then output layer, softmax) generates one name per
// start letter for the given language. FunctionBench downloads trained weights;
// here the weights are generated deterministically (seeded by model_object_key) once
// per instance, so the names are not real names but the arithmetic is the same.
// Payload: {language: "Scottish", start_letters: "ABC"} (model keys, minio_address, bucket_name: seeds / ignored).
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

const LANGUAGES = 'Arabic Chinese Czech Dutch English French German Greek Irish Italian Japanese Korean Polish Portuguese Russian Scottish Spanish Vietnamese'.split(' ');
const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;'";
const N_LETTERS = LETTERS.length + 1; // + end of name
const HIDDEN = 128;
const MAX_LENGTH = 20;

class Linear {
  constructor(rand, inputs, outputs) {
    this.inputs = inputs;
    this.outputs = outputs;
    const bound = 1 / Math.sqrt(inputs);
    this.w = Float32Array.from({ length: inputs * outputs }, () => (rand() * 2 - 1) * bound);
    this.b = Float32Array.from({ length: outputs }, () => (rand() * 2 - 1) * bound);
  }
  forward(x, out) {
    const { inputs, outputs, w, b } = this;
    for (let o = 0; o < outputs; o++) {
      let acc = b[o];
      const row = o * inputs;
      for (let i = 0; i < inputs; i++) acc += w[row + i] * x[i];
      out[o] = acc;
    }
    return out;
  }
}

function buildModel(key) {
  const rand = rng(`rnn:${key}`);
  const n = LANGUAGES.length + N_LETTERS + HIDDEN;
  return { i2h: new Linear(rand, n, HIDDEN), i2o: new Linear(rand, n, N_LETTERS), o2o: new Linear(rand, HIDDEN + N_LETTERS, N_LETTERS) };
}

function sample(model, category, start) {
  const inp = new Float32Array(LANGUAGES.length + N_LETTERS + HIDDEN);
  const hidden = new Float32Array(HIDDEN);
  const out1 = new Float32Array(N_LETTERS);
  const cat2 = new Float32Array(HIDDEN + N_LETTERS);
  const out2 = new Float32Array(N_LETTERS);
  let name = start;
  let letter = LETTERS.indexOf(start);
  for (let step = 0; step < MAX_LENGTH; step++) {
    inp.fill(0);
    inp[category] = 1;
    inp[LANGUAGES.length + letter] = 1;
    inp.set(hidden, LANGUAGES.length + N_LETTERS);
    model.i2h.forward(inp, hidden);
    model.i2o.forward(inp, out1);
    cat2.set(hidden, 0);
    cat2.set(out1, HIDDEN);
    model.o2o.forward(cat2, out2);
    // log-softmax keeps the argmax: take the most likely next letter
    let best = 0;
    for (let k = 1; k < N_LETTERS; k++) if (out2[k] > out2[best]) best = k;
    if (best === N_LETTERS - 1) break;
    name += LETTERS[best];
    letter = best;
  }
  return name;
}

const models = new Map();

function main(params) {
  const language = params.language ?? 'Scottish';
  const category = LANGUAGES.indexOf(language);
  if (category < 0) throw new Error(`language: one of ${LANGUAGES.join(', ')} (got ${JSON.stringify(language)})`);
  const starts = params.start_letters ?? 'ABC';
  if (typeof starts !== 'string' || starts.length > 1000) throw new Error('start_letters: a string of at most 1000 letters is required');
  for (const ch of starts) if (!LETTERS.includes(ch)) throw new Error(`start_letters: '${ch}' is not a letter the model knows`);
  const key = String(params.model_object_key ?? 'rnn_model.pth');
  let model = models.get(key);
  if (!model) models.set(key, (model = buildModel(key)));
  const t0 = performance.now();
  const names = [...starts].map((ch) => sample(model, category, ch));
  return { language, names, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 };
}

exports.main = main;
