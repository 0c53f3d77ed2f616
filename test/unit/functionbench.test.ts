// The FunctionBench-style functions run on the host here (they are plain
// OpenWhisk Node.js actions), on small payloads of each benchmark's shape; and
// deploy-spec's spec → deployment mapping.
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DeploySpecError, languageOf, parseMemoryFor, planDeployment } from '../../src/cli/deploy-spec.js';
import { benchmarkFile, benchmarkOf, BENCHMARKS, pythonBenchmarkFile } from '../../src/functionbench/catalog.js';
import { loadTrace } from '../../src/traces/index.js';

const require = createRequire(import.meta.url);
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/traces');
type Action = (params: Record<string, unknown>) => Record<string, unknown>;
const action = (bench: string): Action => {
  const b = BENCHMARKS.get(bench)!;
  return (require(benchmarkFile(b)) as Record<string, Action>)[b.entry]!;
};

/** A small payload of the shape FaaSRail's workloads give each benchmark. */
const PAYLOADS: Record<string, Record<string, unknown>> = {
  helloworld: {},
  pyaes: { message_length: 100, num_iterations: 3 },
  chameleon: { nrow: 8, ncol: 8 },
  matmul_fb: { N: 16, M: 16 },
  json_serdes: { minio_address: 'x:1', bucket_name: 'b', file_name: 'gen02_n64.json' },
  image_rotate: { minio_address: 'x:1', bucket_name: 'b', img_name: 'img002k.jpeg', ops: 'filter-flip-gray_scale-resize-rotate' },
  video_processing: { minio_address: 'x:1', bucket_name: 'b', vid_name: 'big_buck_bunny_240p_0.05mb.mp4' },
  lr_serving: { x: 'The food was great and the staff friendly.', model_object_key: 'lr_model_reviews1mb.pk', tfidf_vect_object_key: 'lr_vectorizer_reviews1mb.pk' },
  new_lr_serving: { x: 'Terrible, rude and slow.', model_object_key: 'lr_model_reviews1mb.pk', tfidf_vect_object_key: 'lr_vectorizer_reviews1mb.pk' },
  lr_training: { dataset_object_key: 'reviews1mb.csv' },
  rnn_serving: { language: 'Scottish', start_letters: 'ABC', model_object_key: 'rnn_model.pth', model_parameter_object_key: 'rnn_params.pkl' },
  cnn_serving: { img_idx: 0 },
  cnn_serving_geol: { img_idx: 1 },
};

void test('every benchmark of FaaSRail\'s list has a function file exporting its entry, and runs deterministically', () => {
  assert.deepEqual(new Set(Object.keys(PAYLOADS)), new Set(BENCHMARKS.keys()));
  for (const [bench, payload] of Object.entries(PAYLOADS)) {
    assert.ok(existsSync(benchmarkFile(BENCHMARKS.get(bench)!)), bench);
    const run = action(bench);
    const a = run({ ...payload });
    const b = run({ ...payload });
    assert.equal(typeof a, 'object', bench);
    const strip = (r: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(r).filter(([k]) => !/(^latency_ms|_ms)$/.test(k)));
    assert.deepEqual(strip(a), strip(b), `${bench} is deterministic`);
    assert.doesNotThrow(() => JSON.stringify(a));
  }
});

void test('functions check their payload and name the field', () => {
  assert.throws(() => action('pyaes')({ message_length: -1 }), /message_length: an integer/);
  assert.throws(() => action('matmul_fb')({ N: 'x' }), /N: an integer/);
  assert.throws(() => action('image_rotate')({ ops: 'flip-spin' }), /ops: unknown operation 'spin'/);
  assert.throws(() => action('rnn_serving')({ language: 'Klingon' }), /language: one of/);
  assert.throws(() => action('cnn_serving')({ img_idx: -2 }), /img_idx/);
});

void test('pyaes is AES-128-CTR (checked against OpenSSL)', () => {
  const { aesCtr } = require(benchmarkFile(BENCHMARKS.get('pyaes')!)) as { aesCtr: (k: Uint8Array, m: Uint8Array, initial?: number) => Uint8Array };
  for (const len of [0, 1, 15, 16, 17, 1000]) {
    const key = randomBytes(16);
    const msg = randomBytes(len);
    const iv = Buffer.alloc(16);
    iv[15] = 1; // pyaes' Counter starts at 1
    const want = createCipheriv('aes-128-ctr', key, iv).update(msg);
    assert.ok(Buffer.from(aesCtr(key, msg)).equals(want), `length ${len}`);
  }
});

