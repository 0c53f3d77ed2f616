// The clock JavaScript sees in a restored clone, before its kernel clock is set.

export interface JsClock {
  /** From now on Date reads epochMs (plus elapsed time). */
  correctTo(epochMs: number): void;
  /** Date reads the kernel clock again (it has been set). */
  reset(): void;
  /** current offset in ms (diagnostics) */
  readonly offsetMs: number;
  /** restore the original Date (tests) */
  uninstall(): void;
}

/**
 * Date with an adjustable offset over the kernel clock. Installed before any user
 * code loads (so references user code keeps are covered); the offset is non-zero
 * only between a deferred resync and the moment the kernel clock is set.
 */
export function installJsClock(): JsClock {
  const RealDate = Date;
  const realNow = Date.now.bind(Date);
  let offset = 0;
  const now = (): number => realNow() + offset;
  const patched = new Proxy(RealDate, {
    construct(target, args: unknown[], newTarget: object) {
      return Reflect.construct(target, args.length === 0 ? [now()] : args, newTarget as DateConstructor) as object;
    },
    // Date() called as a function returns the current time as a string
    apply() {
      return new RealDate(now()).toString();
    },
    get(target, prop) {
      if (prop === 'now') return now;
      return Reflect.get(target, prop, target) as unknown;
    },
  });
  globalThis.Date = patched;
  return {
    correctTo(epochMs) {
      offset = epochMs - realNow();
    },
    reset() {
      offset = 0;
    },
    get offsetMs() {
      return offset;
    },
    uninstall() {
      globalThis.Date = RealDate;
    },
  };
}
