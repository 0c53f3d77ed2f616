// One protocol suite, run against both guest agents as host processes (channel on
// fd 3): the Node agent's bundle and the Python agent (python3 on the host). The
// same requests, the same expected replies; only the functions' source differs.
// What only one agent has (Node's module shapes and crypto mixing) is in
// agent.test.ts; the Python agent with numpy in a real VM is test/e2e/python.test.ts.

import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { type AgentProc, agentProcs, type Reply, b64, PROJECT_ROOT, PYTHON_AGENT, runReq as run, startAgentProcess, stopAgent } from '../helpers/agent-process.js';

let tmp: string;
let bundle: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-protocol-'));
  bundle = path.join(tmp, 'agent.mjs');
  await build({ entryPoints: [path.join(PROJECT_ROOT, 'guest/agent/agent.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: bundle, logLevel: 'silent' });
});

after(() => {
  for (const p of agentProcs) p.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The functions each suite case deploys, in each language. */
interface Sources {
  /** main(p) returns {got: p} */
  echo: string;
  /** prints 'loading' at load; main prints to stdout/stderr (partial lines, bytes, unicode) and greets p.name */
  logs: string;
  expectedLogs: string[];
  syntaxError: string;
  throwsAtLoad: string;
  noEntry: string;
  missingImport: string;
  /** main(p) by p.mode: throw ('bad input'), none, number, array, circular, big (p.size chars) */
  results: string;
  /** main(p) answers {slow: p.n} after 1 s */
  slow: string;
  /** with p.leak (a file name): a line printed 20 ms after the run returned, then the file p.leak created */
  lateLog: string;
  /** exits the process (status 3) in main */
  exitsInRun: string;
  /** exits the process (status 4) while loading */
  exitsInInit: string;
  /** main returns {r: [two draws of the language's global generator]} */
  random: string;
  /** counts its runs in a global: {ran: n} */
  counter: string;
  /** main(p) connects to 127.0.0.1:p.port and keeps the connection; main({read: true}) reports what a read on it gives */
  keepsConnection: string;
}

interface AgentKind {
  runtime: 'nodejs20' | 'python3';
  main: string;
  start(): AgentProc;
  src: Sources;
  /** the version field of ready */
  version: (ready: Record<string, unknown>) => unknown;
  /** replies to a request the function's exit cut short (the Node agent installs that hook only in a guest) */
  repliesOnExit: boolean;
}

const node: AgentKind = {
  runtime: 'nodejs20',
  main: 'index.js',
  start: () => startAgentProcess([process.execPath, bundle], tmp),
  version: (r) => r.node,
  repliesOnExit: false,
  src: {
    echo: 'exports.main = (p) => ({ got: p })',
    logs: `console.log('loading');
      exports.main = (p) => {
        console.log('log', p.name); console.error('error');
        process.stdout.write('part1 '); process.stdout.write('part2\\nnext');
        process.stderr.write(Buffer.from('bytes ✓\\n'));
        return { greeting: 'héllo ' + p.name, emoji: '🎉' };
      };`,
    expectedLogs: ['log wörld 🌍', 'error', 'part1 part2', 'bytes ✓', 'next'],
    syntaxError: 'exports.main = (p) => {',
    throwsAtLoad: 'throw new Error("boom at load")',
    noEntry: 'exports.other = () => ({})',
    missingImport: 'require("not-installed-anywhere"); exports.main = () => ({})',
    results: `exports.main = (p) => {
        switch (p.mode) {
          case 'throw': throw new TypeError('bad input');
          case 'none': return undefined;
          case 'number': return 42;
          case 'array': return [1, 2];
          case 'circular': { const o = {}; o.self = o; return o; }
          case 'big': return { data: 'x'.repeat(p.size) };
          default: return { ok: true };
        }
      };`,
    slow: 'exports.main = (p) => new Promise((r) => setTimeout(() => r({ slow: p.n }), 1000))',
    lateLog: `exports.main = (p) => { if (p.leak) setTimeout(() => { console.log('late log'); require('fs').writeFileSync(p.leak, ''); }, 20); return { ok: 1 }; }`,
    exitsInRun: 'exports.main = () => { process.exit(3) }',
    exitsInInit: 'process.exit(4)',
    random: 'exports.main = () => ({ r: [Math.random(), Math.random()] })',
    counter: 'exports.main = () => { globalThis.__ran = (globalThis.__ran || 0) + 1; return { ran: globalThis.__ran }; }',
    keepsConnection: `const net = require('net'); let s; let got = 'nothing';
      exports.main = async (p) => {
        if (p.port) { s = net.connect(p.port, '127.0.0.1'); s.on('error', (e) => (got = 'error ' + e.code)); s.on('end', () => (got = 'end')); await new Promise((r) => s.once('connect', r)); return { connected: true }; }
        await new Promise((r) => setTimeout(r, 50));
        return { read: got };
      };`,
  },
};

const python: AgentKind = {
  runtime: 'python3',
  main: '__main__.py',
  start: () => startAgentProcess(['python3', PYTHON_AGENT], tmp),
  version: (r) => r.python,
  repliesOnExit: true,
  src: {
    echo: 'def main(p):\n    return {"got": p}\n',
    logs: [
      'import sys',
      'print("loading")',
      'def main(p):',
      '    print("log", p["name"]); print("error", file=sys.stderr)',
      '    sys.stdout.write("part1 "); sys.stdout.write("part2\\nnext")',
      '    sys.stderr.buffer.write("bytes ✓\\n".encode())',
      '    return {"greeting": "héllo " + p["name"], "emoji": "🎉"}',
    ].join('\n'),
    expectedLogs: ['log wörld 🌍', 'error', 'part1 part2', 'bytes ✓', 'next'],
    syntaxError: 'def main(p):\n    return {\n',
    throwsAtLoad: 'raise RuntimeError("boom at load")\n',
    noEntry: 'def other(p):\n    return {}\n',
    missingImport: 'import not_installed_anywhere\ndef main(p):\n    return {}\n',
    results: [
      'def main(p):',
      '    m = p.get("mode")',
      '    if m == "throw": raise TypeError("bad input")',
      '    if m == "none": return None',
      '    if m == "number": return 42',
      '    if m == "array": return [1, 2]',
      '    if m == "circular":',
      '        o = {}; o["self"] = o; return o',
      '    if m == "big": return {"data": "x" * p["size"]}',
      '    return {"ok": True}',
    ].join('\n'),
    slow: 'import time\ndef main(p):\n    time.sleep(1)\n    return {"slow": p["n"]}\n',
    lateLog: 'import threading\ndef late(marker):\n    print("late log")\n    open(marker, "w").close()\ndef main(p):\n    if p.get("leak"):\n        threading.Timer(0.02, late, [p["leak"]]).start()\n    return {"ok": 1}\n',
    exitsInRun: 'import sys\ndef main(p):\n    sys.exit(3)\n',
    exitsInInit: 'import sys\nsys.exit(4)\n',
    random: 'import random\ndef main(p):\n    return {"r": [random.random(), random.random()]}\n',
    counter: 'ran = 0\ndef main(p):\n    global ran\n    ran += 1\n    return {"ran": ran}\n',
    keepsConnection: [
      'import socket',
      's = None',
      'def main(p):',
      '    global s',
      '    if p.get("port"):',
      '        s = socket.create_connection(("127.0.0.1", p["port"]))',
      '        return {"connected": True}',
      '    s.settimeout(5)',
      '    try:',
      '        data = s.recv(10)',
      '        return {"read": "end" if data == b"" else "data"}',
      '    except OSError as e:',
      '        return {"read": "error " + type(e).__name__}',
    ].join('\n'),
  },
};

const pick = (r: Reply | undefined): { kind?: string; exitCode?: number } => ({ kind: r?.error?.kind, exitCode: r?.error?.exitCode });

const init = (k: AgentKind, code: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ op: 'init', files: { [k.main]: b64(code) }, main: k.main, entry: 'main', env: {}, ...extra });

for (const k of [node, python]) {
  void describe(`agent protocol: ${k.runtime}`, () => {
    void test('ready, ping, protocol errors, state errors', async () => {
      const a = k.start();
      try {
        const ready = await a.ready;
        assert.equal(ready.type, 'ready');
        assert.equal(typeof k.version(ready as unknown as Record<string, unknown>), 'string');
        assert.equal(ready.uptimeMs.init, 1500);
        assert.ok(ready.uptimeMs.agentStart > 0 && ready.uptimeMs.ready >= ready.uptimeMs.agentStart);
        assert.deepEqual(await a.request({ op: 'ping' }), { id: 1, ok: true });
        assert.equal((await a.request({ op: 'fly' })).error?.kind, 'protocol');
        a.raw('this is not json');
        const bad = await a.waitUnmatched();
        assert.equal(bad.id, -1);
        assert.equal(bad.error?.kind, 'protocol');
        a.raw('[1,2,3]');
        assert.equal((await a.waitUnmatched()).error?.kind, 'protocol');
        a.raw('{"op":"ping"}');
        assert.equal((await a.waitUnmatched()).error?.kind, 'protocol');
        a.raw('   '); // blank lines (tty noise) are ignored
        assert.equal((await a.request({ op: 'init', files: 'nope', main: 1 })).error?.kind, 'protocol');
        assert.equal((await a.request(run())).error?.kind, 'state');
        const ok = await a.request(init(k, k.src.echo));
        assert.equal(ok.ok, true, JSON.stringify(ok));
        assert.equal(typeof ok.durationMs, 'number');
        assert.equal((await a.request(init(k, k.src.echo))).error?.kind, 'state');
        assert.deepEqual((await a.request(run({ x: 1 }))).result, { got: { x: 1 } });
        // no params: an empty object
        assert.deepEqual((await a.request({ op: 'run', activationId: 'a2', deadlineMs: 1000 })).result, { got: {} });
      } finally {
        await stopAgent(a);
      }
    });

    void test('logs: stdout and stderr, partial lines, bytes, unicode; none leak into the next run', async () => {
      const a = k.start();
      try {
        const i = await a.request(init(k, k.src.logs));
        assert.deepEqual(i.logs, ['loading']);
        const r = await a.request(run({ name: 'wörld 🌍' }));
        assert.equal(r.ok, true, JSON.stringify(r));
        assert.deepEqual(r.result, { greeting: 'héllo wörld 🌍', emoji: '🎉' });
        assert.deepEqual(r.logs, k.src.expectedLogs);
        assert.ok(typeof r.durationMs === 'number' && r.durationMs >= 0);
        assert.equal((await a.request(run({ name: 'x' }))).logs?.length, k.src.expectedLogs.length);
      } finally {
        await stopAgent(a);
      }
    });

    void test('init failures are kind "init" and leave the VM unusable', async (t) => {
      const cases: [string, Record<string, unknown>, RegExp][] = [
        ['syntax error', init(k, k.src.syntaxError), /Unexpected|SyntaxError|end of input|never closed/],
        ['throws while loading', init(k, k.src.throwsAtLoad), /boom at load/],
        ['no entry', init(k, k.src.noEntry), /no function "main"/],
        ['missing main file', { op: 'init', files: { [`a${path.extname(k.main)}`]: b64('') }, main: `b${path.extname(k.main)}`, entry: 'main', env: {} }, /ENOENT|Cannot find|No such file/],
        ['path escape', { op: 'init', files: { '../evil': b64('') }, main: k.main, entry: 'main', env: {} }, /invalid file path/],
        ['missing import', init(k, k.src.missingImport), /Cannot find module|No module named/],
      ];
      for (const [name, req, re] of cases) {
        await t.test(name, async () => {
          const a = k.start();
          try {
            const r = await a.request(req);
            assert.equal(r.ok, false);
            assert.equal(r.error?.kind, 'init', JSON.stringify(r));
            assert.match(r.error?.message ?? '', re);
            assert.equal((await a.request(run())).error?.kind, 'state');
            assert.equal((await a.request(init(k, k.src.echo))).error?.kind, 'state');
          } finally {
            await stopAgent(a);
          }
        });
      }
    });

    void test('run results and application errors', async () => {
      const a = k.start();
      try {
        assert.equal((await a.request(init(k, k.src.results))).ok, true);
        const t1 = await a.request(run({ mode: 'throw' }));
        assert.equal(t1.error?.kind, 'application');
        assert.match(t1.error?.message ?? '', /bad input/);
        assert.match(t1.error?.stack ?? '', /TypeError: bad input/);
        assert.deepEqual((await a.request(run({ mode: 'none' }))).result, {});
        assert.match((await a.request(run({ mode: 'number' }))).error?.message ?? '', /must return an? (object|dict).*(number|int)/);
        assert.deepEqual((await a.request(run({ mode: 'array' }))).result, [1, 2]);
        assert.match((await a.request(run({ mode: 'circular' }))).error?.message ?? '', /not JSON-serialisable/);
        const size = 1024 * 1024;
        const big = await a.request(run({ mode: 'big', size }), 30_000);
        assert.equal((big.result as { data: string }).data.length, size);
        assert.deepEqual((await a.request(run({}))).result, { ok: true });
      } finally {
        await stopAgent(a);
      }
    });

    void test('large init payload and 1 MiB params', async () => {
      const a = k.start();
      try {
        const files = { [k.main]: b64(k.src.echo), 'blob.bin': b64(Buffer.alloc(3 * 1024 * 1024, 7)) };
        assert.equal((await a.request({ op: 'init', files, main: k.main, entry: 'main', env: {} }, 30_000)).ok, true);
        const r = await a.request(run({ s: 'é'.repeat(512 * 1024) }), 30_000);
        assert.equal((r.result as { got: { s: string } }).got.s.length, 512 * 1024);
      } finally {
        await stopAgent(a);
      }
    });

    void test('a run while another runs is a state error; the first still answers', async () => {
      const a = k.start();
      try {
        await a.request(init(k, k.src.slow));
        // both written at once: the second reaches the agent while the first (1 s) runs, however slow the machine
        const first = a.request(run({ n: 1 }));
        assert.equal((await a.request(run({ n: 2 }))).error?.kind, 'state');
        assert.deepEqual((await first).result, { slow: 1 });
      } finally {
        await stopAgent(a);
      }
    });

    void test('output after a run returned shows up in the next run', async () => {
      const a = k.start();
      try {
        await a.request(init(k, k.src.lateLog));
        // the late output is followed by a marker file: the next run is sent after that, not after a guess
        const marker = path.join(tmp, `late-${k.runtime}`);
        fs.rmSync(marker, { force: true });
        assert.deepEqual((await a.request(run({ leak: marker }))).logs, []);
        for (let i = 0; i < 3000 && !fs.existsSync(marker); i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(fs.existsSync(marker), 'the late output was written');
        fs.rmSync(marker, { force: true });
        const next = await a.request(run({}));
        assert.equal(next.ok, true);
        assert.equal(next.logs?.[0], 'late log');
      } finally {
        await stopAgent(a);
      }
    });

    void test('exit during a run: the reply says so with the status, then the process ends with it', async () => {
      const a = k.start();
      await a.request(init(k, k.src.exitsInRun));
      const r = a.request(run(), 5000).catch(() => undefined);
      assert.equal(await a.exited, 3);
      if (k.repliesOnExit) assert.deepEqual(pick(await r), { kind: 'exit', exitCode: 3 });
    });

    void test('exit during init: an init failure with the exit code', async () => {
      const a = k.start();
      const r = a.request(init(k, k.src.exitsInInit), 5000).catch(() => undefined);
      assert.equal(await a.exited, 4);
      if (k.repliesOnExit) assert.deepEqual(pick(await r), { kind: 'init', exitCode: 4 });
    });

    void test('resync reseeds the global generator: the same seed draws the same numbers, another seed others', async () => {
      const draws: number[][] = [];
      for (const fill of [1, 1, 2]) {
        const a = k.start();
        try {
          await a.request(init(k, k.src.random));
          const rs = await a.request({ op: 'resync', epochMs: Date.now(), seed: b64(Buffer.alloc(32, fill)) });
          assert.equal(rs.ok, true, JSON.stringify(rs));
          assert.equal((rs.result as Record<string, number>).connectionsClosed, 0);
          draws.push((await a.request(run())).result as number[]);
        } finally {
          await stopAgent(a);
        }
      }
      assert.deepEqual(draws[0], draws[1]);
      assert.notDeepEqual(draws[0], draws[2]);
      const bad = await (async () => {
        const a = k.start();
        try {
          return await a.request({ op: 'resync', epochMs: Date.now(), seed: b64('x'), kernel: 'later' });
        } finally {
          await stopAgent(a);
        }
      })();
      assert.equal(bad.error?.kind, 'protocol');
      assert.match(bad.error?.message ?? '', /kernel/);
    });

    void test('a run carrying a resync applies it before user code; a malformed one runs nothing', async () => {
      const a = k.start();
      try {
        await a.request(init(k, k.src.counter));
        const first = await a.request({ ...run(), resync: { epochMs: Date.now(), seed: b64(Buffer.alloc(32, 3)) } });
        assert.deepEqual(first.result, { ran: 1 });
        assert.equal(typeof first.resync?.reseedMs, 'number', JSON.stringify(first));
        const bad = await a.request({ ...run(), resync: { epochMs: 'soon', seed: 'x' } });
        assert.equal(bad.error?.kind, 'protocol');
        assert.match(bad.error?.message ?? '', /run\.resync needs epochMs/);
        assert.deepEqual((await a.request(run())).result, { ran: 2 });
      } finally {
        await stopAgent(a);
      }
    });

    void test('a resync closes the network connections opened before it (a read then ends)', async () => {
      const peers: net.Socket[] = [];
      const server = net.createServer((s) => peers.push(s.on('error', () => undefined)));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const a = k.start();
      try {
        await a.request(init(k, k.src.keepsConnection));
        const port = (server.address() as net.AddressInfo).port;
        assert.deepEqual((await a.request(run({ port }))).result, { connected: true });
        const rs = await a.request({ op: 'resync', epochMs: Date.now(), seed: b64(Buffer.alloc(32, 5)) });
        assert.equal((rs.result as Record<string, number>).connectionsClosed, 1);
        const after = (await a.request(run({ read: true }))).result as { read: string };
        assert.match(after.read, /^(end|error .*)$/);
      } finally {
        await stopAgent(a);
        for (const p of peers) p.destroy();
        await new Promise((r) => server.close(r));
      }
    });
  });
}

void test('python agent: numpy and torch, when the function imported them, are reseeded too; on_restore callbacks run', async () => {
  // stand-ins registered in sys.modules record the seeds (the real libraries: test/e2e/python.test.ts, in a VM)
  const code = [
    'import sys, types, faascell',
    'seen = []',
    'np = types.ModuleType("numpy"); np.random = types.SimpleNamespace(seed=lambda s: seen.append(("numpy", list(s))))',
    'torch = types.ModuleType("torch"); torch.manual_seed = lambda s: seen.append(("torch", s))',
    'sys.modules["numpy"] = np; sys.modules["torch"] = torch',
    'restores = []',
    'faascell.on_restore(lambda info: restores.append(info))',
    '@faascell.on_restore',
    'def broken(info):',
    '    raise ValueError("callback failed")',
    'def main(p):',
    '    return {"seen": seen, "restores": restores}',
  ].join('\n');
  const a = python.start();
  try {
    assert.equal((await a.request(init(python, code))).ok, true);
    assert.equal((await a.request({ op: 'resync', epochMs: Date.now(), seed: b64(Buffer.alloc(32, 9)) })).ok, true);
    const r = await a.request(run());
    const res = r.result as { seen: [string, unknown][]; restores: unknown[] };
    assert.deepEqual(res.seen.map(([k]) => k), ['numpy', 'torch']);
    assert.equal((res.seen[0]![1] as number[]).length, 8);
    assert.ok(Number.isSafeInteger(res.seen[1]![1]) || typeof res.seen[1]![1] === 'number');
    assert.deepEqual(res.restores, [{ connectionsClosed: 0 }]);
    assert.match(r.logs?.join('\n') ?? '', /on_restore callback broken raised ValueError: callback failed/);
  } finally {
    await stopAgent(a);
  }
});

void test('python agent: a zip-style package (__main__.py importing its sibling modules and a package), env, cwd, --main', async () => {
  const a = python.start();
  try {
    const files = {
      '__main__.py': b64('import os, helper\nfrom pkg.sub import twice\nif __name__ == "__main__":\n    raise SystemExit("must not run")\ndef handler(p):\n    return {"h": helper.NAME, "t": twice(p["n"]), "env": os.environ["GREETING"], "data": open("data/x.txt").read()}\n'),
      'helper.py': b64('NAME = "helper"\n'),
      'pkg/__init__.py': b64(''),
      'pkg/sub.py': b64('def twice(n):\n    return 2 * n\n'),
      'data/x.txt': b64('42'),
    };
    const i = await a.request({ op: 'init', files, main: '__main__.py', entry: 'handler', env: { GREETING: 'hi' } });
    assert.equal(i.ok, true, JSON.stringify(i));
    assert.deepEqual((await a.request(run({ n: 21 }))).result, { h: 'helper', t: 42, env: 'hi', data: '42' });
  } finally {
    await stopAgent(a);
  }
});

void test('python agent: async def main is awaited; NaN and numpy-like values are not JSON (an application error, not a broken line)', async () => {
  const a = python.start();
  try {
    const code = 'import asyncio\nasync def main(p):\n    await asyncio.sleep(0.01)\n    if p.get("nan"):\n        return {"x": float("nan")}\n    if p.get("obj"):\n        return {"x": object()}\n    return {"async": True}\n';
    assert.equal((await a.request(init(python, code))).ok, true);
    assert.deepEqual((await a.request(run())).result, { async: true });
    assert.match((await a.request(run({ nan: true }))).error?.message ?? '', /not JSON-serialisable/);
    assert.match((await a.request(run({ obj: true }))).error?.message ?? '', /not JSON-serialisable/);
    // the traceback of an exception is in the run's logs too
    assert.equal((await a.request(run({}))).ok, true);
  } finally {
    await stopAgent(a);
  }
});

void test('python agent: the traceback of an exception is in the logs of its run', async () => {
  const a = python.start();
  try {
    await a.request(init(python, 'def fail():\n    raise KeyError("missing")\ndef main(p):\n    print("before")\n    fail()\n'));
    const r = await a.request(run());
    assert.equal(r.error?.kind, 'application');
    assert.equal(r.error?.message, "KeyError: 'missing'");
    assert.equal(r.logs?.[0], 'before');
    assert.equal(r.logs?.[1], 'Traceback (most recent call last):');
    assert.ok(r.logs?.some((l) => /in fail/.test(l)));
    assert.equal(r.logs?.at(-1), "KeyError: 'missing'");
    assert.ok(!r.logs?.some((l) => l.includes('faascell_agent')), 'no frame of the agent itself');
  } finally {
    await stopAgent(a);
  }
});
