// node:test reporter that writes the run's outcome as structured records, one JSON object a line, for
// test/runner/ to count: every test's and suite's pass / fail (with node's failureType, so a cancelled
// test, a failed hook or a timeout is told apart from a plain failure), its skip or todo reason, and each
// file's duration. The human output is a second reporter (spec) on the same run.
//
// Plain JavaScript on purpose: Node 20 loads reporters without the module hooks `--import tsx` installs.
// node:test's own TAP/spec output would have to be parsed back; these events are what they are made from.

/** @param {AsyncIterable<{ type: string, data: any }>} source */
export default async function* structuredRecords(source) {
  for await (const { type, data } of source) {
    if (type !== 'test:pass' && type !== 'test:fail' && type !== 'test:complete') continue;
    const error = data.details?.error;
    yield `${JSON.stringify({
      event: type.slice('test:'.length),
      file: data.file,
      name: data.name,
      nesting: data.nesting,
      line: data.line,
      suite: data.details?.type === 'suite',
      durationMs: data.details?.duration_ms,
      // when the record reached this (parent) process: a file's record comes when its process exits, so the
      // gap after its last test's record is time the file held the suite doing nothing (a pending timer)
      at: Date.now(),
      // test:complete carries the outcome as a flag (it arrives in completion order, not report order)
      passed: type === 'test:complete' ? data.details?.passed : undefined,
      skip: data.skip,
      todo: data.todo,
      failureType: error?.failureType,
      error: error === undefined ? undefined : String(error.cause?.message ?? error.cause ?? error.message).slice(0, 500),
    })}\n`;
  }
}
