import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { orderFiles } from './queue.js';
import { type RunOptions, runTests } from './run-tests.js';

/**
 * The runner on fixture test files that log which worker (pid) ran them, in what order, and can
 * wait until another worker has run a file too, so concurrency is shown by mechanism, not timing.
 */
describe('test runner', () => {
  let dir: string;
  let log: string;
  const fixture = (name: string, body: string): void =>
    writeFileSync(
      join(dir, name),
      `import { test } from 'node:test';
import { appendFileSync, readFileSync } from 'node:fs';
const log = ${JSON.stringify(join(dir, 'ran.log'))};
appendFileSync(log, ${JSON.stringify(name)} + ' ' + process.pid + '\\n');
const pids = () => new Set(readFileSync(log, 'utf8').trim().split('\\n').map((l) => l.split(' ')[1]));
${body}
`,
    );
  const ran = (): { name: string; pid: string }[] =>
    readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((line) => {
        const [name = '', pid = ''] = line.split(' ');
        return { name, pid };
      });
  const run = async (options: Partial<RunOptions>): Promise<{ code: number; out: string[] }> => {
    writeFileSync(log, '');
    const out: string[] = [];
    const code = await runTests({
      dirs: [dir],
      filters: [],
      workers: 3,
      fileTimeoutMs: 60_000,
      timesFile: join(dir, 'cache', 'times.json'),
      nodeTestFlags: [],
      report: 'ignore',
      out: (line) => out.push(line),
      ...options,
    });
    return { code, out };
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'runner-test-'));
    log = join(dir, 'ran.log');
    // Waits (up to 20 s) until a second worker has logged a file: passes only if two run at once.
    fixture(
      'a.test.js',
      `test('a', async () => {
  for (let i = 0; i < 400 && pids().size < 2; i++) await new Promise((r) => setTimeout(r, 50));
  if (pids().size < 2) throw new Error('no other worker ran beside this one');
});`,
    );
    for (const name of ['b', 'c', 'd', 'e'])
      fixture(`${name}.test.js`, `test('${name}', () => {});`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every file exactly once, files side by side in separate workers, exit 0', async () => {
    const { code, out } = await run({});
    assert.equal(code, 0, out.join('\n'));
    const names = ran().map((r) => r.name);
    assert.deepEqual([...names].sort(), [
      'a.test.js',
      'b.test.js',
      'c.test.js',
      'd.test.js',
      'e.test.js',
    ]);
    assert.ok(new Set(ran().map((r) => r.pid)).size >= 2);
  });

  it('keeps each file’s time and starts the longest first on the next run', async () => {
    await run({});
    const times = JSON.parse(readFileSync(join(dir, 'cache', 'times.json'), 'utf8')) as Record<
      string,
      number
    >;
    const names = ['a', 'b', 'c', 'd', 'e'].map((n) =>
      relative(process.cwd(), join(dir, `${n}.test.js`)),
    );
    for (const name of names) assert.equal(typeof times[name], 'number', name);
    writeFileSync(
      join(dir, 'cache', 'times.json'),
      JSON.stringify({
        [names[1] ?? '']: 10,
        [names[2] ?? '']: 30,
        [names[3] ?? '']: 20,
        [names[4] ?? '']: 5,
      }),
    );
    // One worker: the order it runs in is the queue's. a has no time: it goes first.
    await run({ workers: 1, filters: ['b.test', 'c.test', 'd.test', 'e.test'] });
    assert.deepEqual(
      ran().map((r) => r.name),
      ['c.test.js', 'd.test.js', 'b.test.js', 'e.test.js'],
    );
    assert.deepEqual(
      orderFiles(
        names.map((name) => ({ path: name, name })),
        { [names[1] ?? '']: 10, [names[2] ?? '']: 30 },
      ).map((f) => f.name.slice(-9)),
      ['a.test.js', 'd.test.js', 'e.test.js', 'c.test.js', 'b.test.js'],
    );
  });

  it('fails the run for a failing test, a file that throws while loading, and one that ends its worker', async () => {
    fixture('f.test.js', `test('f', () => { throw new Error('f fails'); });`);
    fixture('g.test.js', `throw new Error('g cannot load');`);
    fixture('h.test.js', `test('h', () => { process.exit(0); });`);
    try {
      for (const name of ['f.test', 'g.test']) {
        const { code } = await run({ filters: [name, 'b.test'] });
        assert.equal(code, 1, name);
        assert.deepEqual(
          ran()
            .map((r) => r.name)
            .sort(),
          ['b.test.js', `${name}.js`],
        );
      }
      const { code, out } = await run({ workers: 1, filters: ['h.test', 'c.test'] });
      assert.equal(code, 1);
      assert.ok(
        out.some((line) => /h\.test\.js did not run to its end/.test(line)),
        out.join('\n'),
      );
    } finally {
      for (const name of ['f', 'g', 'h']) rmSync(join(dir, `${name}.test.js`));
    }
  });

  it('counts a file as run only once its own after hooks are done: a worker ending in them names that file', async () => {
    fixture(
      'i.test.js',
      `import { after } from 'node:test';
test('i', () => {});
after(async () => { await new Promise((r) => setTimeout(r, 50)); process.exit(0); });`,
    );
    try {
      const { code, out } = await run({ workers: 1, filters: ['i.test', 'b.test'] });
      assert.equal(code, 1);
      assert.ok(
        out.some((line) => /i\.test\.js did not run to its end/.test(line)),
        out.join('\n'),
      );
    } finally {
      rmSync(join(dir, 'i.test.js'));
    }
  });

  it('bounds each file, not each worker, by --test-timeout, as node --test bounds a file', async () => {
    const slow = (ms: number) =>
      `for (const n of [1, 2, 3]) test('slow' + n, () => new Promise((r) => setTimeout(r, ${ms})));`;
    fixture('j.test.js', slow(250));
    fixture('k.test.js', slow(250));
    fixture('l.test.js', slow(1000));
    try {
      // 750 ms a file, 1,500 for both in one worker: each fits a 1,200 ms bound, both would not.
      const fits = await run({ workers: 1, filters: ['j.test', 'k.test'], fileTimeoutMs: 1200 });
      assert.equal(fits.code, 0, fits.out.join('\n'));
      // l needs 3,000 ms: cancelled at 1,200, and b still runs after it.
      const over = await run({ workers: 1, filters: ['l.test', 'b.test'], fileTimeoutMs: 1200 });
      assert.equal(over.code, 1);
      assert.deepEqual(
        ran()
          .map((r) => r.name)
          .sort(),
        ['b.test.js', 'l.test.js'],
      );
    } finally {
      for (const name of ['j', 'k', 'l']) rmSync(join(dir, `${name}.test.js`));
    }
  });

  it('fails, instead of waiting for ever, when a file leaves something running after its tests', {
    timeout: 30_000,
  }, async () => {
    fixture('leak.test.js', `test('leaks a timer', () => { setInterval(() => {}, 1000); });`);
    try {
      const { code } = await run({ filters: ['leak.test'], exitGraceMs: 300 });
      assert.equal(code, 1);
      assert.deepEqual(
        ran().map((r) => r.name),
        ['leak.test.js'],
      );
    } finally {
      rmSync(join(dir, 'leak.test.js'));
    }
  });

  it('is a usage error (2) when there is no file to run', async () => {
    const none = await run({ filters: ['no-such-file'] });
    assert.equal(none.code, 2);
    assert.match(none.out.join('\n'), /no test file name contains no-such-file/);
    const empty = await run({ dirs: [join(dir, 'cache')] });
    assert.equal(empty.code, 2);
    assert.match(empty.out.join('\n'), /build first/);
  });
});
