import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { auditLogger, createLogger } from '../../src/telemetry/logger.js';

function sink(): { stream: Writable; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { stream, lines };
}

describe('loggers', () => {
  it('the process logger redacts tokens and credentials wherever a careless call puts them', () => {
    const { stream, lines } = sink();
    const logger = createLogger('info', stream);
    logger.info(
      {
        token: 'T1',
        headers: { authorization: 'Bearer T2' },
        upstream: { secret: 'S', jwt: 'T3' },
      },
      'careless',
    );
    const text = JSON.stringify(lines);
    for (const leaked of ['T1', 'Bearer T2', '"S"', 'T3'])
      assert.ok(!text.includes(leaked), `${leaked} leaked: ${text}`);
    assert.equal(lines[0]?.['token'], '[redacted]');
  });

  it('the audit logger writes to the same stream with the same base fields', () => {
    const { stream, lines } = sink();
    const audit = auditLogger(createLogger('info', stream));
    audit.info({ request_id: 'r1', decision: 'allow' }, 'check');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.['service'], 'matryoshka-authz');
    assert.equal(lines[0]?.['request_id'], 'r1');
    assert.equal(lines[0]?.['msg'], 'check');
  });
});
