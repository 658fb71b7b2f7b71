import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

it('npm run demo walks gateway → A → B → C → A and ends in a recursion denial', () => {
  const script = fileURLToPath(new URL('../src/demo/walkthrough.js', import.meta.url));
  const result = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '' } });
  assert.equal(result.status, 0, result.stderr);
  const rows = result.stdout.split('\n').filter((l) => /^\s+\d+\s+\S+ → /.test(l));
  assert.equal(rows.length, 5);
  assert.match(rows[3] ?? '', /B → C\s+ALLOW\s+200\s+4\s+gateway,A,B,C/);
  assert.match(rows[4] ?? '', /C → A\s+DENY\s+403.*recursion/);
  assert.match(result.stdout, /stopped: origin reached \(5 levels read\)/);
});
