/**
 * Rules of a compact level's hop records that only a crafted level reaches (docs/token-format.md,
 * "Reading a compact level"): the jti bound, our key as the only signer, one jti per hop. Each case
 * is also asked of a replica minting nested and one minting compact, since they fail differently
 * when a rule is missing (the nested one lets it through, the compact one cannot re-mint it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_HOP_JTI } from '../../src/chain/auth-stack.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { compactSignJson } from '../../src/keys/jws-crypto.js';
import type { DecisionRecord } from '../../src/pipeline/decision.js';
import { type InProcess, OWN_ISSUER, inProcess } from '../helpers/in-process.js';
import { localIssuer } from '../helpers/records.js';

const now = () => Math.floor(Date.now() / 1000);

describe('compact hop records', () => {
  let idp: LocalIssuer;
  let partner: LocalIssuer;
  let replicas: Array<[string, InProcess]>;
  let origin: string;

  before(async () => {
    idp = await LocalIssuer.start();
    partner = await LocalIssuer.start();
    const contents = {
      issuers: [
        localIssuer(idp, 'acme'),
        localIssuer(partner, 'acme', { mints_for: ['partner-*'] }),
      ],
    };
    const compact = await inProcess({ contents, env: { MATRYOSHKA_CHAIN_FORMAT: 'compact' } });
    const nested = await inProcess({
      contents,
      ownKeys: compact.ownKeys,
      env: { MATRYOSHKA_CHAIN_FORMAT: 'nested', MATRYOSHKA_HEADER_BUDGET: '65536' },
    });
    replicas = [
      ['compact', compact],
      ['nested', nested],
    ];
    origin = await idp.mint({ sub: 'alice', roles: ['reader'] });
  });
  after(async () => {
    await idp.stop();
    await partner.stop();
  });

  /** A compact level of ours around the origin with these records (the last one is the level). */
  function ours(hops: Array<[string, number, number, string]>): string {
    const [sid, iat, exp, jti] = hops[hops.length - 1] as [string, number, number, string];
    const keys = (replicas[0] as [string, InProcess])[1].ownKeys;
    const payload = {
      iss: OWN_ISSUER,
      sub: 'alice',
      aud: OWN_ISSUER,
      iat,
      exp,
      jti,
      tenant_id: 'acme',
      roles: ['reader'],
      auth_stack: { fmt: 'JWT', sid, depth: hops.length, form: 'compact', hops, container: origin },
    };
    return compactSignJson(
      keys.signing.alg,
      keys.signing.kid,
      keys.signing.privateKey,
      JSON.stringify(payload),
    );
  }

  async function everywhere(token: string, expect: (r: DecisionRecord, what: string) => void) {
    for (const [name, replica] of replicas) expect(await replica.check({ token, sid: 'C' }), name);
  }
  const allowed = (r: DecisionRecord, what: string) =>
    assert.equal(r.allowed, true, `${what}: ${r.reason} ${r.detail}`);
  const malformed = (r: DecisionRecord, what: string) => {
    assert.equal(r.allowed, false, `${what}: allowed`);
    assert.equal(r.reason, 'stack_malformed', `${what}: ${r.reason} ${r.detail}`);
  };

  it(`reads a jti of ${MAX_HOP_JTI} characters and refuses one of ${MAX_HOP_JTI + 1} or 5,000`, async () => {
    const iat = now();
    for (const [length, expect] of [
      [MAX_HOP_JTI, allowed],
      [MAX_HOP_JTI + 1, malformed],
      [5000, malformed],
    ] as const) {
      const long = 'j'.repeat(length);
      // In an older record, and in the newest (which is also the level's own jti).
      await everywhere(
        ours([
          ['A', iat - 5, iat + 60, long],
          ['B', iat, iat + 60, 'j-b'],
        ]),
        expect,
      );
      await everywhere(
        ours([
          ['A', iat - 5, iat + 60, 'j-a'],
          ['B', iat, iat + 60, long],
        ]),
        expect,
      );
    }
  });

  it('refuses a registered partner (mints_for) that signs a compact level forging a gateway hop', async () => {
    const iat = now();
    // Well-formed in every other respect: its own jti, the newest record is the level, its sid is
    // one the partner may mint for. Only the signer is wrong.
    const forged = await partner.mint(
      {
        sub: 'alice',
        jti: 'j-partner',
        auth_stack: {
          fmt: 'JWT',
          sid: 'partner-x',
          depth: 2,
          form: 'compact',
          hops: [
            ['gateway', iat - 5, iat + 60, 'j-gateway'],
            ['partner-x', iat, iat + 60, 'j-partner'],
          ],
          container: origin,
        },
      },
      { iat, ttl: 60 },
    );
    await everywhere(forged, malformed);
    // The same level, signed by us, is a chain through the gateway.
    await everywhere(
      ours([
        ['gateway', iat - 5, iat + 60, 'j-gateway'],
        ['partner-x', iat, iat + 60, 'j-partner'],
      ]),
      allowed,
    );
  });

  it('refuses a compact level of ours that lists one hop twice (one jti), reads it with two', async () => {
    const iat = now();
    const a: [string, number, number, string] = ['A', iat - 5, iat + 60, 'j-a'];
    await everywhere(ours([a, a, ['B', iat, iat + 60, 'j-b']]), malformed);
    await everywhere(
      ours([a, ['A', iat - 5, iat + 60, 'j-a2'], ['B', iat, iat + 60, 'j-b']]),
      allowed,
    );
    // Also when the repeated jti is the level's own.
    await everywhere(
      ours([
        ['A', iat - 5, iat + 60, 'j-b'],
        ['B', iat, iat + 60, 'j-b'],
      ]),
      malformed,
    );
  });
});
