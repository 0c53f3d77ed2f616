// FunctionBench-style "video_processing": reads a video frame by frame, turns
// every frame gray and encodes the gray frames into an output stream. FunctionBench
// decodes an MP4 with OpenCV and writes XVID; here the frames of vid_name are
// rendered deterministically (a moving pattern, standing in for decoding) and each
// gray frame is deflated (zlib level 1, standing in for the encoder), against the
// previous frame, so still parts compress as in a real codec.
// Size from the name "big_buck_bunny_{240p|360p|480p|720p}_{N}mb.mp4": a 16:9 frame of
// that height, and N × frames-per-MiB frames (fewer per MiB at higher resolutions,
// in proportion to FaaSRail's measured run times of these files).
// Payload: {vid_name: "big_buck_bunny_240p_1mb.mp4"} (minio_address, bucket_name ignored).
'use strict';

const zlib = require('node:zlib');

const HEIGHTS = { '240p': 240, '360p': 360, '480p': 480, '720p': 720, '1080p': 1080 };
const FRAMES_PER_MIB = { '240p': 160, '360p': 140, '480p': 100, '720p': 110, '1080p': 90 };

function videoOf(name) {
  const m = /_(\d+p)_(\d+(?:\.\d+)?)mb/i.exec(name);
  const res = m && HEIGHTS[m[1].toLowerCase()] ? m[1].toLowerCase() : '240p';
  const mib = m ? Math.min(Number(m[2]), 100) : 1;
  const height = HEIGHTS[res];
  const width = Math.round((height * 16) / 9 / 2) * 2;
  return { res, width, height, frames: Math.max(1, Math.round(mib * FRAMES_PER_MIB[res])) };
}

/** Frame t of the synthetic video, as BGR bytes (OpenCV's order). */
function renderFrame(frame, width, height, t) {
  const cx = width * (0.5 + 0.3 * Math.sin(t / 20));
  const cy = height * (0.5 + 0.3 * Math.cos(t / 27));
  const r2 = (height / 5) ** 2;
  for (let y = 0, p = 0; y < height; y++) {
    const dy = (y - cy) ** 2;
    for (let x = 0; x < width; x++, p += 3) {
      const inside = (x - cx) ** 2 + dy < r2;
      frame[p] = inside ? 230 : (x + t) & 255;
      frame[p + 1] = inside ? 180 : (y * 2) & 255;
      frame[p + 2] = inside ? 40 : ((x >> 3) ^ (y >> 3)) * 8;
    }
  }
}

function main(params) {
  const name = params.vid_name ?? 'big_buck_bunny_240p_1mb.mp4';
  if (typeof name !== 'string') throw new Error('vid_name: a string is required');
  const v = videoOf(name);
  const t0 = performance.now();
  const frame = new Uint8Array(v.width * v.height * 3);
  const gray = new Uint8Array(v.width * v.height);
  const prev = new Uint8Array(v.width * v.height);
  const delta = new Uint8Array(v.width * v.height);
  let bytesOut = 0;
  for (let t = 0; t < v.frames; t++) {
    renderFrame(frame, v.width, v.height, t);
    for (let p = 0, q = 0; q < gray.length; p += 3, q++) {
      // cv2.COLOR_BGR2GRAY weights
      gray[q] = (frame[p] * 0.114 + frame[p + 1] * 0.587 + frame[p + 2] * 0.299) | 0;
      delta[q] = (gray[q] - prev[q]) & 255;
    }
    // a key frame every 50 frames, differences otherwise
    bytesOut += zlib.deflateSync(t % 50 === 0 ? gray : delta, { level: 1 }).length;
    prev.set(gray);
  }
  return { vid_name: name, resolution: `${v.width}x${v.height}`, frames: v.frames, bytes_out: bytesOut, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 };
}

exports.main = main;
