// The config key a rejected input is blamed for (ConfigError.key), undefined when it is accepted.
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/schema.js';

export function configErrorKey(input: unknown): string | undefined {
  try {
    parseConfig(input);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.key;
  }
  return undefined;
}
