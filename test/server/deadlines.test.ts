/**
 * One timer for the deadlines of every Check in flight (src/pipeline/deadlines.ts): each due entry
 * fires once, in deadline order whatever the order it was added in, and a removed entry never does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadlines } from '../../src/pipeline/deadlines.js';

describe('Deadlines', () => {
  it('fires every due entry once, earliest first, and never one that was removed', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    deadlines.add(60, () => fired.push('60'));
    deadlines.add(20, () => fired.push('20'));
    const removed = deadlines.add(40, () => fired.push('40'));
    deadlines.add(40, () => fired.push('40 kept'));
    deadlines.remove(removed);
    assert.equal(deadlines.size, 3);
    // Poll rather than trust one sleep: a loaded machine may run the timer late, never early.
    for (let waited = 0; fired.length < 3 && waited < 5000; waited += 20) await sleep(20);
    assert.deepEqual(fired, ['20', '40 kept', '60']);
    assert.equal(deadlines.size, 0);
    await sleep(100);
    assert.deepEqual(fired, ['20', '40 kept', '60'], 'nothing fires twice');
  });

  it('fires entries found due together in deadline order, whatever the order they were added in', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    deadlines.add(30, () => fired.push('30'));
    deadlines.add(10, () => fired.push('10'));
    deadlines.add(20, () => fired.push('20'));
    // Hold the event loop past every deadline: the one sweep that follows finds all three due.
    const until = performance.now() + 50;
    while (performance.now() < until) {}
    for (let waited = 0; fired.length < 3 && waited < 5000; waited += 20) await sleep(20);
    assert.deepEqual(fired, ['10', '20', '30']);
  });

  it('re-arms for an earlier deadline added after a later one', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    deadlines.add(10_000, () => fired.push('late'));
    deadlines.add(10, () => fired.push('early'));
    for (let waited = 0; fired.length < 1 && waited < 5000; waited += 20) await sleep(20);
    assert.deepEqual(fired, ['early']);
    assert.equal(deadlines.size, 1);
  });
});
