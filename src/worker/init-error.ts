// What a failed init tells its user (issue 20 item 2): the error's class and the place in
// the function's own code (file:line[:column], relative to the function's directory), read
// from the stack the guest agent sends. The guest unpacks a function into <workRoot>/fn-XXXX/;
// V8 starts a SyntaxError's stack with "FILE:LINE", any other error has "(FILE:LINE:COL)" frames.

export interface InitErrorDetail {
  /** SyntaxError, ReferenceError, … (absent when the stack does not say) */
  name?: string;
  /** e.g. main.js:3 or lib/util.js:12:7 */
  location?: string;
}

const FN_FILE = /\/fn-[^/\s]+\/([^\s:()]+):(\d+)(?::(\d+))?/;
const ERROR_LINE = /^((?:[A-Z][A-Za-z]*)?Error)(?::|$)/m;

export function initErrorDetail(stack: string | undefined): InitErrorDetail {
  if (!stack) return {};
  const out: InitErrorDetail = {};
  const name = ERROR_LINE.exec(stack)?.[1];
  if (name) out.name = name;
  const m = FN_FILE.exec(stack);
  if (m) out.location = `${m[1]}:${m[2]}${m[3] ? `:${m[3]}` : ''}`;
  return out;
}

/** "SyntaxError: Unexpected end of input (main.js:3)" from the agent's message and stack. */
export function describeInitError(message: string, stack: string | undefined): { text: string; location?: string } {
  const d = initErrorDetail(stack);
  const named = d.name && !message.startsWith(d.name) ? `${d.name}: ${message}` : message;
  return { text: d.location ? `${named} (${d.location})` : named, ...(d.location ? { location: d.location } : {}) };
}
