// Does a function's single .js file parse? Checked by `faascell deploy` before it uploads
// (issue 20 item 2), with the guest agent's own rule (guest/agent/loader.ts): .cjs and .js
// are CommonJS, a .js whose syntax is ESM and any .mjs an ES module. CommonJS is compiled
// in process (vm.compileFunction: the module wrapper's parameters, nothing runs); an ES
// module by `node --check` in a child (Node 20 has no in-process ESM parse without a flag).

import { spawn } from 'node:child_process';
import vm from 'node:vm';

export type SyntaxCheck = { ok: true } | { ok: false; location: string; message: string };

const ESM_HINT = /Cannot use import statement outside a module|Unexpected token 'export'|await is only valid in async functions and the top level bodies of modules/;

export async function checkSyntax(file: string, source: string): Promise<SyntaxCheck> {
  const body = source.startsWith('#!') ? `//${source}` : source;
  if (file.endsWith('.mjs')) return checkEsm(file, body);
  try {
    vm.compileFunction(body, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file });
    return { ok: true };
  } catch (err) {
    if (!(err instanceof SyntaxError)) return { ok: true };
    if (!file.endsWith('.cjs') && ESM_HINT.test(err.message)) return checkEsm(file, body);
    return { ok: false, location: locationOf(err.stack, file), message: `SyntaxError: ${err.message}` };
  }
}

/** V8 starts a syntax error's report with "NAME:LINE" (the file name, or [stdin]). */
function locationOf(report: string | undefined, file: string): string {
  const m = /:(\d+)$/.exec(report?.split('\n')[0] ?? '');
  return m ? `${file}:${m[1]}` : file;
}

function checkEsm(file: string, source: string): Promise<SyntaxCheck> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '--check'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', () => resolve({ ok: true })); // cannot check: the guest will say
    child.on('close', (code) => {
      if (code === 0) return resolve({ ok: true });
      const message = /^(SyntaxError: .*)$/m.exec(err)?.[1] ?? err.trim().split('\n').pop() ?? 'does not parse';
      resolve({ ok: false, location: locationOf(err, file), message });
    });
    child.stdin.end(source);
  });
}
