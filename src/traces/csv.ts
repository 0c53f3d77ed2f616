import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/** Lines of a (possibly huge) text file, streamed. */
export async function* readLines(file: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
  }
}

/** One record of a CSV file (csvRecords): its fields, its text and its 1-based line number. */
export interface CsvRecord {
  fields: string[];
  line: string;
  lineNo: number;
}

/**
 * The records of a CSV file, streamed: blank lines and '#' lines are skipped (a hand-edited file may have them).
 * `bad` turns a record that does not parse into the reader's own error (default: parseCsvLine's, unchanged).
 */
export async function* csvRecords(file: string, bad: (err: Error, lineNo: number) => Error = (err) => err): AsyncGenerator<CsvRecord> {
  let lineNo = 0;
  for await (const line of readLines(file)) {
    lineNo++;
    if (line.trim() === '' || line.startsWith('#')) continue;
    let fields: string[];
    try {
      fields = parseCsvLine(line);
    } catch (err) {
      throw bad(err as Error, lineNo);
    }
    yield { fields, line, lineNo };
  }
}

/** An error in a trace file, with where it is (file:line) before its message. */
export class TraceFileError extends Error {
  constructor(
    message: string,
    readonly where: string,
  ) {
    super(`${where}: ${message}`);
    this.name = 'TraceFileError';
  }
}

/** Split one CSV record (RFC 4180 quoting: "a ""b""" → a "b"). Records spanning lines are not supported. */
export function parseCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  while (i <= n) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error(`unterminated quoted CSV field: ${line.slice(0, 80)}`);
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(v);
      if (i < n && line[i] !== ',') throw new Error(`garbage after quoted CSV field: ${line.slice(0, 80)}`);
      i++;
    } else {
      const c = line.indexOf(',', i);
      const end = c < 0 ? n : c;
      out.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return out;
}

export function csvField(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}
