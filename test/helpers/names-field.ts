import assert from 'node:assert/strict';
import type { ConfigError } from '../../src/config/config.js';
import type { RecordError } from '../../src/registry/records.js';

/** Assert that `fn` throws `type` with a one-line message that starts with `field: `. */
export function assertNamesField(
  fn: () => unknown,
  type: typeof ConfigError | typeof RecordError,
  field: string,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    assert.ok(error.message.startsWith(`${field}: `), `"${error.message}" should name ${field}`);
    assert.doesNotMatch(error.message, /\n/, 'one line');
    return true;
  });
}
