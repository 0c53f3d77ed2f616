// Every shell command the README and docs/*.md show (issue 20 item 3): each `faascell`
// command names a command that exists with options it has, no line hides a second command
// behind a pipe into something a user would not run (`ls | rm NAME` would run the system's rm),
// every script, file and npm script named exists, and the cheap ones — help, config, the
// simulator on the repository's fixtures, dry runs — run as written and succeed. No VM, no
// daemon: the commands that need one are checked, not run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/core/project-root.js';
import { runNode } from '../support/process.js';
import { commandLines, faascellArgs, isPlaceholder, shellCommands, type DocLine } from '../support/doc-commands.js';

const ROOT = projectRoot();
const DOCS = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const lines: DocLine[] = DOCS.flatMap((f) => commandLines(f, readFileSync(path.join(ROOT, f), 'utf8')));
const where = (l: DocLine): string => `${l.file}:${l.line}: ${l.text}`;

/** Commands a documented pipeline may feed or be fed by (nothing destructive). */
const PIPE_OK = new Set(['node', 'jq', 'head', 'tail', 'grep', 'sort', 'wc', 'less', 'tee', 'cat', 'curl', 'npx', 'faascell']);

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return runNode([path.join(ROOT, 'bin', 'faascell.js'), ...args], { cwd: ROOT, env: { ...process.env, FAASCELL_URL: '', ...env }, timeoutMs: 90_000 }).then((r) => ({ code: r.code, out: r.stdout, err: r.stderr }));
}

/** Commands and options, read from the help the command itself prints. */
async function helpOf(cmd: string[]): Promise<{ commands: string[]; options: string[] }> {
  const r = await run([...cmd, '--help']);
  assert.equal(r.code, 0, `faascell ${cmd.join(' ')} --help: ${r.err}`);
  const section = (name: string): string[] => {
    const m = new RegExp(`^${name}:\\n((?:  .*\\n?|\\s*\\n)*)`, 'm').exec(r.out);
    return m ? m[1]!.split('\n') : [];
  };
  const commands = section('Commands').map((l) => /^ {2}([a-z][\w-]*)/.exec(l)?.[1]).filter((x): x is string => !!x && x !== 'help');
  const options = section('Options').flatMap((l) => [...l.matchAll(/(?:^|[ ,])(--?[a-zA-Z][\w-]*)/g)].map((m) => m[1]!));
  return { commands, options };
}

test('the docs show shell commands to check (README and docs/*.md)', () => {
  assert.ok(lines.length > 30, `${lines.length} command lines found`);
  assert.ok(lines.some((l) => l.file === 'README.md'));
});

test('one command per line: a pipe only feeds or reads harmless tools', () => {
  const bad = lines.filter((l) => {
    const cmds = shellCommands(l.text);
    return cmds.some((c, i) => (c.after === '|' || cmds[i + 1]?.after === '|') && !PIPE_OK.has(c.words[0] ?? ''));
  });
  assert.deepEqual(bad.map(where), []);
});

test('every script, file and npm script a documented command names exists', () => {
  const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const problems: string[] = [];
  for (const l of lines) {
    for (const c of shellCommands(l.text)) {
      const w = c.words;
      if (w[0] === 'npm' && w[1] === 'run' && w[2] && !scripts[w[2]]) problems.push(`${where(l)} (no npm script ${w[2]})`);
      if (w[0] === 'npm' && (w[1] === 'test' || w[1] === 'start') && !scripts[w[1]]) problems.push(`${where(l)} (no npm script ${w[1]})`);
      const file = w[0] === 'bash' || w[0] === 'node' ? w[1] : w[0] === 'npx' && w[1] === 'tsx' ? w[2] : undefined;
      if (file && /^(\.\/)?(scripts|bench|examples|bin|src)\//.test(file) && !existsSync(path.join(ROOT, file))) problems.push(`${where(l)} (no file ${file})`);
    }
  }
  assert.deepEqual(problems, []);
});

test('every documented faascell command exists with the options it is shown with; the cheap ones run as written', async () => {
  const top = await helpOf([]);
  const globals = new Set(['--url', '--token', '--help', '-h', '--version', '-V']);
  const helps = new Map<string, { commands: string[]; options: string[] }>();
  const help = async (cmd: string[]): Promise<{ commands: string[]; options: string[] }> => {
    const k = cmd.join(' ');
    if (!helps.has(k)) helps.set(k, await helpOf(cmd));
    return helps.get(k)!;
  };
  const problems: string[] = [];
  const ran: string[] = [];
  for (const l of lines) {
    for (const c of shellCommands(l.text)) {
      const args = faascellArgs(c);
      if (!args) continue;
      // global options first (--url URL, --token T), then the command (and its subcommand)
      let i = 0;
      while (args[i]?.startsWith('--') && globals.has(args[i]!)) i += args[i] === '--url' || args[i] === '--token' ? 2 : 1;
      const name = args[i];
      if (name === undefined || name.startsWith('-')) continue; // `faascell --help`, `--version`
      if (!top.commands.includes(name)) {
        problems.push(`${where(l)} (no command ${name})`);
        continue;
      }
      let cmd = [name];
      const sub = await help(cmd);
      if (sub.commands.length > 0 && args[i + 1] && !args[i + 1]!.startsWith('-')) {
        if (!sub.commands.includes(args[i + 1]!)) {
          problems.push(`${where(l)} (no command ${name} ${args[i + 1]})`);
          continue;
        }
        cmd = [name, args[i + 1]!];
      }
      const known = new Set([...(await help(cmd)).options, ...globals]);
      for (const a of args.slice(i + cmd.length)) {
        const opt = a.split('=')[0]!;
        if (opt.startsWith('--') && !known.has(opt)) problems.push(`${where(l)} (faascell ${cmd.join(' ')} has no option ${opt})`);
      }
      // run the cheap ones: help, configuration, the simulator and dry runs on files of this repository
      const rest = args.slice(i);
      const cheap =
        rest.includes('--help') ||
        (cmd.join(' ') === 'config print') ||
        (name === 'simulate' && !rest.includes('--real')) ||
        (name === 'deploy-spec' && rest.includes('--dry-run'));
      // …with files that are in this repository (a downloaded dataset is checked, not run)
      const files = rest.filter((a, k) => ['--trace', '--config', '--profile'].includes(rest[k - 1] ?? ''));
      if (!cheap || args.some(isPlaceholder) || Object.keys(c.env).length > 0 || !files.every((f) => existsSync(path.join(ROOT, f)))) continue;
      const r = await run(args);
      if (r.code !== 0) problems.push(`${where(l)} (exit ${r.code}: ${r.err.trim().split('\n').slice(-3).join(' / ')})`);
      else ran.push(where(l));
    }
  }
  assert.deepEqual(problems, []);
  // the README's own tour is among what ran
  assert.ok(ran.some((x) => x.startsWith('README.md') && / simulate /.test(x)), `ran:\n${ran.join('\n')}`);
  assert.ok(ran.some((x) => x.startsWith('README.md') && / config print/.test(x)), `ran:\n${ran.join('\n')}`);
});
