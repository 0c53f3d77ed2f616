// A seeded synthetic Azure-format day (src/traces/generate.ts), written to a temporary directory and loaded
// as the simulator reads a real one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAzureTrace } from '../../src/traces/azure.js';
import { synthesizeAzureFiles, type GenerateOptions } from '../../src/traces/generate.js';
import type { Trace } from '../../src/traces/types.js';

export async function syntheticTrace(o: GenerateOptions): Promise<Trace> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-synth-'));
  try {
    const f = synthesizeAzureFiles(o);
    writeFileSync(path.join(dir, 'invocations_per_function_md.anon.d01.csv'), f.invocations);
    writeFileSync(path.join(dir, 'function_durations_percentiles.anon.d01.csv'), f.durations);
    writeFileSync(path.join(dir, 'app_memory_percentiles.anon.d01.csv'), f.memory);
    return await loadAzureTrace(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
