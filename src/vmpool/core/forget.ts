// Forgetting a function that holds nothing (issue 23: the cluster simulator's nodes
// each define every function they were ever delivered, ~810 bytes apiece, a million
// at 1 000 nodes). What the core learned of it (its costs, its failure streaks and
// back-off, its fair-share virtual time, its timers' tokens, ...) is kept as the
// fields that differ from a new function's, and a recall builds it again at the
// same index with them: every later decision is the one a never-forgotten function
// would have had. The keep-alive policy's own per-function state is the policy's
// (kept by name, untouched here).

import type { CoreState } from './state.js';
import { CoreFunction, type FunctionSpec } from './model.js';

/** What a forgotten function keeps: its index and the fields (its own, then its view's) unlike a new one's. */
export class ForgottenFunction {
  constructor(
    readonly name: string,
    readonly index: number,
    /** key, value pairs */
    readonly fields: unknown[],
    readonly viewFields: unknown[],
  ) {}
}

type Fields = Record<string, unknown>;

/** Why `f` cannot be forgotten now (undefined: it holds nothing). */
export function holds(s: CoreState, f: CoreFunction): string | undefined {
  if (f.deleted || s.closed) return 'deleted';
  if (f.live > 0 || f.starting > 0 || f.idle.length > 0 || f.busy.length > 0) return 'instances';
  if (f.queued > 0) return 'queued';
  if (f.waiting || f.inWaitList || f.waitPos >= 0 || f.wantStarts !== 0 || f.inDemand) return 'waiting';
  if (f.snapshot !== undefined) return 'snapshot';
  if (f.deadlineArmedAt !== Infinity || f.recheckArmedAt !== Infinity) return 'timer';
  // a stale start (an older version) is counted in no field of f
  for (const inst of s.startingList) if (inst.f === f) return 'instances';
  return undefined;
}

/**
 * Forget `f` (the caller checked `holds`): its slot in s.fns takes `vacant` (deleted, never matches a timer's
 * token), its name leaves s.byName. `spec` is what the caller will define it with again.
 */
export function forget(s: CoreState, f: CoreFunction, spec: FunctionSpec, vacant: CoreFunction): ForgottenFunction {
  const fresh = new CoreFunction(f.index, f.name, spec, f.ka);
  const r = new ForgottenFunction(f.name, f.index, differing(f as unknown as Fields, fresh as unknown as Fields), differing(f.view as unknown as Fields, fresh.view as unknown as Fields));
  s.fns[f.index] = vacant;
  s.byName.delete(f.name);
  return r;
}

/** Define a forgotten function again, as it was when forgotten. */
export function recall(s: CoreState, r: ForgottenFunction, spec: FunctionSpec): CoreFunction {
  const f = new CoreFunction(r.index, r.name, spec, s.p.keepAliveFor(r.name));
  apply(f as unknown as Fields, r.fields);
  apply(f.view as unknown as Fields, r.viewFields);
  s.fns[r.index] = f;
  s.byName.set(r.name, f);
  return f;
}

/**
 * The own fields of `a` unlike those of `b`, as key, value pairs. Arrays: the lists of instances and the
 * queue are empty when nothing is held (a drained queue's arrays equal new ones); others (memEstimate) are
 * compared and kept by value; objects by reference.
 */
function differing(a: Fields, b: Fields): unknown[] {
  const out: unknown[] = [];
  for (const k of Object.keys(a)) {
    const v = a[k];
    const w = b[k];
    if (k === 'view' || k === 'idle' || k === 'busy' || k === 'qReq' || k === 'qAt' || k === 'qHead') continue;
    if (Array.isArray(v) && Array.isArray(w)) {
      if (v.length !== w.length || v.some((x, i) => !Object.is(x, w[i]))) out.push(k, v.slice());
    } else if (!Object.is(v, w)) out.push(k, v);
  }
  return out;
}

function apply(o: Fields, pairs: unknown[]): void {
  for (let i = 0; i < pairs.length; i += 2) {
    const k = pairs[i] as string;
    const v = pairs[i + 1];
    o[k] = Array.isArray(v) ? v.slice() : v;
  }
}
