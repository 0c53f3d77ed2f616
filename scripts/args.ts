// Command-line arguments of the experiment scripts (scripts/*-experiment.ts): one walk
// over `--flag value` pairs, so each script only says what its flags mean. Not a script itself. (node:util's
// parseArgs would change the scripts' messages and their `--flag value` checks; this keeps them as they were.)

/**
 * Calls `on(flag, value)` for each argument in turn; `value()` takes the next argument as the flag's value (an error
 * "FLAG needs a value" when there is none). A flag `on` does not know is its to refuse.
 */
export function eachArg(argv: readonly string[], on: (flag: string, value: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    on(k, () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    });
  }
}
