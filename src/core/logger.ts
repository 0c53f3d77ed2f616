// Structured logging through pino: one JSON line per event on stderr (or a
// short human line when stderr is a terminal). The project's `Logger` interface
// (msg first, fields second) is a thin adapter over a pino instance, so call
// sites stay as they are; fastify gets the same pino instance (`pinoOf`).
// Passed explicitly to every component: no global logger.

import { pino, type Logger as Pino, type DestinationStream } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** JSON lines (default when stderr is not a terminal) or short human lines */
  json?: boolean;
  /** where lines go (one call per line, without the newline); default stderr */
  write?: (line: string) => void;
}

const PINO = Symbol('pino');
type Adapter = Logger & { [PINO]: Pino };

function adapt(p: Pino): Adapter {
  return {
    [PINO]: p,
    debug: (m, f) => (f ? p.debug(f, m) : p.debug(m)),
    info: (m, f) => (f ? p.info(f, m) : p.info(m)),
    warn: (m, f) => (f ? p.warn(f, m) : p.warn(m)),
    error: (m, f) => (f ? p.error(f, m) : p.error(m)),
    child: (f) => adapt(p.child(f)),
  };
}

export function createLogger(opts: LoggerOptions = {}, base: Record<string, unknown> = {}): Logger {
  const json = opts.json ?? !process.stderr.isTTY;
  const write = opts.write ?? ((l: string) => process.stderr.write(l + '\n'));
  const dest: DestinationStream = { write: (chunk: string) => write(json ? chunk.replace(/\n$/, '') : humanLine(chunk)) };
  const p = pino(
    {
      level: opts.level ?? 'info',
      base: undefined, // no pid/hostname on every line
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Error objects in fields become {type, message, stack}
      serializers: { err: pino.stdSerializers.err },
    },
    dest,
  );
  return adapt(Object.keys(base).length ? p.child(base) : p);
}

/** The pino instance behind a Logger made here (fastify logs through it); undefined for other Loggers. */
export function pinoOf(log: Logger): Pino | undefined {
  return (log as Partial<Adapter>)[PINO];
}

/** The logger of one activation: every line it writes carries the activation id, function and trace id. */
export function activationLogger(log: Logger, rec: { id: string; function: string; traceId?: string }): Logger {
  return log.child({ activationId: rec.id, fn: rec.function, ...(rec.traceId ? { traceId: rec.traceId } : {}) });
}

/** One pino JSON line as `HH:MM:SS.mmm level msg k=v …` for a terminal. */
export function humanLine(jsonLine: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine.replace(/\n$/, '');
  }
  const { time, level, msg, ...rest } = o;
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const t = typeof time === 'string' ? time.slice(11, 23) : '';
  return `${t} ${String(level).padEnd(5)} ${typeof msg === 'string' ? msg : JSON.stringify(msg ?? '')}${extra ? ' ' + extra : ''}`;
}

export const silentLogger: Logger = createLogger({ level: 'silent', write: () => undefined });
