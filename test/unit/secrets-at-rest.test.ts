// Issue 19, "secrets at rest and in answers": the state directory and the database files are the
// daemon user's alone, a deleted function's env leaves every file, and no public field derives from
// env values (version keys hash a random id that changes with the env).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { OwEntities } from '../../src/sources/openwhisk/entities.js';
import { versionKey } from '../../src/vmpool/pool.js';

const limits = { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900000, maxInstances: 64 }, maxCodeBytes: 1 << 20 };
const code = Buffer.from('exports.main = () => ({ ok: true })');

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'faascell-secrets-'));
}
const mode = (p: string): number => fs.statSync(p).mode & 0o777;

void test('an existing 0755 state dir is tightened to 0700; the database, WAL and SHM are 0600 whatever the umask', () => {
  const dir = tmpDir();
  const state = path.join(dir, 'state');
  fs.mkdirSync(state, { mode: 0o755 });
  fs.chmodSync(state, 0o755);
  const old = process.umask(0o022);
  try {
    const db = openDb(state);
    new Registry(db, limits).put('f', { code, env: { TOKEN: 'x' } });
    assert.equal(mode(state), 0o700);
    for (const f of ['faascell.db', 'faascell.db-wal', 'faascell.db-shm']) {
      assert.ok(fs.existsSync(path.join(state, f)), f);
      assert.equal(mode(path.join(state, f)), 0o600, `${f} is ${mode(path.join(state, f)).toString(8)}`);
    }
    db.close();
    // files an older version left readable are tightened at the next open
    fs.chmodSync(path.join(state, 'faascell.db'), 0o644);
    const again = openDb(state);
    assert.equal(mode(path.join(state, 'faascell.db')), 0o600);
    again.close();
  } finally {
    process.umask(old);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

void test("a deleted function's env value is in no file of the state dir (secure_delete, WAL emptied)", () => {
  const dir = tmpDir();
  const marker = `env-value-${Date.now()}-must-vanish`;
  const other = `other-env-${Date.now()}-stays`;
  try {
    const db = openDb(dir);
    const r = new Registry(db, limits);
    r.put('gone', { code, env: { SECRET: marker } });
    r.put('kept', { code, env: { SECRET: other } });
    // an env value replaced by an update leaves the files as well
    r.put('kept', { code, env: { SECRET: other } });
    const grep = (needle: string): string[] =>
      fs.readdirSync(dir).filter((f) => fs.readFileSync(path.join(dir, f)).includes(Buffer.from(needle)));
    assert.ok(grep(marker).length > 0, 'the value is stored while the function exists');
    assert.equal(r.delete('gone'), true);
    assert.deepEqual(grep(marker), [], 'deleted env value still readable in the files');
    assert.ok(grep(other).length > 0, "the other function's env is still there");
    const changed = `changed-${Date.now()}`;
    r.put('kept', { code, env: { SECRET: changed } });
    assert.deepEqual(grep(other), [], 'a replaced env value is still readable in the files');
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

void test('version keys do not derive from env values: random per env, stable while the env stays, carried by replicas', () => {
  const dirs = [tmpDir(), tmpDir()];
  try {
    const [a, b] = dirs.map((d) => new Registry(openDb(d), limits));
    const env = { PASSWORD: 'hunter2' };
    const da = a!.put('f', { code, env }).def;
    const db = b!.put('f', { code, env }).def;
    // the same code, shape and env on two nodes that share nothing: no offline guess can match a key
    assert.notEqual(versionKey(da), versionKey(db));
    // a redeploy with the same env keeps the key (its snapshots stay valid)
    const again = a!.put('f', { code, env: { PASSWORD: 'hunter2' } }).def;
    assert.equal(again.envId, da.envId);
    assert.equal(versionKey(again), versionKey(da));
    // another env value: a new key
    const changed = a!.put('f', { code, env: { PASSWORD: 'hunter3' } }).def;
    assert.notEqual(versionKey(changed), versionKey(da));
    // a cluster node storing another's definition computes the same key (the id travels with it)
    const replica = b!.putReplica(changed, code);
    assert.equal(replica.envId, changed.envId);
    assert.equal(versionKey(replica), versionKey(changed));
  } finally {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
});

void test("a deleted or updated OpenWhisk package's parameters (its credentials) are in no file of the state dir", () => {
  const dir = tmpDir();
  const secret = `pkg-password-${Date.now()}-must-vanish`;
  try {
    const db = openDb(dir);
    const entities = new OwEntities(db);
    const grep = (needle: string): string[] =>
      fs.readdirSync(dir).filter((f) => fs.readFileSync(path.join(dir, f)).includes(Buffer.from(needle)));
    // a package binding is how OpenWhisk hands credentials to the actions in it
    entities.put('package', 'db', { parameters: { password: secret }, annotations: {}, publish: false });
    assert.ok(grep(secret).length > 0, 'stored while the package exists');
    entities.put('package', 'db', { parameters: { password: 'rotated' }, annotations: {}, publish: false });
    assert.deepEqual(grep(secret), [], 'a replaced parameter value is still readable in the files');
    entities.put('trigger', 't', { parameters: { apiKey: secret }, annotations: {}, publish: false });
    assert.equal(entities.delete('trigger', 't'), true);
    assert.deepEqual(grep(secret), [], "a deleted trigger's parameter value is still readable in the files");
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
