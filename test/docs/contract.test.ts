/**
 * The documented contract, read from the docs' own tables and compared with the code's tables in
 * both directions: a row the code lacks, or a code entry the page lacks, fails. New rows (a reason,
 * a setting, a command, a key) then need one line of documentation and nothing in this file.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { COMMANDS } from '../../src/cli/commands.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { CONFIG_VARIABLES } from '../../src/config/config.js';
import { ownedHeaders, IDENTITY_HEADERS } from '../../src/pipeline/owned-headers.js';
import { DENY_REASONS } from '../../src/reasons.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { toCheckInput } from '../../src/server/check-request.js';
import { AUTHZ_SERVICE } from '../../src/server/health.js';
import { ROOT } from '../helpers/processes.js';

const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** Cells of a Markdown table row; `\|` inside a cell is a pipe, not a border. */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim().replace(/\\\|/g, '|'));
}

/**
 * The rows (header and separator left out) of the first table after the heading that matches
 * `heading`, and before the next heading.
 */
export function tableAfter(markdown: string, heading: RegExp): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^#{1,6} /.test(l) && heading.test(l));
  assert.ok(start >= 0, `no heading matching ${heading}`);
  const rows: string[][] = [];
  let inTable = false;
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,6} /.test(line)) break;
    if (line.trim().startsWith('|')) {
      inTable = true;
      rows.push(cells(line));
    } else if (inTable) break;
  }
  assert.ok(rows.length >= 2, `no table after ${heading}`);
  return rows.slice(2);
}

/** `code` in backticks, as the tables write names: `x-user-id` → x-user-id. */
const unquote = (cell: string): string => cell.replace(/^`|`$/g, '');

function sameSets(documented: Iterable<string>, coded: Iterable<string>, what: string): void {
  const doc = new Set(documented);
  const code = new Set(coded);
  assert.deepEqual(
    [...code].filter((c) => !doc.has(c)).sort(),
    [],
    `${what} in the code but not in the docs`,
  );
  assert.deepEqual(
    [...doc].filter((d) => !code.has(d)).sort(),
    [],
    `${what} in the docs but not in the code`,
  );
}

