// Types of scripts/test-reporter.mjs (a plain-JavaScript node:test reporter), for the unit test that drives it.
export default function structuredRecords(source: AsyncIterable<{ type: string; data: unknown }>): AsyncGenerator<string>;
