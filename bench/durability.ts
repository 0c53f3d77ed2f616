// What durability costs and what a killed process can lose, for the daemon's
// SQLite database (WAL mode). No VMs.
//
//   npx tsx bench/durability.ts [--dir DIR] [--inserts 5000] [--kills 20]
//
// 1. Cost: the time of one activation-record insert (the PerfManager's
//    statement, one transaction each) with synchronous OFF, NORMAL and FULL,
//    median and p99 over --inserts, in a database under --dir (default: a
//    temporary directory on the file system of the state directory's default).
// 2. Loss on kill -9: a child process inserts records as fast as it can and
//    prints each id once its transaction committed; it is SIGKILLed at a
//    random moment; the database is reopened and every printed id looked up.
//    Repeated --kills times per synchronous level.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { openDb } from '../src/registry/db.js';

type Level = 'OFF' | 'NORMAL' | 'FULL';
const LEVELS: Level[] = ['OFF', 'NORMAL', 'FULL'];

const INSERT = 'INSERT OR REPLACE INTO activations (id, function, start_path, status, received_at, total_ms, record) VALUES (?, ?, ?, ?, ?, ?, ?)';
const record = (id: string) => JSON.stringify({ id, function: 'hello', status: 'success', startPath: 'warm', timestamps: { received: Date.now(), runStarted: Date.now(), runFinished: Date.now() }, totalMs: 12.5, logs: [], result: { greeting: 'Hello, bench!' } });

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function child(dir: string, level: Level): void {
  const db = openDb(dir, 'kill.db', { synchronous: level });
  const st = db.prepare(INSERT);
  for (let i = 0; ; i++) {
    const id = `k-${process.pid}-${i}`;
    st.run(id, 'hello', 'warm', 'success', Date.now(), 12.5, record(id));
    process.stdout.write(id + '\n'); // only after the commit returned
  }
}

async function killOnce(dir: string, level: Level): Promise<{ printed: number; lost: number }> {
  const p = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', level, '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ids: string[] = [];
  let buf = '';
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    ids.push(...lines);
  });
  while (ids.length < 200) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, Math.random() * 200));
  p.kill('SIGKILL');
  await new Promise((r) => p.once('exit', r));
  const db = new Database(path.join(dir, 'kill.db'));
  const has = db.prepare('SELECT 1 FROM activations WHERE id = ?');
  const lost = ids.filter((id) => !has.get(id)).length;
  if (db.pragma('integrity_check', { simple: true }) !== 'ok') throw new Error('integrity check failed');
  db.close();
  return { printed: ids.length, lost };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, inserts: { type: 'string', default: '5000' }, kills: { type: 'string', default: '20' }, child: { type: 'string' } } });
  if (values.child) return child(values.dir!, values.child as Level);
  const parent = path.join(os.homedir(), '.local', 'state');
  fs.mkdirSync(parent, { recursive: true });
  const base = values.dir ?? fs.mkdtempSync(path.join(parent, 'faascell-durability-'));
  fs.mkdirSync(base, { recursive: true });
  const n = Number(values.inserts);
  console.log(`# SQLite durability, ${os.cpus().length} CPUs ${os.cpus()[0]?.model ?? ''}, kernel ${os.release()}, dir ${base}`);
  console.log('| synchronous | insert median | p99 | inserts/s | kills | ids printed (committed) | lost |');
  console.log('|---|---|---|---|---|---|---|');
  for (const level of LEVELS) {
    const dir = path.join(base, level.toLowerCase());
    fs.rmSync(dir, { recursive: true, force: true });
    const db = openDb(dir, 'cost.db', { synchronous: level });
    const st = db.prepare(INSERT);
    const times: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const a = performance.now();
      st.run(`c-${i}`, 'hello', 'warm', 'success', Date.now(), 12.5, record(`c-${i}`));
      times.push((performance.now() - a) * 1000);
    }
    const total = performance.now() - t0;
    db.close();
    let printed = 0;
    let lost = 0;
    for (let k = 0; k < Number(values.kills); k++) {
      const r = await killOnce(dir, level);
      printed += r.printed;
      lost += r.lost;
    }
    console.log(`| ${level} | ${pct(times, 50).toFixed(0)} µs | ${pct(times, 99).toFixed(0)} µs | ${Math.round((n / total) * 1000)} | ${values.kills} | ${printed} | ${lost} |`);
  }
  if (!values.dir) fs.rmSync(base, { recursive: true, force: true });
}

await main();
