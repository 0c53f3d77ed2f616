// The shell commands the README and the docs show (issue 20 item 3): extracted from their
// ```sh / ```bash / ```shell blocks, one command per line (a trailing `\` continues a line,
// `# …` comments and a trailing `&` are dropped), split into words the way a POSIX shell
// splits these simple lines (quotes, backslashes; no expansion). test/unit/doc-commands.test.ts
// checks them all and runs the cheap ones, so an example cannot rot unnoticed.

export interface DocLine {
  file: string;
  /** 1-based line in the file where the command starts */
  line: number;
  text: string;
}

export interface ShellCommand {
  /** VAR=value assignments before the command */
  env: Record<string, string>;
  words: string[];
  /** how it follows the previous command of the line: '|' (its input is that one's output), '&&', ';' */
  after?: '|' | '&&' | '||' | ';';
}

const FENCE = /^\s*```\s*(\w*)\s*$/;
const SHELL_LANGS = new Set(['sh', 'bash', 'shell', 'console']);

/** The command lines of the shell blocks of one Markdown text. */
export function commandLines(file: string, markdown: string): DocLine[] {
  const out: DocLine[] = [];
  let inShell: boolean | undefined;
  let pending: DocLine | undefined;
  markdown.split('\n').forEach((raw, i) => {
    const fence = FENCE.exec(raw);
    if (fence) {
      inShell = inShell === undefined ? SHELL_LANGS.has(fence[1]!) : undefined;
      return;
    }
    if (!inShell) return;
    let text = stripComment(raw).trimEnd();
    if (text.startsWith('$ ')) text = text.slice(2);
    const continues = text.endsWith('\\');
    if (continues) text = text.slice(0, -1);
    if (pending) pending.text += ' ' + text.trim();
    else if (text.trim()) pending = { file, line: i + 1, text: text.trim() };
    if (!continues && pending) {
      pending.text = pending.text.replace(/\s*&$/, '').trim();
      if (pending.text) out.push(pending);
      pending = undefined;
    }
  });
  return out;
}

/** Drops a `#` comment that is outside quotes and starts a word. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '\\') i++;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/** The pipeline's commands (split on unquoted `|`, `&&`, `;`), each as words. */
export function shellCommands(text: string): ShellCommand[] {
  const cmds: ShellCommand[] = [];
  let words: string[] = [];
  let cur: string | undefined;
  let quote: string | undefined;
  let after: ShellCommand['after'];
  const endWord = (): void => {
    if (cur !== undefined) words.push(cur);
    cur = undefined;
  };
  const endCommand = (next?: ShellCommand['after']): void => {
    endWord();
    if (words.length) cmds.push({ ...toCommand(words), ...(after ? { after } : {}) });
    words = [];
    after = next;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else cur = (cur ?? '') + c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && /["\\$`]/.test(text[i + 1] ?? '')) cur = (cur ?? '') + (text[++i] ?? '');
      else cur = (cur ?? '') + c;
    } else if (c === "'" || c === '"') {
      quote = c;
      cur ??= '';
    } else if (c === '\\') {
      cur = (cur ?? '') + (text[++i] ?? '');
    } else if (/\s/.test(c)) endWord();
    else if (c === '|' || c === ';' || (c === '&' && text[i + 1] === '&')) {
      const op: ShellCommand['after'] = c === ';' ? ';' : c === '&' ? '&&' : text[i + 1] === '|' ? '||' : '|';
      if (op.length === 2) i++;
      endCommand(op);
    } else cur = (cur ?? '') + c;
  }
  if (quote) throw new Error(`unterminated ${quote} in: ${text}`);
  endCommand();
  return cmds;
}

function toCommand(words: string[]): ShellCommand {
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length; i++) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(words[i]!);
    if (!m) break;
    env[m[1]!] = m[2]!;
  }
  return { env, words: words.slice(i) };
}

/** The arguments after the command itself when it is the faascell command, else undefined. */
export function faascellArgs(c: ShellCommand): string[] | undefined {
  const w = c.words;
  if (w[0] === 'faascell') return w.slice(1);
  if (w[0] === 'npx' && w[1] === 'faascell') return w.slice(2);
  if (w[0] === 'node' && (w[1] === 'bin/faascell.js' || w[1] === './bin/faascell.js')) return w.slice(2);
  if (w[0] === 'npm' && w[1] === 'run' && w[2] === 'faascell') return w.slice(w[3] === '--' ? 4 : 3);
  return undefined;
}

/** A word that stands for something the reader fills in (NAME, ID, FILE, SPEC.csv, http://HOST:PORT …). */
export function isPlaceholder(word: string): boolean {
  return /(^|[^a-z])[A-Z][A-Z0-9_]{1,}([^a-zA-Z]|$)/.test(word.replace(/^--[a-z-]+=/, '')) && !/^[A-Z_]+=/.test(word);
}
