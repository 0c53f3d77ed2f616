// FunctionBench-style "matmul": multiplies two generated matrices, N × M by M × N
// (FunctionBench multiplies two random n × n numpy arrays; FaaSRail's payload
// gives N and M). Float64Array, i-k-j loop order.
// Payload: {N: 100, M: N}; no network, no packages.
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

function intParam(params, name, dflt, min, max) {
  const v = params[name] ?? dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name}: an integer from ${min} to ${max} is required (got ${JSON.stringify(v)})`);
  return v;
}

function multiply(a, b, n, m) {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ci = i * n;
    for (let k = 0; k < m; k++) {
      const aik = a[i * m + k];
      const bk = k * n;
      for (let j = 0; j < n; j++) c[ci + j] += aik * b[bk + j];
    }
  }
  return c;
}

function main(params) {
  const n = intParam(params, 'N', 100, 1, 8192);
  const m = intParam(params, 'M', n, 1, 8192);
  const rand = rng(`matmul:${n}x${m}`);
  const a = new Float64Array(n * m);
  const b = new Float64Array(m * n);
  for (let i = 0; i < a.length; i++) a[i] = rand();
  for (let i = 0; i < b.length; i++) b[i] = rand();
  const t0 = performance.now();
  const c = multiply(a, b, n, m);
  const latency = performance.now() - t0;
  let trace = 0;
  for (let i = 0; i < n; i++) trace += c[i * n + i];
  return { N: n, M: m, trace, latency_ms: Math.round(latency * 1000) / 1000 };
}

exports.main = main;
exports.multiply = multiply;
