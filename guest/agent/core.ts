// The guest agent's logic, independent of how it is connected: createAgent()
// reads requests (one JSON object per line) from `input` and writes replies to
// `output`. agent.ts binds it to /dev/hvc0 in the guest; tests bind it to pipes.

import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import type { AgentErrorKind, AgentReady } from '../../src/runtimes/agent-protocol.js';
import type { Capture } from './capture.js';
import { type EntryFn, LoadError, loadEntry } from './loader.js';

export const AGENT_VERSION = '1.0.0';

export interface AgentOptions {
  input: Readable;
  output: Writable;
  /** Directory under which each function gets a fresh directory (tmpfs in the guest). */
  workRoot: string;
  /** Console capture (installCapture()); without it runs return no logs. */
  capture?: Capture;
  /** Guest uptime in ms now (from /proc/uptime in the guest). */
  uptimeMs?: () => number;
  /** Uptime at which /init started, at which it started Node (if known), and at which the agent's JavaScript started. */
  boot?: { init: number; exec?: number; agentStart: number };
  /**
   * resync hooks. setClock sets the kernel clock and calls onSet synchronously right
   * after it took effect (so no JavaScript sees the clock corrected twice);
   * reseed reseeds the agent's JavaScript randomness; seedKernel the kernel CRNG.
   */
  setClock?: (epochMs: number, onSet?: () => void) => Promise<void>;
  reseed?: (seed: Buffer) => void;
  seedKernel?: (seed: Buffer) => Promise<void>;
  /** setClock + seedKernel in one step (one helper round trip); used instead of the two when given. dry: change nothing. */
  setClockAndSeed?: (epochMs: number, seed: Buffer, onSet?: () => void, dry?: boolean) => Promise<void>;
  /** The clock JavaScript sees (Date): a deferred resync corrects it first, the kernel clock later. */
  jsClock?: { correctTo(epochMs: number): void; reset(): void };
  /** chdir into the function directory at init (true in the guest; OpenWhisk functions read files relative to it). */
  chdir?: boolean;
  /** Diagnostics that must not end up in a run's logs (the entry writes them straight to the console fd). */
  debug?: (line: string) => void;
  /**
   * After a restore: destroy the connections opened before the snapshot (their
   * network path is gone) and tell user code; returns how many were closed.
   */
  restored?: () => number;
}

export interface Agent {
  /** Send the unsolicited `ready` message. */
  sendReady(): void;
  /** Handle one request line (exposed for tests; the input stream feeds it). */
  handleLine(line: string): Promise<void>;
  /** Resolves when input has ended and every reply has been written. */
  readonly done: Promise<void>;
  /**
   * Runs the resync's code path once without changing the clock (the agent's JS randomness is
   * reseeded from fresh entropy, the helper call is a dry run): V8 compiles it before any
   * snapshot, so a restored clone — where every code path is translated anew by TCG — does not
   * also run V8's parser and compiler for it.
   */
  warmUp(): Promise<void>;
  /**
   * The process is exiting (the function called process.exit, or crashed it):
   * the reply line for the init or run in progress, to be written synchronously
   * before the process ends, so the host learns the exit code.
   */
  exitReply(code: number): string | undefined;
}

type Reply = Record<string, unknown>;

class AgentError extends Error {
  constructor(
    readonly kind: AgentErrorKind,
    message: string,
  ) {
    super(message);
  }
}

function errorOf(kind: AgentErrorKind, err: unknown): { kind: AgentErrorKind; message: string; stack?: string } {
  if (err instanceof Error) {
    const out: { kind: AgentErrorKind; message: string; stack?: string } = { kind, message: err.message || err.name };
    if (typeof err.stack === 'string' && !(err instanceof AgentError)) out.stack = err.stack;
    return out;
  }
  let message: string;
  try {
    message = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    message = String(err);
  }
  return { kind, message };
}

