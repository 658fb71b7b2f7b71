import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { renderConfigDocs } from '../../src/config/config-docs.js';
import { CONFIG_VARIABLES } from '../../src/config/config.js';
import { ROOT, scripts } from '../helpers/processes.js';

/** The tracked files a user reads or the build and tests run: what must stand alone. */
const CHECKED = /\.(md|ts|ya?ml|json|sh)$|^\.ci\/run$/;

function trackedFiles(): string[] {
  const listed = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split(
    '\0',
  );
  return listed.filter((file) => CHECKED.test(file) && existsSync(join(ROOT, file))).sort();
}

/** Every line of every checked file that matches `find` (given the line before too), as `file:line: text`. */
function offenders(find: (file: string, line: string, previous: string) => boolean): string[] {
  const found: string[] = [];
  for (const file of trackedFiles()) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (find(file, line, lines[i - 1] ?? ''))
        found.push(`${file}:${i + 1}: ${line.trim().slice(0, 160)}`);
    });
  }
  return found;
}

/**
 * In code, a string reaches the file system only through a path API; elsewhere (a `kid` of
 * '../../etc/passwd' in an attack test) it is data. Markdown, YAML, JSON and scripts are all paths.
 */
const PATH_API =
  /import\.meta\.url|\b(join|resolve|readFileSync|readFile|readdirSync|existsSync|statSync|createReadStream|cwd|spawn|spawnSync|execFileSync)\b|\bfrom\s+['"]|\bimport\s*\(/;
const usesPaths = (file: string, line: string, previous: string): boolean =>
  !file.endsWith('.ts') || PATH_API.test(line) || PATH_API.test(previous);

/**
 * How many directories a relative path in `file` may climb and stay in the repository. A `.ts`
 * file runs from dist/ (one level deeper), where its `new URL('../..', import.meta.url)` resolves;
 * everything else (Markdown links, compose contexts, scripts) from its own directory.
 */
function climbAllowed(file: string): number {
  const dir = dirname(file);
  const depth = dir === '.' ? 0 : dir.split('/').length;
  return file.endsWith('.ts') ? depth + 1 : depth;
}

/** `'..', '..'` as path.join arguments. */
const JOIN_ARGS = /(?:(['"])\.\.\1\s*,\s*)*(['"])\.\.\2/g;
/** A run of path characters; a relative one with `..` segments is normalised and measured. */
const PATH_TOKEN = /[A-Za-z0-9_.\-/]+/g;

/** Relative paths in `line` that climb out of the repository from where `file` is used. */
export function escapingPaths(file: string, line: string): string[] {
  const allowed = climbAllowed(file);
  const escaping: string[] = [];
  const rest = line.replace(JOIN_ARGS, (run) => {
    if ((run.match(/\.\./g) ?? []).length > allowed) escaping.push(run);
    return ' ';
  });
  for (const token of rest.match(PATH_TOKEN) ?? []) {
    if (token.startsWith('/') || !token.split('/').includes('..')) continue; // absolute (URL paths) or no climb
    const normalised = posix.normalize(token).split('/');
    let climbs = 0;
    while (normalised[climbs] === '..') climbs++;
    if (climbs > allowed) escaping.push(token);
  }
  return escaping;
}

describe('documentation', () => {
  it('docs/configuration.md is what renderConfigDocs() makes of CONFIG_VARIABLES (else: npm run docs)', () => {
    const path = join(ROOT, 'docs/configuration.md');
    assert.ok(existsSync(path), 'docs/configuration.md is missing: run `npm run docs`');
    const rendered = renderConfigDocs();
    assert.equal(
      readFileSync(path, 'utf8'),
      rendered,
      'docs/configuration.md is out of date: run `npm run docs` and commit the result',
    );
    for (const variable of CONFIG_VARIABLES)
      assert.ok(rendered.includes(`| \`${variable.name}\` |`), `${variable.name} has a row`);
  });

  it('npm run docs writes exactly renderConfigDocs() to standard output', () => {
    assert.equal(scripts['docs'], 'node dist/src/config/config-docs.js > docs/configuration.md');
    const run = spawnSync(process.execPath, [join(ROOT, 'dist/src/config/config-docs.js')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, renderConfigDocs());
  });

  it('a row stays one table row whatever a description holds', () => {
    // Pipes and line breaks in a description must not split the row or the table.
    for (const line of renderConfigDocs()
      .split('\n')
      .filter((l) => l.startsWith('| `'))) {
      // Four columns: variable, default, allowed, description.
      assert.equal(line.replace(/\\\|/g, '').split('|').length, 6, line);
    }
  });
});

describe('the repository stands alone', () => {
  const sibling = ['..', 'shared'].join('/'); // spelt apart so this file does not name it

  it(`no tracked file refers to ${sibling}`, () => {
    const found = offenders(
      (_file, line) => line.includes(sibling) || line.includes(sibling.replace('/', '\\')),
    );
    assert.deepEqual(
      found,
      [],
      `the repository must not depend on a sibling checkout:\n${found.join('\n')}`,
    );
  });

  it('no tracked file names a relative path that climbs out of the repository', () => {
    const found = offenders(
      (file, line, previous) =>
        usesPaths(file, line, previous) && escapingPaths(file, line).length > 0,
    );
    assert.deepEqual(found, [], `paths outside the repository:\n${found.join('\n')}`);
  });

  it('the escape detector tells a path inside the repository from one outside', () => {
    const up = (n: number): string => '../'.repeat(n); // built, so that this file itself names no deep climb
    // Climbs that stay inside, as the repository uses them.
    assert.deepEqual(
      escapingPaths('src/server/protos.ts', `new URL('${up(3)}proto/', import.meta.url)`),
      [],
    );
    assert.deepEqual(escapingPaths('deploy/compose/docker-compose.yaml', 'context: ../..'), []);
    assert.deepEqual(escapingPaths('docs/cli.md', '[README](../README.md)'), []);
    assert.deepEqual(escapingPaths('envoy/envoy.yaml', '# no /orders/../billing'), []);
    assert.deepEqual(escapingPaths('test/x.test.ts', "import { a } from '../../src/a.js';"), []);
    // Climbs that leave it.
    const dotdot = "'..'";
    assert.deepEqual(escapingPaths('README.md', `see ${up(1)}other/spec.md`), [
      `${up(1)}other/spec.md`,
    ]);
    assert.deepEqual(escapingPaths('docs/a.md', `[x](${up(2)}spec/product.md)`), [
      `${up(2)}spec/product.md`,
    ]);
    assert.deepEqual(
      escapingPaths('test/x.test.ts', `new URL('${up(3)}fixtures/a.json', import.meta.url)`),
      [`${up(3)}fixtures/a.json`],
    );
    assert.deepEqual(escapingPaths('test/x.test.ts', `join(ROOT, 'test', '${up(3)}', 'seeds')`), [
      up(3),
    ]);
    assert.deepEqual(
      escapingPaths('bench/x.ts', `join(here, ${[dotdot, dotdot, dotdot].join(', ')})`),
      [[dotdot, dotdot, dotdot].join(', ')],
    );
    assert.deepEqual(escapingPaths('.ci/run', `cat ./a/${up(3)}x`), [`./a/${up(3)}x`]);
    // In code, only where a path API is in reach; a token value that looks like a path is data.
    assert.equal(usesPaths('test/a.test.ts', `sign({ kid: '${up(4)}etc/passwd' })`, ''), false);
    assert.equal(
      usesPaths('test/a.test.ts', `  '${up(3)}seeds/x.txt',`, 'const text = readFileSync('),
      true,
    );
    assert.equal(usesPaths('README.md', `see ${up(1)}x`, ''), true);
  });

  it('every relative link in README.md and docs/ points at a file in the repository', () => {
    const broken: string[] = [];
    for (const file of trackedFiles().filter(
      (f) => f === 'README.md' || (f.startsWith('docs/') && f.endsWith('.md')),
    )) {
      for (const [, target] of readFileSync(join(ROOT, file), 'utf8').matchAll(
        /\]\(([^)\s]+)\)/g,
      )) {
        if (target === undefined || /^([a-z]+:|#)/i.test(target)) continue;
        const path = posix.normalize(posix.join(dirname(file), target.split('#')[0] ?? ''));
        if (path.startsWith('..') || !existsSync(join(ROOT, path)))
          broken.push(`${file}: ${target}`);
      }
    }
    assert.deepEqual(broken, []);
  });
});
