// FunctionBench-style "chameleon": compiles a page template into a function (as
// the Chameleon engine compiles page templates into Python code) and renders an
// nrow × ncol HTML table with it, escaping every value.
// Payload: {nrow: 10, ncol: 10}; no network, no packages.
'use strict';

const BIGTABLE = `<table xmlns="http://www.w3.org/1999/xhtml">
{% for row in table %}<tr>
{% for c in row %}<td><span class="column-\${c + 1}">\${c + 1}</span></td>{% end %}
</tr>
{% end %}</table>`;

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
function escapeHtml(v) {
  const s = String(v);
  return /[&<>"']/.test(s) ? s.replace(/[&<>"']/g, (ch) => ESCAPES[ch]) : s;
}

/**
 * A tiny template language: `${expr}` inserts an escaped JavaScript expression,
 * `{% for x in expr %}…{% end %}` repeats. Compiled once into a JavaScript function
 * of the named variables.
 */
function compile(template, variables) {
  const re = /\{%\s*(?:for\s+([A-Za-z_$][\w$]*)\s+in\s+(.+?)|(end))\s*%\}|\$\{(.+?)\}/g;
  const code = ['const out = [];'];
  let depth = 0;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (m.index > last) code.push(`out.push(${JSON.stringify(template.slice(last, m.index))});`);
    last = re.lastIndex;
    if (m[1]) {
      code.push(`for (const ${m[1]} of (${m[2]})) {`);
      depth++;
    } else if (m[3]) {
      if (--depth < 0) throw new Error('template: {% end %} without {% for %}');
      code.push('}');
    } else code.push(`out.push(esc(${m[4]}));`);
  }
  if (depth !== 0) throw new Error('template: unclosed {% for %}');
  if (last < template.length) code.push(`out.push(${JSON.stringify(template.slice(last))});`);
  code.push("return out.join('');");
  // compiling templates into code is the benchmark
  return new Function('esc', ...variables, code.join('\n'));
}

function intParam(params, name, dflt, min, max) {
  const v = params[name] ?? dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name}: an integer from ${min} to ${max} is required (got ${JSON.stringify(v)})`);
  return v;
}

function main(params) {
  const nrow = intParam(params, 'nrow', 10, 0, 10_000);
  const ncol = intParam(params, 'ncol', 10, 0, 10_000);
  const t0 = performance.now();
  const render = compile(BIGTABLE, ['table']);
  const row = Array.from({ length: ncol }, (_, i) => i);
  const table = Array.from({ length: nrow }, () => row);
  const html = render(escapeHtml, table);
  return { nrow, ncol, html_length: html.length, html_head: html.slice(0, 120), latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 };
}

exports.main = main;
exports.compile = compile;
