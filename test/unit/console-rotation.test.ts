// Issue 19: a guest flooding its console costs the host a bounded file per VM (rotated, one
// previous file kept), and the tail that error messages quote still reads across the rotation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConsoleSink, previousConsole, readConsoleTail } from '../../src/runtimes/qemu/console.js';

void test('a flood of console output is rotated: at most two files of rotateBytes, the newest bytes kept, the rest counted', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-console-rot-'));
  try {
    const file = path.join(dir, 'console.log');
    const sink = new ConsoleSink(file, 64 * 1024);
    // 4.6 MB in pipe-sized chunks (what a guest wrote in 10 s in the issue), then a last line
    for (let i = 0; i < 72; i++) sink.write(Buffer.alloc(64 * 1024, 0x61 + (i % 26)));
    sink.write(Buffer.from('the last line\n'));
    sink.close();
    const sizes = [file, previousConsole(file)].map((f) => fs.statSync(f).size);
    assert.ok(sizes.every((n) => n <= 64 * 1024), `sizes ${sizes.join(', ')}`);
    assert.ok(sink.rotations > 60);
    assert.equal(sink.written, 72 * 64 * 1024 + 14);
    assert.equal(sink.droppedBytes, sink.written - sizes[0]! - sizes[1]!);
    // the tail reads across the rotation
    const tail = readConsoleTail(file, 1000).toString('latin1');
    assert.ok(tail.endsWith('the last line\n'));
    assert.equal(tail.length, 1000);
    // one chunk larger than a file keeps its end only
    const big = new ConsoleSink(path.join(dir, 'big.log'), 4096);
    big.write(Buffer.concat([Buffer.alloc(10_000, 0x78), Buffer.from('END')]));
    big.close();
    const kept = fs.readFileSync(path.join(dir, 'big.log'), 'latin1');
    assert.equal(kept.length, 4096);
    assert.ok(kept.endsWith('END'));
    // the files are the daemon's (the daemon's umask aside, the sink asks for 0600)
    assert.equal(fs.statSync(file).mode & 0o077, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
