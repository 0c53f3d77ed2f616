// Quoting for the few /bin/sh scripts the launch layers run.

/** Single-quotes a string for /bin/sh. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

export class UnsafePathError extends Error {
  constructor(what: string, p: string) {
    super(`${what} must be an absolute path without newlines or NUL, got ${JSON.stringify(p)}`);
    this.name = 'UnsafePathError';
  }
}

/** Paths that go into a mount script: absolute, normalised, no newline/NUL, no `..`. */
export function assertSafePath(what: string, p: string): void {
  if (typeof p !== 'string' || !p.startsWith('/') || /[\n\0]/.test(p) || p.split('/').includes('..')) throw new UnsafePathError(what, p);
}
