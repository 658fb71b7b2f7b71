import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArgs } from './args.js';

describe('test runner command line (docs/testing.md)', () => {
  it('runs two workers per core, every file, no extra node flags by default', () => {
    assert.deepEqual(parseArgs([], 2), {
      workers: 4,
      fileTimeoutMs: 300_000,
      filters: [],
      flags: [],
    });
    assert.equal((parseArgs([], 3) as { workers: number }).workers, 6);
  });

  it('takes names to filter on, --workers N, and passes --test-… flags to node --test', () => {
    assert.deepEqual(
      parseArgs(
        [
          'registry/',
          '--test-reporter=spec',
          'chain/compact',
          '--workers',
          '1',
          '--test-timeout=9',
        ],
        2,
      ),
      {
        workers: 1,
        fileTimeoutMs: 9,
        filters: ['registry/', 'chain/compact'],
        flags: ['--test-reporter=spec'],
      },
    );
  });

  it('says what is wrong with a bad --workers or an unknown option', () => {
    for (const bad of [
      ['--workers'],
      ['--workers', '0'],
      ['--workers', '65'],
      ['--workers', '2.5'],
    ])
      assert.equal(parseArgs(bad, 2), '--workers wants a whole number from 1 to 64');
    assert.equal(parseArgs(['--verbose'], 2), 'unknown option --verbose');
    assert.equal(
      parseArgs(['--test-timeout=soon'], 2),
      '--test-timeout wants a whole number of ms',
    );
  });
});
