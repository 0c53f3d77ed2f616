// FunctionBench-style "cnn_serving": classifies an image with a convolutional
// network (FunctionBench serves a Keras model): 3×3 convolutions with ReLU,
// max-pooling, global average pooling, a dense layer and softmax, in plain
// Float32Array loops. The weights and the 224 × 224 RGB input image are generated
// deterministically (the image from img_idx); the weights once per instance.
//   main  (cnn_serving)       16-32-64 channels, 1000 classes;
//   geol  (cnn_serving_geol)  16-48-64 channels, 10 classes (a geology classifier's shape).
// Payload: {img_idx: 0} (other keys ignored).
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

const SIZE = 224;

/** 3×3 convolution, zero padding, then ReLU. Tensors are channel-major Float32Arrays. */
function conv3x3(x, c, h, w, layer, stride) {
  const { weights, bias, out: co } = layer;
  const oh = Math.ceil(h / stride);
  const ow = Math.ceil(w / stride);
  const y = new Float32Array(co * oh * ow);
  for (let o = 0; o < co; o++) {
    const yo = o * oh * ow;
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let acc = bias[o];
        for (let ci = 0; ci < c; ci++) {
          const wb = (o * c + ci) * 9;
          const xb = ci * h * w;
          for (let di = -1; di <= 1; di++) {
            const r = i * stride + di;
            if (r < 0 || r >= h) continue;
            for (let dj = -1; dj <= 1; dj++) {
              const col = j * stride + dj;
              if (col < 0 || col >= w) continue;
              acc += weights[wb + (di + 1) * 3 + (dj + 1)] * x[xb + r * w + col];
            }
          }
        }
        y[yo + i * ow + j] = acc > 0 ? acc : 0;
      }
    }
  }
  return { y, c: co, h: oh, w: ow };
}

function maxPool2(x, c, h, w) {
  const oh = h >> 1;
  const ow = w >> 1;
  const y = new Float32Array(c * oh * ow);
  for (let k = 0; k < c; k++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const b = k * h * w + 2 * i * w + 2 * j;
        y[k * oh * ow + i * ow + j] = Math.max(x[b], x[b + 1], x[b + w], x[b + w + 1]);
      }
    }
  }
  return { y, c, h: oh, w: ow };
}

function convLayer(rand, cin, cout) {
  const bound = Math.sqrt(2 / (cin * 9));
  return { in: cin, out: cout, weights: Float32Array.from({ length: cout * cin * 9 }, () => (rand() * 2 - 1) * bound), bias: new Float32Array(cout) };
}

function buildModel(name, channels, classes) {
  const rand = rng(`cnn:${name}`);
  const [a, b, c] = channels;
  return {
    conv1: convLayer(rand, 3, a),
    conv2: convLayer(rand, a, b),
    conv3: convLayer(rand, b, c),
    dense: Float32Array.from({ length: classes * c }, () => (rand() * 2 - 1) / Math.sqrt(c)),
    classes,
  };
}

function image(idx) {
  const rand = rng(`cnn-image:${idx}`);
  const x = new Float32Array(3 * SIZE * SIZE);
  for (let k = 0; k < 3; k++) {
    const f = 0.02 + 0.03 * rand();
    for (let i = 0; i < SIZE; i++) for (let j = 0; j < SIZE; j++) x[k * SIZE * SIZE + i * SIZE + j] = Math.sin(i * f + k) * Math.cos(j * f) + 0.2 * rand();
  }
  return x;
}

function classify(model, x) {
  let t = conv3x3(x, 3, SIZE, SIZE, model.conv1, 2);
  t = conv3x3(t.y, t.c, t.h, t.w, model.conv2, 2);
  t = maxPool2(t.y, t.c, t.h, t.w);
  t = conv3x3(t.y, t.c, t.h, t.w, model.conv3, 1);
  const pooled = new Float32Array(t.c);
  const area = t.h * t.w;
  for (let k = 0; k < t.c; k++) {
    let s = 0;
    for (let p = 0; p < area; p++) s += t.y[k * area + p];
    pooled[k] = s / area;
  }
  const logits = Array.from({ length: model.classes }, (_, o) => {
    let s = 0;
    for (let k = 0; k < t.c; k++) s += model.dense[o * t.c + k] * pooled[k];
    return s;
  });
  const max = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - max));
  const sum = exps.reduce((p, v) => p + v, 0);
  return exps
    .map((e, cls) => ({ class: cls, probability: e / sum }))
    .sort((p, q) => q.probability - p.probability)
    .slice(0, 5)
    .map((p) => ({ class: p.class, probability: Math.round(p.probability * 1e6) / 1e6 }));
}

const models = new Map();

function run(params, name, channels, classes) {
  const idx = params.img_idx ?? 0;
  if (!Number.isInteger(idx) || idx < 0) throw new Error(`img_idx: a non-negative integer is required (got ${JSON.stringify(idx)})`);
  let model = models.get(name);
  if (!model) models.set(name, (model = buildModel(name, channels, classes)));
  const t0 = performance.now();
  const top5 = classify(model, image(idx));
  return { img_idx: idx, top5, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 };
}

function main(params) {
  return run(params, 'cnn_serving', [16, 32, 64], 1000);
}

function geol(params) {
  return run(params, 'cnn_serving_geol', [16, 48, 64], 10);
}

exports.main = main;
exports.geol = geol;
