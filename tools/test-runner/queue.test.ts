import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { claimer, writeQueue } from './queue.js';

describe('test runner queue', () => {
  it('gives each file to one worker once, each worker going on after its own last claim', () => {
    const dir = mkdtempSync(join(tmpdir(), 'runner-queue-'));
    try {
      const files = Array.from({ length: 6 }, (_, i) => ({ path: `f${i}`, name: `f${i}` }));
      writeQueue(dir, files);
      const a = claimer(dir, files);
      const b = claimer(dir, files);
      assert.equal(a()?.name, 'f0');
      assert.equal(b()?.name, 'f1');
      assert.equal(a()?.name, 'f2');
      // A claim is never given back: a worker does not look again at files before its last one.
      rmSync(join(dir, 'claims', '0'), { recursive: true });
      assert.equal(a()?.name, 'f3');
      assert.deepEqual([b()?.name, b()?.name, b(), a()], ['f4', 'f5', undefined, undefined]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
