import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { lintFiles } from './lint-files.js';

const ENVOY_YAML = fileURLToPath(new URL('../../../envoy/envoy.yaml', import.meta.url));

describe('envoy-lint command', () => {
  it('passes the repository envoy.yaml with exit 0 and no output', () => {
    assert.deepEqual(lintFiles([ENVOY_YAML]), { code: 0, lines: [] });
  });

  it('names the file and the path of each problem, exit 1', () => {
    const text = readFileSync(ENVOY_YAML, 'utf8').replace(
      'failure_mode_allow:',
      'failure_mode_alow:',
    );
    const report = lintFiles(['bad.yaml'], () => text);
    assert.equal(report.code, 1);
    assert.ok(report.lines.length > 0);
    for (const line of report.lines) assert.match(line, /^bad\.yaml: \$\S*: /);
    assert.ok(
      report.lines.some((l) => l.includes('failure_mode_alow')),
      report.lines.join('\n'),
    );
  });

  it('is a usage error without files, and an environment error for a file it cannot read', () => {
    assert.equal(lintFiles([]).code, 2);
    const missing = lintFiles([join('/nonexistent', 'envoy.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.lines[0] ?? '', /^\/nonexistent\/envoy\.yaml: cannot read/);
  });
});
