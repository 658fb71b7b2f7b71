/**
 * MATRYOSHKA_JWKS_MAX_STALE: the last good keys of an IdP that cannot be reached are served up to
 * max-stale, and not a moment longer — past it, a refresh that fails is a 503 (KeysUnavailable),
 * never the held keys. The IdP refuses connections at once, so no deadline decides for the rule;
 * the clock is the cache's own, moved by the test.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { DEFAULT_FETCH_LIMITS } from '../../src/keys/fetch-json.js';
import { KeysUnavailableError, RemoteJwks } from '../../src/keys/remote-jwks.js';
import { parseIssuer } from '../../src/registry/records.js';
import { eventually } from '../helpers/processes.js';

const MAX_AGE = 60_000;
const MAX_STALE = 600_000;

describe('held keys and MATRYOSHKA_JWKS_MAX_STALE', () => {
  it('serves held keys while the IdP is down up to max-stale, then answers unavailable', async (t) => {
    const idp = await LocalIssuer.start();
    t.after(() => idp.stop());
    const start = 1_000_000_000;
    let clock = start;
    const outcomes: string[] = [];
    const remote = new RemoteJwks({
      fetch: { ...DEFAULT_FETCH_LIMITS, allowInsecure: true },
      maxAgeMs: MAX_AGE,
      maxStaleMs: MAX_STALE,
      cooldownMs: 0,
      now: () => clock,
      onFetch: (_issuer, outcome) => outcomes.push(outcome),
    });
    const record = parseIssuer(
      { issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri, algorithms: ['ES256'] },
      'issuer',
      true,
    );
    const kid = idp.currentKid;
    const fresh = await remote.keys(record, kid);
    assert.deepEqual([fresh.keys.length, outcomes], [1, ['ok']]);

    await idp.stop();
    // Past max-age: the held keys at once, while a background refresh fails.
    clock = start + MAX_AGE + 1;
    assert.equal((await remote.keys(record, kid)).keys.length, 1);
    await eventually(async () => outcomes.includes('error'), 5000, 'the refresh failed');
    // Just inside max-stale, after failed refreshes: still the held keys.
    clock = start + MAX_STALE - 1;
    assert.equal((await remote.keys(record, kid)).keys.length, 1);
    await eventually(async () => outcomes.filter((o) => o === 'error').length >= 2, 5000, 'again');

    // Past max-stale: the refresh fails and nothing held may stand in for it.
    clock = start + MAX_STALE + 1;
    await assert.rejects(remote.keys(record, kid), KeysUnavailableError);
    await assert.rejects(remote.keys(record, undefined), KeysUnavailableError);

    // The IdP back: its keys are fetched and served again.
    await idp.resume();
    assert.equal((await remote.keys(record, kid)).keys.length, 1);
    assert.equal(outcomes.at(-1), 'ok');
  });
});
