// FunctionBench-style "image_rotate" (image_processing): applies the operations
// named in `ops` ("filter-flip-gray_scale-resize-rotate") to an RGB image:
// flip (left-right and top-bottom), rotate (90, 180, 270), filter (blur 5×5,
// contour and sharpen 3×3), gray_scale, resize (to 128 × 128, bilinear).
// FunctionBench downloads a JPEG; here an RGB image of the decoded size of that
// file is generated deterministically: "img107k.jpeg" → 107 KiB of JPEG, taken
// as a 10:1 compression of 4:3 RGB pixels (about 680 × 510).
// Payload: {img_name: "img016k.jpeg", ops: "flip-rotate"} (minio_address, bucket_name ignored).
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

function sizeOf(imgName) {
  const m = /(\d+)k/i.exec(imgName);
  const kib = m ? Math.min(Number(m[1]), 20_000) : 64;
  const pixels = (kib * 1024 * 10) / 3;
  const width = Math.max(8, Math.round(Math.sqrt((pixels * 4) / 3)));
  return { width, height: Math.max(6, Math.round((width * 3) / 4)) };
}

function generate(imgName) {
  const { width, height } = sizeOf(imgName);
  const rand = rng(`img:${imgName}`);
  const data = new Uint8Array(width * height * 3);
  const fx = 6.283 / width;
  const fy = 6.283 / height;
  for (let y = 0, p = 0; y < height; y++) {
    for (let x = 0; x < width; x++, p += 3) {
      const noise = rand() * 40;
      data[p] = 127 + 100 * Math.sin(x * fx * 3) + noise;
      data[p + 1] = 127 + 100 * Math.cos(y * fy * 2) + noise;
      data[p + 2] = ((x ^ y) & 255) * 0.6 + noise;
    }
  }
  return { width, height, channels: 3, data };
}

function flip(img, horizontal) {
  const { width: w, height: h, channels: c, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = horizontal ? w - 1 - x : x;
      const sy = horizontal ? y : h - 1 - y;
      const d = (y * w + x) * c;
      const s = (sy * w + sx) * c;
      for (let k = 0; k < c; k++) out[d + k] = data[s + k];
    }
  }
  return { ...img, data: out };
}

function rotate(img, degrees) {
  const { width: w, height: h, channels: c, data } = img;
  const turns = (degrees / 90) % 4;
  const ow = turns % 2 ? h : w;
  const oh = turns % 2 ? w : h;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      // the source pixel of (x, y) in an image turned counter-clockwise
      let sx;
      let sy;
      if (turns === 1) [sx, sy] = [w - 1 - y, x];
      else if (turns === 2) [sx, sy] = [w - 1 - x, h - 1 - y];
      else [sx, sy] = [y, h - 1 - x];
      const d = (y * ow + x) * c;
      const s = (sy * w + sx) * c;
      for (let k = 0; k < c; k++) out[d + k] = data[s + k];
    }
  }
  return { width: ow, height: oh, channels: c, data: out };
}

const KERNELS = {
  blur: { size: 5, divisor: 16, weights: [1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1], offset: 0 },
  contour: { size: 3, divisor: 1, weights: [-1, -1, -1, -1, 8, -1, -1, -1, -1], offset: 255 },
  sharpen: { size: 3, divisor: 16, weights: [-2, -2, -2, -2, 32, -2, -2, -2, -2], offset: 0 },
};

function convolve(img, kernel) {
  const { width: w, height: h, channels: c, data } = img;
  const { size, divisor, weights, offset } = kernel;
  const r = size >> 1;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) {
        let acc = 0;
        for (let j = -r; j <= r; j++) {
          const yy = Math.min(h - 1, Math.max(0, y + j));
          for (let i = -r; i <= r; i++) {
            const xx = Math.min(w - 1, Math.max(0, x + i));
            acc += weights[(j + r) * size + (i + r)] * data[(yy * w + xx) * c + k];
          }
        }
        const v = acc / divisor + offset;
        out[(y * w + x) * c + k] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { ...img, data: out };
}

function grayScale(img) {
  const { width: w, height: h, data } = img;
  const out = new Uint8Array(w * h);
  for (let p = 0, q = 0; q < out.length; p += 3, q++) out[q] = (data[p] * 299 + data[p + 1] * 587 + data[p + 2] * 114) / 1000;
  return { width: w, height: h, channels: 1, data: out };
}

function resize(img, ow, oh) {
  const { width: w, height: h, channels: c, data } = img;
  const out = new Uint8Array(ow * oh * c);
  for (let y = 0; y < oh; y++) {
    const fy = ((y + 0.5) * h) / oh - 0.5;
    const y0 = Math.max(0, Math.floor(fy));
    const y1 = Math.min(h - 1, y0 + 1);
    const ty = Math.min(1, Math.max(0, fy - y0));
    for (let x = 0; x < ow; x++) {
      const fx = ((x + 0.5) * w) / ow - 0.5;
      const x0 = Math.max(0, Math.floor(fx));
      const x1 = Math.min(w - 1, x0 + 1);
      const tx = Math.min(1, Math.max(0, fx - x0));
      for (let k = 0; k < c; k++) {
        const a = data[(y0 * w + x0) * c + k] * (1 - tx) + data[(y0 * w + x1) * c + k] * tx;
        const b = data[(y1 * w + x0) * c + k] * (1 - tx) + data[(y1 * w + x1) * c + k] * tx;
        out[(y * ow + x) * c + k] = a * (1 - ty) + b * ty;
      }
    }
  }
  return { width: ow, height: oh, channels: c, data: out };
}

/** A short digest of an image, so results show the work was done. */
function digest(img) {
  let h = 2166136261;
  const step = Math.max(1, Math.floor(img.data.length / 4096));
  for (let i = 0; i < img.data.length; i += step) h = Math.imul(h ^ img.data[i], 16777619);
  return `${img.width}x${img.height}x${img.channels}:${(h >>> 0).toString(16)}`;
}

const OPS = {
  flip: (img) => ({ left_right: flip(img, true), top_bottom: flip(img, false) }),
  rotate: (img) => ({ r90: rotate(img, 90), r180: rotate(img, 180), r270: rotate(img, 270) }),
  filter: (img) => ({ blur: convolve(img, KERNELS.blur), contour: convolve(img, KERNELS.contour), sharpen: convolve(img, KERNELS.sharpen) }),
  gray_scale: (img) => ({ gray: grayScale(img) }),
  resize: (img) => ({ resized: resize(img, 128, 128) }),
};

function main(params) {
  const imgName = params.img_name ?? 'img016k.jpeg';
  if (typeof imgName !== 'string') throw new Error('img_name: a string is required');
  const opsText = params.ops ?? 'flip-rotate-filter-gray_scale-resize';
  if (typeof opsText !== 'string') throw new Error('ops: a string such as "flip-rotate" is required');
  const ops = opsText.split('-').filter(Boolean);
  for (const op of ops) if (!OPS[op]) throw new Error(`ops: unknown operation '${op}' (${Object.keys(OPS).join(', ')})`);
  const t0 = performance.now();
  const img = generate(imgName);
  const results = {};
  for (const op of ops) for (const [k, v] of Object.entries(OPS[op](img))) results[k] = digest(v);
  return { img_name: imgName, width: img.width, height: img.height, ops, results, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 };
}

exports.main = main;
exports.rotate = rotate;
exports.flip = flip;
