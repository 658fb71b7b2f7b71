import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { OtlpReceiver, attribute } from '../helpers/otlp-receiver.js';

function runDemo(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = fileURLToPath(new URL('../../src/demo/walkthrough.js', import.meta.url));
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

it('npm run demo walks gateway → A → B → C → A and ends in a recursion denial', async () => {
  const result = await runDemo({});
  assert.equal(result.code, 0, result.stderr);
  const rows = result.stdout.split('\n').filter((l) => /^\s+\d+\s+\S+ → /.test(l));
  assert.equal(rows.length, 5);
  assert.match(rows[3] ?? '', /B → C\s+ALLOW\s+200\s+4\s+gateway,A,B,C/);
  assert.match(rows[4] ?? '', /C → A\s+DENY\s+403.*recursion/);
  assert.match(result.stdout, /stopped: origin reached \(5 levels read\)/);
});

it('exports each demo decision as a span when an OTLP endpoint is set (what deploy/compose relies on)', async () => {
  const receiver = await OtlpReceiver.start();
  try {
    const result = await runDemo({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'demo-under-test',
    });
    assert.equal(result.code, 0, result.stderr);
    // The walk runs twice, once per chain form: five decisions each.
    const checks = receiver.spans.filter((s) => s.kind === 2);
    assert.equal(checks.length, 10);
    assert.deepEqual(
      checks.map((s) => attribute(s, 'authz.decision')).sort(),
      [
        'allow',
        'allow',
        'allow',
        'allow',
        'deny',
        'allow',
        'allow',
        'allow',
        'allow',
        'deny',
      ].sort(),
    );
    const denied = checks.filter((s) => attribute(s, 'authz.decision') === 'deny');
    assert.deepEqual(
      denied.map((s) => s.name),
      ['authz deny A', 'authz deny A'],
    );
    assert.deepEqual(
      checks
        .map((s) => attribute(s, 'authz.minted_form'))
        .filter((f) => f !== undefined)
        .sort(),
      ['compact', 'compact', 'compact', 'compact', 'nested', 'nested', 'nested', 'nested'],
    );
    assert.match(JSON.stringify(receiver.resources), /demo-under-test/);
  } finally {
    await receiver.stop();
  }
});
