// Guest agent entry point: started by /init as the only user process, serves
// the host over the virtio console. Bundled into guest/agent/dist/agent.mjs.
//
// Environment (set by /init):
//   FAASCELL_INIT_UPTIME   /proc/uptime seconds when /init started
//   FAASCELL_EXEC_UPTIME   /proc/uptime seconds when /init started Node
//   FAASCELL_AGENT_CHANNEL device path of the channel (a virtio-serial port, /dev/vportNpM; a tty on Firecracker) or fd:N (tests)
//   FAASCELL_WORK_DIR      where function code is written (default /tmp, a tmpfs)
//   FAASCELL_GUEST=1       really in a guest: resync may set the clock and feed /dev/urandom
//                          (never on a host: tests run this file too)
//   FAASCELL_HELPER_FDS    "W,R": fds of the faascell-helper's stdin/stdout (precise clock, CRNG reseed), if built
//   FAASCELL_BUSYBOX       busybox binary, the fallback for setting the clock (default /bin/busybox)
//   FAASCELL_AGENT_DEBUG=1 trace every message on stderr (the serial console); kernel arg faascell.debug=1

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createReadStream, createWriteStream, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { isatty, ReadStream, WriteStream } from 'node:tty';
import type { Readable, Writable } from 'node:stream';
import { installCapture } from './capture.js';
import { installConnectionTracker, RESTORED_EVENT } from './connections.js';
import { createAgent } from './core.js';
import { installJsClock } from './clock.js';
import { installRandomness } from './random.js';

const startPerf = performance.now();

function uptimeMs(): number {
  try {
    const s = readFileSync('/proc/uptime', 'utf8');
    const up = Number.parseFloat(s);
    if (Number.isFinite(up)) {
      // /proc/uptime has 10 ms resolution; keep sub-10ms precision relative to a fixed reading.
      return up * 1000;
    }
  } catch {
    /* not Linux */
  }
  return performance.now();
}

/** The channel's streams, and the fd replies can be written to synchronously (the exit hook). */
function openChannel(spec: string): { input: Readable; output: Writable; fd: number | undefined } {
  if (spec.startsWith('fd:')) {
    const fd = Number(spec.slice(3));
    const sock = new Socket({ fd, readable: true, writable: true });
    return { input: sock, output: sock, fd };
  }
  // A virtio-serial port (the QEMU channel) is not a tty and can be opened only
  // once: one read-write fd serves both streams (the reader owns closing it).
  // Reads and writes block in libuv's thread pool; the port is flow-controlled.
  const probe = openSync(spec, 'r+');
  if (!isatty(probe)) {
    return { input: createReadStream('', { fd: probe }), output: createWriteStream('', { fd: probe, autoClose: false }), fd: probe };
  }
  // A serial tty (Firecracker's ttyS0): two opens = two file descriptions.
  // tty.WriteStream makes its fd blocking (Node does that for terminals), which
  // must not affect the reader's fd, or the event loop blocks in read() once
  // the input is drained.
  const input = new ReadStream(probe);
  // Raw mode here as well as in /init: a tty's termios may be reset on the last close.
  input.setRawMode(true);
  const out = openSync(spec, 'w');
  return { input, output: new WriteStream(out), fd: out };
}

/**
 * A long-lived busybox shell answering one line per command. Spawning from
 * Node costs up to hundreds of ms under TCG (fork of a large process), so it
 * is spawned once, right after `ready` (before any snapshot), and restored
 * clones just write to it.
 */
function busyboxShell(busybox: string): (command: string) => Promise<void> {
  let child: ChildProcessWithoutNullStreams | undefined;
  const waiting: ((answer: string) => void)[] = [];
  const start = (): ChildProcessWithoutNullStreams => {
    const p = spawn(busybox, ['sh'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        waiting.shift()?.(line);
      }
    });
    p.stderr.resume();
    p.stdin.on('error', () => undefined);
    p.on('error', () => undefined);
    p.on('exit', () => {
      child = undefined;
      for (const w of waiting.splice(0)) w('shell exited');
    });
    return p;
  };
  setImmediate(() => (child ??= start()));
  return (command) =>
    new Promise((resolve, reject) => {
      child ??= start();
      waiting.push((answer) => (answer === 'ok' ? resolve() : reject(new Error(`busybox sh: ${answer}`))));
      child.stdin.write(`${command}\n`);
    });
}

interface GuestOps {
  /** Sets the kernel clock; onSet runs synchronously once it took effect. */
  setClock: (epochMs: number, onSet?: () => void) => Promise<void>;
  seedKernel: (seed: Buffer) => Promise<void>;
  /** Both in one helper round trip (clock first; onSet as for setClock). dry: the same call, nothing changed. */
  setClockAndSeed?: (epochMs: number, seed: Buffer, onSet?: () => void, dry?: boolean) => Promise<void>;
}

/** A `faascell.NAME=value` kernel argument (the last one wins), read once at start. */
function kernelArg(name: string): string | undefined {
  try {
    const args = readFileSync('/proc/cmdline', 'utf8').trim().split(/\s+/);
    const hit = args.filter((a) => a.startsWith(`faascell.${name}=`)).at(-1);
    return hit?.slice(`faascell.${name}=`.length);
  } catch {
    return undefined;
  }
}

