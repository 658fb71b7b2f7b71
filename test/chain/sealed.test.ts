import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompactEncrypt, generateKeyPair } from 'jose';
import { inspectChain } from '../../src/chain/inspect.js';
import type { LocalIssuer } from '../../src/demo/local-issuer.js';
import { worldSuiteWith } from '../world/suite.js';
import { localIssuer, service, tenant } from '../helpers/records.js';
import { authStack } from '../helpers/tokens.js';

describe('sealed (JWE) levels', () => {
  const h = worldSuiteWith('handler', { open: {}, closed: {} }, ({ open, closed }) => ({
    contents: {
      issuers: [
        localIssuer(open, 'open', { mints_for: ['partner-*'] }),
        localIssuer(closed, 'closed', { mints_for: ['partner-*'] }),
      ],
      tenants: [tenant('open', { sealed: 'allow' }), tenant('closed', { sealed: 'deny' })],
      services: [service('vault', { seal: true })],
    },
  }));

  it('seals the container for a service with seal policy, and opens it again because we hold the key', async () => {
    const origin = await h.of('open').mint({ sub: 'alice' });
    const toA = await h.w.check({ token: origin, sid: 'A' });
    const toVault = await h.w.check({ token: toA.forwardedToken as string, sid: 'vault' });
    assert.equal(toVault.allowed, true);
    const sealedToken = toVault.forwardedToken as string;
    const stack = authStack(sealedToken);
    assert.equal(stack['fmt'], 'JWE');
    assert.equal(
      (stack['container'] as string).split('.').length,
      5,
      'the container is a compact JWE',
    );
    assert.equal(
      inspectChain(sealedToken).sealed,
      true,
      'without our key the chain below is unreadable',
    );

    const onward = await h.w.check({ token: sealedToken, sid: 'B' });
    assert.equal(onward.allowed, true, onward.body);
    assert.equal(
      onward.headers['x-auth-chain'],
      'A,vault,B',
      'we opened our own seal and saw the whole path',
    );
    assert.equal(onward.headers['x-auth-depth'], '3');
  });

  async function sealedElsewhere(idp: LocalIssuer): Promise<string> {
    // A partner sealed its part of the chain to a key we do not hold, declaring depth 2 below.
    const partner = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
    const hidden = await new CompactEncrypt(new TextEncoder().encode('hidden.chain.here'))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'partner-key' })
      .encrypt(partner.publicKey);
    return idp.mint({
      sub: 'alice',
      roles: ['buyer'],
      auth_stack: { fmt: 'JWE', sid: 'partner-gw', depth: 2, container: hidden },
    });
  }

  it("lets the tenant's sealed policy allow a chain sealed to another party, counting its declared depth", async () => {
    const result = await h.w.check({ token: await sealedElsewhere(h.of('open')), sid: 'A' });
    assert.equal(result.allowed, true, result.body);
    assert.equal(
      result.headers['x-auth-depth'],
      '3',
      'the partner level declares 2 levels below it; ours wraps it',
    );
    assert.equal(result.headers['x-auth-chain'], 'partner-gw,A', 'only the sids we could see');
    assert.equal(result.headers['x-user-id'], 'alice');
  });

  it("lets the tenant's sealed policy deny it", async () => {
    const result = await h.w.check({ token: await sealedElsewhere(h.of('closed')), sid: 'A' });
    assert.equal(result.allowed, false);
    assert.equal(result.httpStatus, 403);
    assert.equal(h.w.lastReason(), 'sealed_chain');
  });
});
