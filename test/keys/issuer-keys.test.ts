import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { DEFAULT_FETCH_LIMITS } from '../../src/keys/fetch-json.js';
import { IssuerKeys } from '../../src/keys/issuer-keys.js';
import { OwnKeys } from '../../src/keys/own-keys.js';
import { RemoteJwks } from '../../src/keys/remote-jwks.js';
import { parseIssuer } from '../../src/registry/records.js';

describe('issuer keys on the hot path', () => {
  let idp: LocalIssuer;
  before(async () => {
    idp = await LocalIssuer.start();
  });
  after(() => idp.stop());

  it('imports each published key once per kid, and again only when the issuer publishes a new set', async () => {
    const fetches: string[] = [];
    const remote = new RemoteJwks({
      fetch: { ...DEFAULT_FETCH_LIMITS, allowInsecure: true },
      maxAgeMs: 60_000,
      maxStaleMs: 60_000,
      cooldownMs: 0,
      onFetch: (issuer, outcome) => fetches.push(`${issuer} ${outcome}`),
    });
    const keys = new IssuerKeys(await OwnKeys.generate(), remote);
    const record = parseIssuer(
      { issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri, algorithms: ['ES256'] },
      'issuer',
      true,
    );

    const first = await keys.issuerKeys(record, 'ES256', idp.currentKid);
    assert.equal(first.keys.length, 1);
    assert.equal(first.refreshed, true, 'the first use fetches');
    for (let i = 0; i < 50; i++) {
      const again = await keys.issuerKeys(record, 'ES256', idp.currentKid);
      assert.equal(again.refreshed, false);
      assert.equal(again.keys[0], first.keys[0], 'the same KeyObject, not a fresh import');
    }
    assert.equal(fetches.length, 1);

    // A token naming a kid we do not have: one refetch, and the new key is a new import.
    const oldKid = idp.currentKid;
    const newKid = await idp.rotate();
    const rotated = await keys.issuerKeys(record, 'ES256', newKid);
    assert.equal(rotated.refreshed, true);
    assert.equal(rotated.keys.length, 1);
    assert.notEqual(rotated.keys[0], first.keys[0]);
    const stable = await keys.issuerKeys(record, 'ES256', newKid);
    assert.equal(stable.keys[0], rotated.keys[0], 'imported once after the refresh too');
    assert.equal(fetches.length, 2);
    // The old key stays published (tokens signed with it still live): served from the new set
    // without another fetch, imported once from it.
    const old = await keys.issuerKeys(record, 'ES256', oldKid);
    assert.equal(old.refreshed, false);
    assert.equal(old.keys.length, 1);
    assert.equal((await keys.issuerKeys(record, 'ES256', oldKid)).keys[0], old.keys[0]);
    assert.equal(fetches.length, 2);
  });
});
