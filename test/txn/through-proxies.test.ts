import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  type EchoReply,
  type RunningProxy,
  get,
  SHIPPED_PROXIES,
  listenLoopback,
} from '../helpers/proxies.js';
import { localIssuer, service, tenant } from '../helpers/records.js';
import { suiteParts } from '../helpers/suite-parts.js';
import { TRUST_DOMAIN, payloadOf, txnServiceIssuer, txnSuite } from './txn-service.js';

/**
 * An upstream that behaves as the draft asks of a workload: on its outgoing call (x-test-next) it
 * sends the Txn-Token it received, unchanged, beside the token it was given.
 */
async function startTxnEcho(): Promise<{
  port: number;
  setProxy(port: number): void;
  close(): Promise<void>;
}> {
  let proxyPort = 0;
  const server: Server = createServer((req, res) => {
    void (async () => {
      const [first, ...rest] = String(req.headers['x-test-next'] ?? '')
        .split(',')
        .filter((p) => p.length > 0);
      let next: EchoReply['next'];
      if (first !== undefined) {
        const txn = req.headers['txn-token'];
        const reply = await get(proxyPort, first, {
          ...(req.headers['authorization'] === undefined
            ? {}
            : { authorization: String(req.headers['authorization']) }),
          ...(txn === undefined ? {} : { 'txn-token': String(txn) }),
          ...(rest.length > 0 ? { 'x-test-next': rest.join(',') } : {}),
        });
        next = { status: reply.status, body: reply.body };
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url, headers: req.headers, next }));
    })();
  });
  return {
    ...(await listenLoopback(server)),
    setProxy: (port) => {
      proxyPort = port;
    },
  };
}

describe('Txn-Tokens over the HTTP listener and through the shipped nginx and Caddy configs', () => {
  const s = txnSuite((idp, tts) => ({
    env: { MATRYOSHKA_AUTHZ_HTTP_PORT: '0' },
    contents: {
      issuers: [localIssuer(idp, 'acme'), txnServiceIssuer(tts, 'acme')],
      tenants: [tenant('acme', { txn_tokens: true })],
      services: [service('orders', { tenant: 'acme' }), service('billing', { tenant: 'acme' })],
    },
  }));
  const upstream = suiteParts(async (own) => ({ echo: own(await startTxnEcho()) }));

  it('the HTTP listener answers the Txn-Token as a response header, and checks one that came with the chain', async () => {
    const port = s.h.service.authzHttpPort as number;
    const original = { 'x-original-uri': '/items', 'x-original-method': 'GET' };
    const first = await get(port, '/authz/orders', {
      ...original,
      authorization: `Bearer ${await s.idp.mint({ sub: 'alice' })}`,
    });
    assert.equal(first.status, 200, first.body);
    const txnToken = String(first.headers['txn-token']);
    assert.equal(payloadOf(txnToken)['sub'], 'alice');
    const second = await get(port, '/authz/billing', {
      ...original,
      authorization: String(first.headers['authorization']),
      'txn-token': txnToken,
    });
    assert.equal(second.status, 200, second.body);
    assert.equal(second.headers['txn-token'], txnToken);
    const forged = await get(port, '/authz/billing', {
      ...original,
      authorization: String(first.headers['authorization']),
      'txn-token': `${txnToken.slice(0, -4)}AAAA`,
    });
    assert.equal(forged.status, 401);
  });

  for (const [name, start] of SHIPPED_PROXIES) {
    describe(`${name} (shipped config)`, () => {
      let proxy: RunningProxy;
      before(async () => {
        proxy = await start({
          authzPort: s.h.service.authzHttpPort as number,
          upstreamPort: upstream.echo.port,
        });
        upstream.echo.setProxy(proxy.port);
      });
      after(async () => {
        await proxy?.stop();
      });

      it('the upstream sees the same Txn-Token on two consecutive hops', async () => {
        const reply = await get(proxy.port, '/orders/items', {
          authorization: `Bearer ${await s.idp.mint({ sub: 'alice', roles: ['buyer'] })}`,
          'x-test-next': '/billing/pay',
        });
        assert.equal(reply.status, 200, proxy.logs());
        const first = JSON.parse(reply.body) as EchoReply;
        const txnToken = first.headers['txn-token'];
        assert.equal(typeof txnToken, 'string', 'the first upstream gets a Txn-Token');
        assert.equal(first.next?.status, 200, first.next?.body);
        const second = JSON.parse(first.next?.body ?? '{}') as EchoReply;
        assert.equal(second.headers['txn-token'], txnToken, 'the same one, unchanged');
        assert.equal(second.headers['x-auth-chain'], 'orders,billing');
        assert.equal(
          payloadOf(String(txnToken))['txn'],
          payloadOf(String(second.headers['authorization']).slice(7))['txn'],
        );
      });

      it("a Transaction Token Service's Txn-Token stands as the origin, and reaches both hops", async () => {
        const token = await s.tts.issue({ aud: TRUST_DOMAIN, sub: 'alice', txn: randomUUID() });
        const reply = await get(proxy.port, '/orders/items', {
          'txn-token': token,
          'x-test-next': '/billing/pay',
        });
        assert.equal(reply.status, 200, proxy.logs());
        const first = JSON.parse(reply.body) as EchoReply;
        assert.equal(first.headers['txn-token'], token);
        assert.equal(first.headers['x-user-id'], 'alice');
        const second = JSON.parse(first.next?.body ?? '{}') as EchoReply;
        assert.equal(second.headers['txn-token'], token);
      });

      it("refuses a client's own Txn-Token beside a chain, the upstream never reached", async () => {
        const reply = await get(proxy.port, '/orders/items', {
          authorization: `Bearer ${await s.idp.mint({ sub: 'alice' })}`,
          'txn-token': await s.tts.issue({ aud: TRUST_DOMAIN, sub: 'alice', txn: randomUUID() }),
        });
        assert.equal(reply.status, 401);
      });
    });
  }
});