describe('docs/headers-and-reasons.md against the code', () => {
  const page = read('docs/headers-and-reasons.md');

  it('every reason code has a row with its HTTP status and class, and every row is a reason', () => {
    const rows = tableAfter(page, /^## Reason codes/);
    const documented = new Map(
      rows.map(([code, status, klass]) => [unquote(code ?? ''), { status, klass }]),
    );
    sameSets(documented.keys(), Object.keys(DENY_REASONS), 'reason codes');
    for (const [code, spec] of Object.entries(DENY_REASONS)) {
      const row = documented.get(code);
      assert.equal(row?.status, String(spec.status), `${code}: HTTP status`);
      assert.equal(row?.klass, spec.class, `${code}: class`);
    }
  });

  it('the headers set on allow are exactly the headers the service owns', () => {
    const rows = tableAfter(page, /^## Allow/);
    sameSets(
      rows.map(([name]) => unquote(name ?? '')),
      ownedHeaders('authorization'),
      'headers set on allow',
    );
    // The headers named as removed when not set: every identity header, and only those.
    const removed =
      /`ok_response\.headers_to_remove` lists every identity header of ([^.]*?) that/s.exec(page);
    assert.ok(removed, 'the page says which headers are removed');
    sameSets(
      [...(removed[1] ?? '').matchAll(/`([a-z-]+)`/g)].map((m) => m[1] ?? ''),
      IDENTITY_HEADERS,
      'identity headers removed when not set',
    );
  });

  it('every input the table says is read is read from the CheckRequest, path and method included', () => {
    const rows = tableAfter(page, /^## What the service reads/);
    const inputs = rows.map(([input]) => input ?? '');
    const request = {
      attributes: {
        source: { principal: 'spiffe://src' },
        destination: { principal: 'spiffe://dst' },
        request: { http: { path: '/orders/1', method: 'GET', headers: { authorization: 'x' } } },
        context_extensions: { sid: 'orders', tenant: 'acme', max_depth: '3' },
      },
    };
    const input = toCheckInput(request);
    const readFrom: Array<[string, unknown]> = [
      ['`attributes.request.http.path`', input.path],
      ['`attributes.request.http.method`', input.method],
      ['`attributes.source.principal`', input.sourcePrincipal],
      ['`attributes.destination.principal`', input.destinationPrincipal],
      ['`attributes.context_extensions["sid"]`', input.contextExtensions['sid']],
      ['`attributes.context_extensions["tenant"]`', input.contextExtensions['tenant']],
      ['`attributes.context_extensions["max_depth"]`', input.contextExtensions['max_depth']],
    ];
    for (const [name, value] of readFrom) {
      assert.ok(inputs.includes(name), `${name} has a row`);
      assert.notEqual(value, undefined, `${name} is read by toCheckInput`);
    }
    assert.doesNotMatch(page, /not the body, the path, the method/);
  });
});

describe('docs/configuration.md against CONFIG_VARIABLES', () => {
  it('every variable has one row with its default and range, and every row is a variable', () => {
    const rows = tableAfter(read('docs/configuration.md'), /^# Configuration reference/);
    const documented = new Map(
      rows.map(([name, def, allowed]) => [unquote(name ?? ''), { def, allowed }]),
    );
    sameSets(
      documented.keys(),
      CONFIG_VARIABLES.map((v) => v.name),
      'configuration variables',
    );
    for (const variable of CONFIG_VARIABLES) {
      const row = documented.get(variable.name);
      assert.equal(
        row?.def,
        variable.default === undefined ? 'unset' : `\`${variable.default}\``,
        `${variable.name}: default`,
      );
      assert.equal(row?.allowed, variable.allowed, `${variable.name}: range`);
    }
  });
});

describe('docs/cli.md against the command table', () => {
  const page = read('docs/cli.md');

  it('the command list names every command and verb, and nothing else', () => {
    const block = /```\nmatryoshka-authz <command> \[--help\]\n([\s\S]*?)```/.exec(page);
    assert.ok(block, 'docs/cli.md opens with the command list');
    const documented: string[] = [];
    for (const line of (block[1] ?? '').split('\n')) {
      const match = /^ {2}([a-z]+)(?: ([a-z]+(?: \| [a-z]+)*))?(?=\s|$)/.exec(line);
      if (match === null || match[1] === 'help') continue;
      const verbs = match[2]?.split(' | ') ?? [];
      const command = COMMANDS[match[1] ?? ''];
      // A group's line lists its verbs; a leaf's line goes on with its synopsis.
      if (command !== undefined && 'verbs' in command)
        for (const verb of verbs) documented.push(`${match[1]} ${verb}`);
      else documented.push(match[1] ?? '');
    }
    const coded = Object.entries(COMMANDS).flatMap(([name, command]) =>
      'verbs' in command ? Object.keys(command.verbs).map((verb) => `${name} ${verb}`) : [name],
    );
    sameSets(documented, coded, 'commands');
  });

  it('every command and verb has a section of its own', () => {
    const headings = page.split('\n').filter((l) => /^#{2,3} /.test(l));
    for (const [name, command] of Object.entries(COMMANDS)) {
      const paths =
        'verbs' in command ? Object.keys(command.verbs).map((verb) => `${name} ${verb}`) : [name];
      for (const path of paths)
        assert.ok(
          headings.some((h) => h.includes(`\`${path}`) || h.includes(`${path}\``)),
          `docs/cli.md has a heading for ${path}`,
        );
    }
  });

  it('the exit-code table is EXIT_CODES, row for row', () => {
    const rows = tableAfter(page, /^## Exit codes/);
    sameSets(
      rows.map(([code]) => code ?? ''),
      Object.keys(EXIT_CODES),
      'exit codes',
    );
  });
});

describe('docs/redis.md against RedisLayout', () => {
  it('the key table names every key RedisLayout builds, and only those', () => {
    const rows = tableAfter(read('docs/redis.md'), /^# Running a fleet on Redis/);
    const keyRows = rows.filter(([first]) => (first ?? '').startsWith('`{p}'));
    const documented = keyRows.flatMap(([keys]) =>
      (keys ?? '').split(',').map((k) => unquote(k.trim())),
    );
    // Every getter and method of the layout, its parameters as `<name>` placeholders.
    const layout = new RedisLayout('p');
    const coded: string[] = [];
    for (const name of Object.getOwnPropertyNames(RedisLayout.prototype)) {
      if (name === 'constructor') continue;
      const descriptor = Object.getOwnPropertyDescriptor(RedisLayout.prototype, name);
      if (descriptor?.get !== undefined) coded.push(descriptor.get.call(layout) as string);
      else if (typeof descriptor?.value === 'function') {
        const fn = descriptor.value as (...args: string[]) => string;
        const params = /\(([^)]*)\)/.exec(fn.toString())?.[1]?.split(',') ?? [];
        coded.push(
          fn.apply(
            layout,
            params.map((p) => `<${p.trim().split(':')[0]?.trim()}>`),
          ),
        );
      }
    }
    sameSets(documented, coded, 'Redis keys');
    assert.ok(documented.includes('{p}:log'), 'the change log stream is documented');
  });
});

describe('the README and the files a newcomer expects', () => {
  const readme = read('README.md');

  it('speaks of nothing a user has not seen (issues, rounds, the seed, the spec) and stays short', () => {
    for (const jargon of [/\bissue \d+/i, /\brounds?\b/i, /\bthe seed\b/i, /\bthe spec\b/i])
      assert.doesNotMatch(readme, jargon);
    assert.ok(readme.split('\n').length <= 200, 'README.md is at most 200 lines');
    for (const section of [
      /^## Set-up/m,
      /^## The demo/m,
      /^## Wiring Envoy/m,
      /^## Registering an issuer/m,
    ])
      assert.match(readme, section);
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /npm ci && npm test/);
  });

  it('every file the README tells to use exists (the example registry above all)', () => {
    for (const [, path] of readme.matchAll(
      /(?:^|\s)((?:examples|envoy|deploy|docs)\/[\w./-]+\.(?:ya?ml|md))/gm,
    ))
      assert.ok(existsSync(join(ROOT, path ?? '')), `${path} exists`);
    assert.match(readme, /registry import examples\/registry\.yaml/);
  });

  it('ships a LICENSE with the license package.json names', () => {
    const pkg = JSON.parse(read('package.json')) as { license: string };
    assert.equal(pkg.license, 'MIT');
    const license = read('LICENSE');
    assert.match(license, /^MIT License/);
    assert.match(license, /Copyright \(c\) \d{4} matryoshka-authz authors/);
  });
});

describe('deploy/kubernetes/README.md against deployment.yaml and the health service', () => {
  it('readiness is described as the manifest and src/server/health.ts do it', () => {
    const deployment = parse(read('deploy/kubernetes/deployment.yaml')) as {
      spec: { template: { spec: { containers: Array<Record<string, unknown>> } } };
    };
    const container = deployment.spec.template.spec.containers[0] ?? {};
    const readiness = container['readinessProbe'] as { grpc?: { service?: string } } | undefined;
    assert.equal(
      readiness?.grpc?.service,
      AUTHZ_SERVICE,
      'readiness asks gRPC health for Authorization',
    );
    const readme = read('deploy/kubernetes/README.md');
    assert.doesNotMatch(readme, /Readiness is `\/readyz`|`\/readyz` readiness/);
    assert.match(readme, /readiness asks for `envoy\.service\.auth\.v3\.Authorization`/);
    assert.doesNotMatch(readme, /SERVING as soon as\s+the ports are open/);
  });
});
