// A VM's serial console on the host (issue 19): what the guest writes to /dev/console (or its
// kernel prints) reaches the daemon through a pipe, not a file QEMU appends to without bound.
// The daemon keeps it in the run directory, rotated: console.log holds at most `rotateBytes`,
// console.log.1 the file before it, so a guest that floods its console costs the host at most
// twice that much disk per VM while it lives; every older byte is counted, not kept. The tail of
// the two files is what error messages quote and what is kept after the VM stops.

import fs from 'node:fs';

/** The rotated predecessor of a console file. */
export function previousConsole(file: string): string {
  return `${file}.1`;
}

export class ConsoleSink {
  private fd: number | undefined;
  private size = 0;
  /** bytes the guest wrote, all of them */
  written = 0;
  rotations = 0;

  constructor(
    readonly file: string,
    readonly rotateBytes: number,
  ) {
    if (!Number.isInteger(rotateBytes) || rotateBytes < 1) throw new RangeError(`console rotateBytes must be a positive integer, got ${rotateBytes}`);
  }

  /** Bytes that rotated out of both files (written and no longer kept). */
  get droppedBytes(): number {
    return Math.max(0, this.written - this.keptBytes());
  }

  write(chunk: Buffer): void {
    this.written += chunk.length;
    let data = chunk;
    // a chunk larger than a whole file: only its end can be kept
    if (data.length > this.rotateBytes) data = data.subarray(data.length - this.rotateBytes);
    if (this.fd === undefined) this.open();
    if (this.size + data.length > this.rotateBytes) this.rotate();
    fs.writeSync(this.fd!, data);
    this.size += data.length;
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): void {
    // each launch starts a fresh file, as QEMU's own `-serial file:` did
    this.fd = fs.openSync(this.file, 'w', 0o600);
    this.size = 0;
  }

  private rotate(): void {
    this.close();
    fs.renameSync(this.file, previousConsole(this.file));
    this.rotations++;
    this.open();
  }

  private keptBytes(): number {
    let n = 0;
    for (const f of [this.file, previousConsole(this.file)]) {
      try {
        n += fs.statSync(f).size;
      } catch {
        // not there (yet)
      }
    }
    return n;
  }
}

/** The last `n` bytes of a console: the current file, and before it the rotated one when needed. */
export function readConsoleTail(file: string, n: number): Buffer {
  const parts: Buffer[] = [];
  let want = n;
  for (const f of [file, previousConsole(file)]) {
    if (want <= 0) break;
    const b = readFileTail(f, want);
    parts.unshift(b);
    want -= b.length;
  }
  return Buffer.concat(parts);
}

function readFileTail(file: string, n: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, n);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}
