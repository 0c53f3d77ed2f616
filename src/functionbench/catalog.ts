// FunctionBench-style functions shipped with FaaSCell (functions/functionbench/),
// one entry per benchmark name that FaaSRail's benchmark list holds. FaaSRail
// specs name a workload as "{bench}-{payload hash}"; benchmarkOf() recovers the
// bench, this table says which file and export run it and with how much memory.
import path from 'node:path';
import { projectRoot } from '../core/project-root.js';

export interface BenchmarkEntry {
  /** FaaSRail's benchmark name */
  readonly name: string;
  /** file under functions/functionbench/ */
  readonly file: string;
  /** exported function the agent calls (OpenWhisk's `main` unless two benches share a file) */
  readonly entry: string;
  /** guest memory deploy-spec gives it by default (MiB) */
  readonly memoryMiB: number;
  /** run timeout deploy-spec gives it by default (ms): room for the largest payloads FaaSRail maps to it under TCG */
  readonly timeoutMs: number;
  /** what the function does, for `deploy-spec --list` and the docs */
  readonly work: string;
}

const bench = (name: string, file: string, entry: string, memoryMiB: number, timeoutS: number, work: string): BenchmarkEntry => ({ name, file, entry, memoryMiB, timeoutMs: timeoutS * 1000, work });

/**
 * Every benchmark in FaaSRail's list (faasrail-shrinkray/shrinkray/benchmarks.py).
 * Memory: FaaSRail's own per-bench figure where these functions fit in it, never
 * below 256 MiB (a guest with Node.js and the agent); more where the JavaScript
 * version needs it for the largest payloads (json_serdes, lr_training).
 */
export const BENCHMARKS: ReadonlyMap<string, BenchmarkEntry> = new Map(
  [
    bench('helloworld', 'helloworld.js', 'main', 256, 60, 'returns a greeting'),
    bench('pyaes', 'pyaes.js', 'main', 256, 120, 'AES-128 in CTR mode, pure JavaScript: encrypt and decrypt a generated message num_iterations times'),
    bench('chameleon', 'chameleon.js', 'main', 640, 300, 'compiles an HTML template and renders an nrow × ncol table with it'),
    bench('matmul_fb', 'matmul_fb.js', 'main', 256, 300, 'multiplies two generated N × M and M × N matrices (Float64Array, i-k-j loop)'),
    bench('json_serdes', 'json_serdes.js', 'main', 384, 120, 'parses and re-serialises a generated JSON document sized by file_name'),
    bench('image_rotate', 'image_rotate.js', 'main', 256, 120, 'flip / rotate / blur, contour and sharpen filters / gray scale / resize on a generated RGB image sized by img_name'),
    bench('video_processing', 'video_processing.js', 'main', 256, 300, 'renders the frames of a generated video sized by vid_name, converts each to gray and deflates it'),
    bench('lr_serving', 'lr_serving.js', 'main', 256, 60, 'TF-IDF + logistic regression prediction of x; the model is built once per instance'),
    bench('new_lr_serving', 'lr_serving.js', 'mainLoadPerCall', 256, 60, 'as lr_serving, but the serialised model is parsed on every call'),
    bench('lr_training', 'lr_training.js', 'main', 768, 600, 'tokenises a generated review data set, TF-IDF, trains a logistic regression, serialises it'),
    bench('rnn_serving', 'rnn_serving.js', 'main', 384, 60, 'a character-level RNN generates one name per start letter'),
    bench('cnn_serving', 'cnn_serving.js', 'main', 256, 120, 'forward pass of a small CNN over a generated 224 × 224 RGB image'),
    bench('cnn_serving_geol', 'cnn_serving.js', 'geol', 384, 120, 'as cnn_serving with a wider middle layer and 10 classes, image chosen by img_idx'),
  ].map((b) => [b.name, b]),
);

/** The directory holding the function files (next to src/ in a checkout and in the package). */
export const FUNCTIONBENCH_DIR = path.join(projectRoot(), 'functions', 'functionbench');

export function benchmarkFile(b: BenchmarkEntry): string {
  return path.join(FUNCTIONBENCH_DIR, b.file);
}

/**
 * The benchmark of a FaaSRail workload name: shrinkray names workloads
 * "{bench}-{first hex digits of the payload's sha256}" (24 characters in all);
 * a bare benchmark name is accepted too. Undefined when it is none of BENCHMARKS.
 */
export function benchmarkOf(workload: string): string | undefined {
  if (BENCHMARKS.has(workload)) return workload;
  const m = /^(.+)-[0-9a-f]+$/.exec(workload);
  return m && BENCHMARKS.has(m[1]!) ? m[1] : undefined;
}