/** Splits a byte stream into lines without decoding partial UTF-8 sequences; handles multi-megabyte lines. */
function lineReader(input: Readable, onLine: (line: string) => void, onEnd: () => void): void {
  let parts: Buffer[] = [];
  input.on('data', (chunk: Buffer | string) => {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let nl = buf.indexOf(10);
    while (nl !== -1) {
      parts.push(buf.subarray(0, nl));
      const line = (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString('utf8');
      parts = [];
      onLine(line);
      buf = buf.subarray(nl + 1);
      nl = buf.indexOf(10);
    }
    if (buf.length > 0) parts.push(buf);
  });
  input.on('end', onEnd);
  input.on('close', onEnd);
}

function safeRelative(p: string): string | undefined {
  if (p.length === 0 || isAbsolute(p) || p.includes('\0')) return undefined;
  const n = normalize(p);
  if (n === '..' || n.startsWith(`..${sep}`) || isAbsolute(n)) return undefined;
  return n;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

export function createAgent(opts: AgentOptions): Agent {
  const { input, output, capture } = opts;
  const uptimeMs = opts.uptimeMs ?? (() => performance.now());
  let initState: 'none' | 'loading' | 'failed' | 'ready' = 'none';
  let entry: EntryFn | undefined;
  let running: { fail: (err: unknown) => void } | undefined;
  /** ids of the init and the run in progress (for exitReply) */
  let initId: number | undefined;
  let runId: number | undefined;
  let inFlight = 0;
  /** Kernel part of a deferred resync: runs after the next run replied, or after a second idle. */
  let pendingKernel: { work: () => Promise<void>; timer: ReturnType<typeof setTimeout> } | undefined;
  const runPendingKernel = (): void => {
    const p = pendingKernel;
    if (!p || running) return;
    pendingKernel = undefined;
    clearTimeout(p.timer);
    p.work().catch((err: unknown) => capture?.note(`[faascell] deferred kernel resync failed: ${errorOf('state', err).message}`));
  };

  let ended = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  const send = (text: string, written?: () => void): void => {
    opts.debug?.(`-> ${text.length > 200 ? `${text.slice(0, 200)}... (${text.length} chars)` : text}`);
    output.write(`${text}\n`, written);
  };
  const sendObj = (obj: Reply): void => send(JSON.stringify(obj));
  const sendError = (id: number, kind: AgentErrorKind, message: string, extra: Reply = {}): void =>
    sendObj({ id, ok: false, error: { kind, message }, ...extra });

  const maybeDone = (): void => {
    if (ended && inFlight === 0) resolveDone();
  };

  // Errors from user code that escape a run: fail the run in progress, otherwise
  // note them for the next run's logs. Either way the agent keeps serving.
  const onUncaught = (err: unknown, what: string): void => {
    if (running) running.fail(err);
    else {
      const e = errorOf('application', err);
      capture?.note(`[faascell] ${what}: ${e.stack ?? e.message}`);
    }
  };
  process.on('uncaughtException', (err) => onUncaught(err, 'uncaught exception'));
  process.on('unhandledRejection', (reason) => onUncaught(reason, 'unhandled promise rejection'));

  async function doInit(id: number, req: Record<string, unknown>): Promise<void> {
    const { files, main, env } = req;
    const entryName = req.entry ?? 'main';
    if (!isStringRecord(files) || typeof main !== 'string' || typeof entryName !== 'string' || (env !== undefined && !isStringRecord(env))) {
      sendError(id, 'protocol', 'init needs files (path -> base64), main (string), entry (string), env (string map)');
      return;
    }
    if (initState !== 'none') {
      sendError(id, 'state', initState === 'failed' ? 'init already failed in this VM' : 'already initialised');
      return;
    }
    initState = 'loading';
    initId = id;
    const t0 = performance.now();
    capture?.begin();
    try {
      const dir = await mkdtemp(join(opts.workRoot, 'fn-'));
      for (const [rel, b64] of Object.entries(files)) {
        const safe = safeRelative(rel);
        if (!safe) throw new AgentError('init', `invalid file path in package: ${JSON.stringify(rel)}`);
        const dest = join(dir, safe);
        await mkdir(dirname(dest), { recursive: true });
        await writeFile(dest, Buffer.from(b64, 'base64'));
      }
      const mainRel = safeRelative(main);
      if (!mainRel) throw new AgentError('init', `invalid main path: ${JSON.stringify(main)}`);
      if (env) Object.assign(process.env, env);
      if (opts.chdir) process.chdir(dir);
      entry = await loadEntry(resolve(dir, mainRel), entryName, dir);
      initState = 'ready';
      initId = undefined;
      sendObj({ id, ok: true, logs: capture?.end() ?? [], durationMs: performance.now() - t0 });
    } catch (err) {
      initState = 'failed';
      initId = undefined;
      const e = errorOf('init', err);
      if (err instanceof LoadError) delete e.stack;
      sendObj({ id, ok: false, error: e, logs: capture?.end() ?? [], durationMs: performance.now() - t0 });
    }
  }

  async function doRun(id: number, req: Record<string, unknown>): Promise<void> {
    if (initState !== 'ready' || !entry) {
      sendError(id, 'state', initState === 'loading' ? 'init still in progress' : 'run before a successful init');
      return;
    }
    if (running) {
      sendError(id, 'state', 'another run is in progress');
      return;
    }
    // A restored clone's first run may carry its resync (one message instead of two): the
    // resync is applied before any user code runs; if it fails, the function does not run.
    let resyncSteps: Record<string, number> | undefined;
    if (req.resync !== undefined) {
      const received = performance.now();
      const fields = typeof req.resync === 'object' && req.resync !== null ? resyncFields(req.resync as Record<string, unknown>) : undefined;
      if (!fields) {
        sendError(id, 'protocol', "run.resync needs epochMs (number), seed (base64) and optionally kernel ('now' or 'deferred')");
        return;
      }
      try {
        resyncSteps = await applyResync(fields, received);
      } catch (err) {
        sendObj({ id, ok: false, error: errorOf('state', err), durationMs: performance.now() - received });
        return;
      }
      if (running) {
        sendError(id, 'state', 'another run is in progress');
        return;
      }
    }
    const fn = entry;
    capture?.begin();
    const t0 = performance.now();
    let fail!: (err: unknown) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    running = { fail };
    runId = id;
    let resultJson: string | undefined;
    let error: ReturnType<typeof errorOf> | undefined;
    try {
      // Promise.race: an exception thrown from a timer the function started also ends the run.
      const result: unknown = await Promise.race([Promise.resolve().then(() => fn(req.params ?? {})), failed]);
      if (result === undefined) resultJson = '{}';
      else if (typeof result !== 'object' || result === null) {
        // OpenWhisk requires a dictionary; a bare value is almost always a bug in the function.
        error = {
          kind: 'application',
          message: `the function must return an object (or a Promise of one), got ${result === null ? 'null' : typeof result}`,
        };
      } else {
        try {
          resultJson = JSON.stringify(result);
          if (resultJson === undefined) throw new Error('JSON.stringify returned undefined');
        } catch (err) {
          error = { kind: 'application', message: `the result is not JSON-serialisable: ${errorOf('application', err).message}` };
        }
      }
    } catch (err) {
      error = errorOf('application', err);
    } finally {
      running = undefined;
      runId = undefined;
    }
    const durationMs = performance.now() - t0;
    const logs = JSON.stringify(capture?.end() ?? []);
    // a deferred resync's kernel part runs once the reply has been written
    const written = pendingKernel ? runPendingKernel : undefined;
    const rs = resyncSteps ? `,"resync":${JSON.stringify(resyncSteps)}` : '';
    if (error) send(`{"id":${id},"ok":false,"error":${JSON.stringify(error)},"logs":${logs},"durationMs":${durationMs}${rs}}`, written);
    else send(`{"id":${id},"ok":true,"result":${resultJson},"logs":${logs},"durationMs":${durationMs}${rs}}`, written);
  }

  /** A resync's fields, from a `resync` request or a `run`'s `resync` member; undefined if malformed. */
  function resyncFields(req: Record<string, unknown>): { epochMs: number; seed: string; kernel?: 'now' | 'deferred' } | undefined {
    const { epochMs, seed, kernel } = req;
    if (typeof epochMs !== 'number' || !Number.isFinite(epochMs) || typeof seed !== 'string' || (kernel !== undefined && kernel !== 'now' && kernel !== 'deferred')) return undefined;
    return { epochMs, seed, ...(kernel !== undefined ? { kernel } : {}) };
  }

  async function doResync(id: number, req: Record<string, unknown>): Promise<void> {
    const received = performance.now();
    const fields = resyncFields(req);
    if (!fields) {
      sendError(id, 'protocol', "resync needs epochMs (number), seed (base64) and optionally kernel ('now' or 'deferred')");
      return;
    }
    try {
      const steps = await applyResync(fields, received);
      // result: when each step finished (ms after receipt), for diagnostics.
      sendObj({ id, ok: true, result: steps, durationMs: performance.now() - received });
    } catch (err) {
      sendObj({ id, ok: false, error: errorOf('state', err), durationMs: performance.now() - received });
    }
  }

  /**
   * Applies a resync: the agent's JS randomness at once, then the kernel clock and CRNG
   * either now or (kernel 'deferred') after the next run's reply, with Date corrected in
   * JavaScript meanwhile. Returns when each step finished, in ms after `received`.
   */
  async function applyResync(fields: { epochMs: number; seed: string; kernel?: 'now' | 'deferred' }, received: number, dry = false): Promise<Record<string, number>> {
    const { epochMs, seed, kernel } = fields;
    const since = (): number => performance.now() - received;
    const seedBytes = Buffer.from(seed, 'base64');
    // the kernel clock is set to the host's time plus what elapsed since receipt
    const kernelWork = async (steps: Record<string, number>): Promise<void> => {
      if (opts.setClockAndSeed) {
        await opts.setClockAndSeed(epochMs + since(), seedBytes, () => opts.jsClock?.reset(), dry);
        steps.clockMs = steps.kernelSeedMs = since();
        return;
      }
      if (dry) return;
      const clock = opts.setClock
        ? opts.setClock(epochMs + since(), () => opts.jsClock?.reset()).then(() => void (steps.clockMs = since()))
        : Promise.resolve();
      const seeded = opts.seedKernel ? opts.seedKernel(seedBytes).then(() => void (steps.kernelSeedMs = since())) : Promise.resolve();
      await Promise.all([clock, seeded]);
    };
    const steps: Record<string, number> = {};
    opts.reseed?.(seedBytes);
    steps.reseedMs = since();
    if (kernel === 'deferred' && (opts.setClock || opts.setClockAndSeed) && opts.jsClock) {
      // Date reads the kernel clock plus an offset until the kernel clock is set
      opts.jsClock.correctTo(epochMs + since());
      steps.clockMs = since();
      if (pendingKernel) clearTimeout(pendingKernel.timer);
      pendingKernel = { work: () => kernelWork({}), timer: setTimeout(runPendingKernel, 1000) };
    } else {
      await kernelWork(steps);
    }
    // pre-snapshot connections are dead: closed before any user code runs again (not on the warm-up)
    if (opts.restored && !dry) steps.connectionsClosed = opts.restored();
    return steps;
  }

  async function handleLine(line: string): Promise<void> {
    opts.debug?.(`<- ${line.length > 200 ? `${line.slice(0, 200)}... (${line.length} chars)` : line}`);
    if (line.trim() === '') return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      sendError(-1, 'protocol', 'invalid JSON line');
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      sendError(-1, 'protocol', 'a request must be a JSON object');
      return;
    }
    const req = msg as Record<string, unknown>;
    const id = typeof req.id === 'number' && Number.isFinite(req.id) ? req.id : -1;
    if (id === -1) {
      sendError(-1, 'protocol', 'a request needs a numeric id');
      return;
    }
    switch (req.op) {
      case 'ping':
        sendObj({ id, ok: true });
        return;
      case 'init':
        return doInit(id, req);
      case 'run':
        return doRun(id, req);
      case 'resync':
        return doResync(id, req);
      default:
        sendError(id, 'protocol', `unknown op ${JSON.stringify(req.op)}`);
    }
  }

  const dispatch = (line: string): void => {
    inFlight++;
    handleLine(line)
      .catch((err: unknown) => {
        // Only reachable through a bug in the agent itself; report rather than die.
        try {
          sendError(-1, 'protocol', `agent error: ${errorOf('protocol', err).message}`);
        } catch {
          /* output gone */
        }
      })
      .finally(() => {
        inFlight--;
        maybeDone();
      });
  };

  lineReader(input, dispatch, () => {
    ended = true;
    maybeDone();
  });

  return {
    async warmUp() {
      const seed = Buffer.alloc(32);
      for (let i = 0; i < 32; i++) seed[i] = Math.floor(Math.random() * 256);
      const fields = resyncFields({ epochMs: Date.now(), seed: seed.toString('base64'), kernel: 'now' });
      if (!fields) return;
      try {
        const steps = await applyResync(fields, performance.now(), true);
        JSON.stringify(steps);
        // the deferred variant's JS clock path too (an offset of ~0, then none)
        opts.jsClock?.correctTo(Date.now());
        opts.jsClock?.reset();
      } catch (err) {
        opts.debug?.(`resync warm-up failed: ${errorOf('state', err).message}`);
      }
    },
    sendReady() {
      const ready: AgentReady = {
        type: 'ready',
        agentVersion: AGENT_VERSION,
        node: process.version,
        uptimeMs: {
          init: opts.boot?.init ?? 0,
          ...(opts.boot?.exec !== undefined ? { exec: opts.boot.exec } : {}),
          agentStart: opts.boot?.agentStart ?? 0,
          ready: uptimeMs(),
        },
      };
      sendObj(ready as unknown as Reply);
    },
    handleLine,
    done,
    exitReply(code) {
      const logs = capture?.end() ?? [];
      if (initId !== undefined) {
        return JSON.stringify({ id: initId, ok: false, error: { kind: 'init', message: `the function exited the process during init (status ${code})`, exitCode: code }, logs });
      }
      if (runId !== undefined) {
        return JSON.stringify({ id: runId, ok: false, error: { kind: 'exit', message: `the function exited the process during the run (status ${code})`, exitCode: code }, logs });
      }
      return undefined;
    },
  };
}