void test('matmul, image transforms and the template engine compute what they claim', () => {
  const { multiply } = require(benchmarkFile(BENCHMARKS.get('matmul_fb')!)) as { multiply: (a: Float64Array, b: Float64Array, n: number, m: number) => Float64Array };
  // [1 2 3; 4 5 6] × [7 8; 9 10; 11 12]
  assert.deepEqual([...multiply(Float64Array.of(1, 2, 3, 4, 5, 6), Float64Array.of(7, 8, 9, 10, 11, 12), 2, 3)], [58, 64, 139, 154]);
  const { rotate, flip } = require(benchmarkFile(BENCHMARKS.get('image_rotate')!)) as Record<string, (img: unknown, arg: unknown) => { width: number; height: number; data: Uint8Array }>;
  const img: { width: number; height: number; channels: number; data: Uint8Array } = { width: 3, height: 2, channels: 1, data: Uint8Array.of(1, 2, 3, 4, 5, 6) };
  // counter-clockwise quarter turn: the right column becomes the top row
  assert.deepEqual({ ...rotate!(img, 90), data: [...rotate!(img, 90).data] }, { width: 2, height: 3, channels: 1, data: [3, 6, 2, 5, 1, 4] });
  let r = img;
  for (let i = 0; i < 4; i++) r = { ...rotate!(r, 90), channels: 1 };
  assert.deepEqual([...r.data], [...img.data]);
  assert.deepEqual([...flip!(img, true).data], [3, 2, 1, 6, 5, 4]);
  assert.deepEqual([...flip!(img, false).data], [4, 5, 6, 1, 2, 3]);
  const { compile } = require(benchmarkFile(BENCHMARKS.get('chameleon')!)) as { compile: (t: string, vars: string[]) => (...a: unknown[]) => string };
  const esc = (v: unknown): string => String(v).replace(/</g, '&lt;');
  assert.equal(compile('<ul>{% for x in items %}<li>${x}</li>{% end %}</ul>', ['items'])(esc, ['a', '<b>']), '<ul><li>a</li><li>&lt;b></li></ul>');
  assert.throws(() => compile('{% for x in y %}', ['y']), /unclosed/);
  const html = action('chameleon')({ nrow: 2, ncol: 3 });
  assert.match(String(html.html_head), /<td><span class="column-1">1<\/span><\/td>/);
  assert.equal(html.html_length, 317);
  const lr = action('lr_serving');
  assert.equal(lr({ x: 'great food, friendly staff, I love it' }).y, 'positive');
  assert.equal(lr({ x: 'terrible, rude and dirty' }).y, 'negative');
});

void test('benchmarkOf reads shrinkray workload names', () => {
  assert.equal(benchmarkOf('pyaes-6065425fe65f28f182'), 'pyaes');
  assert.equal(benchmarkOf('cnn_serving_geol-0b1c2d'), 'cnn_serving_geol');
  assert.equal(benchmarkOf('new_lr_serving-abc'), 'new_lr_serving');
  assert.equal(benchmarkOf('matmul_fb'), 'matmul_fb');
  assert.equal(benchmarkOf('ffmpeg-0abc'), undefined);
  assert.equal(benchmarkOf('pyaes-XYZ'), undefined);
});

