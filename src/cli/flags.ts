// Numbers given on the command line (commander hands over strings) for the commands that run a trace: `faascell
// replay`, `faascell simulate` and `faascell simulate --nodes`. One reading of each, with the flag named in its error.

/** A number flag; undefined when absent or empty. */
export function numberFlag(v: number | string | undefined, flag: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new Error(`--${flag}: not a number: ${v}`);
  return x;
}

/** A number flag that may not be negative (times, counts); undefined when absent or empty. */
export function nonNegativeFlag(v: number | string | undefined, flag: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new Error(`--${flag}: a non-negative number (got ${v})`);
  return x;
}