function guestOps(): GuestOps {
  const fds = /^(\d+),(\d+)$/.exec(process.env.FAASCELL_HELPER_FDS ?? '');
  if (fds) {
    // faascell-helper, started by /init on two FIFOs: clock_settime with ns
    // precision (compensating the pipe delay through CLOCK_MONOTONIC, which
    // process.hrtime reads) and a forced kernel CRNG reseed. Synchronous I/O on
    // purpose: a command takes ~1 ms warm, nothing else runs during a resync, and
    // it touches less code than streams (every code path is cold for TCG in a
    // freshly restored clone).
    const [w, r] = [Number(fds[1]), Number(fds[2])];
    const call = (command: string): void => {
      writeSync(w, `${command}\n`);
      const buf = Buffer.alloc(256);
      let answer = '';
      while (!answer.includes('\n')) {
        const n = readSync(r, buf, 0, buf.length, null);
        if (n === 0) throw new Error('faascell-helper is gone');
        answer += buf.toString('utf8', 0, n);
      }
      answer = answer.trim();
      if (answer !== 'ok') throw new Error(`faascell-helper: ${answer}`);
    };
    const ops: GuestOps = {
      setClock: async (epochMs, onSet) => {
        call(`T ${Math.round(epochMs)} ${process.hrtime.bigint()}`);
        onSet?.();
      },
      seedKernel: async (seed) => call(`S ${seed.toString('hex')}`),
    };
    // One round trip for both (issue 9); faascell.resync=separate keeps the two calls (benchmark baseline).
    if (kernelArg('resync') !== 'separate') {
      ops.setClockAndSeed = async (epochMs, seed, onSet, dry) => {
        call(`${dry ? 'D' : 'R'} ${Math.round(epochMs)} ${process.hrtime.bigint()} ${seed.toString('hex')}`);
        onSet?.();
      };
    }
    return ops;
  }
  // Fallback: a busybox shell, spawned once after `ready` (before any snapshot).
  // `date -s @SECONDS` takes whole seconds, so the error is up to 0.5 s; the
  // seed is only mixed into the pool (no reseed).
  const sh = busyboxShell(process.env.FAASCELL_BUSYBOX ?? '/bin/busybox');
  return {
    setClock: async (epochMs, onSet) => {
      await sh(`date -s @${Math.round(epochMs / 1000)} >/dev/null 2>&1 && echo ok || echo fail`);
      onSet?.();
    },
    seedKernel: (seed) => writeFile('/dev/urandom', seed),
  };
}

const inGuest = process.env.FAASCELL_GUEST === '1';
// the agent, once created: the exit hook (installed first) asks it for the reply of an interrupted request
const running: { agent?: ReturnType<typeof createAgent> } = {};
if (inGuest) {
  // The channel's blocking reads sit in libuv's thread pool, and Node's exit
  // joins those threads: after process.exit() (user code, or a crash) the
  // process would never end and the VM would hang until the host's deadline.
  // End at once instead; /init then powers the VM off and the host sees it.
  process.on('exit', (code) => {
    // the host learns the status of an init or run the exit cut short
    const line = running.agent?.exitReply(code);
    if (line !== undefined && channelFd !== undefined) {
      try {
        writeSync(channelFd, `${line}\n`);
      } catch {
        /* channel gone */
      }
    }
    // /init will report 137 (killed): say the real status on the console first
    writeSync(2, `faascell-agent: exiting with status ${code}\n`);
    process.kill(process.pid, 'SIGKILL');
  });
}
const initUptime = Number.parseFloat(process.env.FAASCELL_INIT_UPTIME ?? '');
const execUptime = Number.parseFloat(process.env.FAASCELL_EXEC_UPTIME ?? '');
const nowUptime = uptimeMs();
const agentStart = nowUptime - (performance.now() - startPerf);
const uptimeBase = nowUptime - performance.now();

const capture = installCapture();
const ops = inGuest ? guestOps() : undefined;
const jsClock = inGuest ? installJsClock() : undefined;
const random = installRandomness();
// before any user code: connections opened at init are tracked too
const connections = installConnectionTracker();
const { input, output, fd: channelFd } = openChannel(process.env.FAASCELL_AGENT_CHANNEL ?? '/dev/hvc0');

const agent = createAgent({
  input,
  output,
  workRoot: process.env.FAASCELL_WORK_DIR ?? tmpdir(),
  capture,
  chdir: true,
  ...(process.env.FAASCELL_AGENT_DEBUG === '1' ? { debug: (line: string) => writeSync(2, `agent: ${line}\n`) } : {}),
  uptimeMs: () => uptimeBase + performance.now(),
  boot: { init: Number.isFinite(initUptime) ? initUptime * 1000 : 0, ...(Number.isFinite(execUptime) ? { exec: execUptime * 1000 } : {}), agentStart },
  reseed: (seed) => random.reseed(seed),
  ...(ops ? { setClock: ops.setClock, seedKernel: ops.seedKernel } : {}),
  ...(ops?.setClockAndSeed ? { setClockAndSeed: ops.setClockAndSeed } : {}),
  ...(jsClock ? { jsClock } : {}),
  restored: () => {
    const connectionsClosed = connections.closeAll();
    // a custom process event (for user code): the typed overloads only know Node's own
    EventEmitter.prototype.emit.call(process, RESTORED_EVENT, { connectionsClosed });
    return connectionsClosed;
  },
});

running.agent = agent;
agent.sendReady();
// Run the restore resync's code once now (changing nothing): V8 compiles it before any snapshot,
// so a restored clone does not run V8's compiler for it. faascell.warmup=0 skips it (benchmarks).
if (inGuest && kernelArg('warmup') !== '0') setImmediate(() => void agent.warmUp());
// The host closing the channel ends the agent; /init then powers the VM off.
void agent.done.then(() => process.exit(0));