void test('deploy-spec plan: one function per row, benchmark defaults, overrides', async () => {
  const trace = await loadTrace(path.join(fixtures, 'faasrail-spec.csv'), 'faasrail');
  const plan = planDeployment(trace);
  assert.equal(plan.length, trace.functions.length);
  assert.deepEqual(plan.map((p) => p.name), trace.functions.map((f) => f.name));
  const [hello, py2, cham, py4, json] = plan;
  assert.deepEqual(hello, { name: 'helloworld-44136fa355b36-r1', benchmark: 'helloworld', workload: 'helloworld-44136fa355b36', runtime: 'nodejs20', file: 'helloworld.js', entry: 'main', memoryMiB: 256, timeoutMs: 60_000 });
  // rows sharing a workload deploy the same code under their own names
  assert.equal(py2!.file, py4!.file);
  assert.notEqual(py2!.name, py4!.name);
  assert.equal(cham!.memoryMiB, 640);
  assert.equal(json!.memoryMiB, 384);
  const o = planDeployment(trace, { memoryMiB: 512, memoryFor: parseMemoryFor('chameleon=1024'), timeoutMs: 9000, vcpus: 2, maxInstances: 3 });
  assert.deepEqual(o.map((p) => p.memoryMiB), [512, 512, 1024, 512, 512]);
  assert.ok(o.every((p) => p.timeoutMs === 9000 && p.vcpus === 2 && p.maxInstances === 3));
  assert.throws(() => parseMemoryFor('chameleon=big'), /chameleon: not a number/);
  assert.throws(() => parseMemoryFor('ffmpeg=128'), /unknown benchmark 'ffmpeg'/);
  // an unknown workload names its row; another format is refused
  const odd = { ...trace, functions: [{ ...trace.functions[0]!, benchmark: undefined, workload: 'ffmpeg-00' }] };
  assert.throws(() => planDeployment(odd), (e: unknown) => e instanceof DeploySpecError && /row 1: workload 'ffmpeg-00'/.test(e.message));
  const slots = await loadTrace(path.join(fixtures, 'faasrail.csv'), 'faasrail');
  assert.throws(() => planDeployment(slots), /needs a FaaSRail spec/);
});

void test('issue 21: every benchmark has a Python version defining its entry; deploy-spec --runtime python plans python3 functions', async () => {
  for (const b of BENCHMARKS.values()) {
    const file = pythonBenchmarkFile(b);
    assert.ok(existsSync(file), `${b.name}: ${file}`);
    assert.match(readFileSync(file, 'utf8'), new RegExp(`^def ${b.python.entry}\\(args\\):`, 'm'), `${b.name}: def ${b.python.entry}(args)`);
  }
  const trace = await loadTrace(path.join(fixtures, 'faasrail-spec.csv'), 'faasrail');
  const plan = planDeployment(trace, { language: 'python' });
  assert.deepEqual(plan[0], { name: 'helloworld-44136fa355b36-r1', benchmark: 'helloworld', workload: 'helloworld-44136fa355b36', runtime: 'python3', file: 'python/helloworld.py', entry: 'main', memoryMiB: 256, timeoutMs: 60_000 });
  assert.ok(plan.every((p) => p.runtime === 'python3' && p.file.startsWith('python/') && p.file.endsWith('.py')));
  assert.equal(planDeployment(trace, { language: 'python', memoryMiB: 640 })[2]!.memoryMiB, 640);
  assert.equal(languageOf('python3'), 'python');
  assert.equal(languageOf(undefined), 'javascript');
  assert.throws(() => languageOf('ruby'), /--runtime: javascript \(nodejs20\) or python \(python3\), got 'ruby'/);
});

void test('issue 21: the Python versions that need only the standard library run on the host and are deterministic', () => {
  // the others import numpy, Pillow, OpenCV, scikit-learn, PyTorch: they run in the Python image (test/e2e/python.test.ts, bench/functionbench.ts)
  const script = `import importlib.util, json, sys
def run(f, e, p):
    spec = importlib.util.spec_from_file_location("main__", f)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return [getattr(m, e)(dict(p)) for _ in range(2)]
print(json.dumps([run(*c) for c in json.loads(sys.argv[1])]))`;
  const cases = [
    [pythonBenchmarkFile(BENCHMARKS.get('helloworld')!), 'main', { name: 'FaaS' }],
    [pythonBenchmarkFile(BENCHMARKS.get('json_serdes')!), 'main', { file_name: 'gen02_n64.json' }],
  ];
  type Pair = [Record<string, unknown>, Record<string, unknown>];
  const [hello, json] = JSON.parse(execFileSync('python3', ['-c', script, JSON.stringify(cases)], { encoding: 'utf8' })) as [Pair, Pair];
  assert.deepEqual(hello[0], { message: 'Hello, FaaS!' });
  assert.deepEqual(hello[1], hello[0]);
  const strip = (r: Record<string, unknown>): Record<string, unknown> => ({ ...r, latency_ms: 0 });
  assert.deepEqual(strip(json[0]), strip(json[1]));
  assert.equal(json[0].records, 64);
});
