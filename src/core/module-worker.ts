// A worker thread on one of the project's modules, compiled (.js, under dist/) or
// through tsx's loader (.ts, when the sources run directly: the unit tests).
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Start a worker on module `name` (without extension) beside the module whose import.meta.url is `base`. */
export function moduleWorker(base: string, name: string, options: WorkerOptions): Worker {
  const url = new URL(`./${name}.${base.endsWith('.ts') ? 'ts' : 'js'}`, base);
  if (url.pathname.endsWith('.js')) return new Worker(url, options);
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { ...options, eval: true });
}
