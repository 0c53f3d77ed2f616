// Console capture: process.stdout/stderr writes (which is also where every
// console.* method ends up) are turned into lines. During an operation (init or
// run) lines go to that operation's buffer; outside one (a timer firing after
// a run returned, an unhandled rejection) they are kept, capped, and handed to
// the next run, so nothing the function prints reaches the serial console.

type WriteFn = (chunk: unknown, encoding?: unknown, cb?: unknown) => boolean;

const PENDING_CAP = 1000;

export interface Capture {
  /** Start collecting into a fresh buffer; lines collected between operations are moved into it. */
  begin(): void;
  /** Stop collecting; returns the operation's lines (a trailing partial line is included). */
  end(): string[];
  /** Record a line directly (used for agent-side notes such as unhandled rejections). */
  note(line: string): void;
  /** Put the original write functions back. */
  uninstall(): void;
}

function chunkToString(chunk: unknown, encoding: unknown): string {
  if (typeof chunk === 'string') {
    // write(str, 'base64') etc.: honour the encoding like the real stream would.
    if (typeof encoding === 'string' && encoding !== 'utf8' && encoding !== 'utf-8' && Buffer.isEncoding(encoding)) {
      return Buffer.from(chunk, encoding).toString('utf8');
    }
    return chunk;
  }
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  return String(chunk);
}

export function installCapture(streams: { stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream } = process): Capture {
  let active: string[] | null = null;
  let pending: string[] = [];
  let dropped = 0;
  // Partial lines per stream, so interleaved stdout/stderr writes do not glue together.
  const partial = new Map<string, string>();

  const push = (line: string): void => {
    if (active) {
      active.push(line);
      return;
    }
    if (pending.length < PENDING_CAP) pending.push(line);
    else dropped++;
  };

  const feed = (key: string, text: string): void => {
    let buf = (partial.get(key) ?? '') + text;
    let nl = buf.indexOf('\n');
    while (nl !== -1) {
      const line = buf.endsWith('\r', nl) ? buf.slice(0, nl - 1) : buf.slice(0, nl);
      push(line);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
    partial.set(key, buf);
  };

  const flushPartials = (): void => {
    for (const [key, rest] of partial) {
      if (rest.length > 0) push(rest);
      partial.set(key, '');
    }
  };

  const originals = new Map<NodeJS.WriteStream, WriteFn>();
  for (const [key, stream] of [
    ['stdout', streams.stdout],
    ['stderr', streams.stderr],
  ] as const) {
    originals.set(stream, stream.write.bind(stream) as WriteFn);
    const patched: WriteFn = (chunk, encoding, cb) => {
      feed(key, chunkToString(chunk, encoding));
      const done = typeof encoding === 'function' ? encoding : cb;
      if (typeof done === 'function') process.nextTick(done);
      return true;
    };
    (stream as unknown as { write: WriteFn }).write = patched;
  }

  return {
    begin() {
      flushPartials();
      active = pending;
      if (dropped > 0) active.push(`[faascell] ${dropped} log lines printed between runs were dropped`);
      pending = [];
      dropped = 0;
    },
    end() {
      flushPartials();
      const out = active ?? [];
      active = null;
      return out;
    },
    note(line) {
      push(line);
    },
    uninstall() {
      for (const [stream, write] of originals) (stream as unknown as { write: WriteFn }).write = write;
    },
  };
}
