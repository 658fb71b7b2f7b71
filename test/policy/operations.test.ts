/**
 * Policy per operation and dry-run per scope, through the real gRPC server with Envoy's messages:
 * a REST service with three operations, a gRPC service with per-method rules, deny_unmatched,
 * path-normalisation attacks, and a dry-run service next to an enforcing one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckResult } from '../../src/demo/envoy-client.js';
import { worldSuiteWith } from '../world/suite.js';
import { localIssuer, service, tenant } from '../helpers/records.js';

describe('operations', () => {
  const h = worldSuiteWith('handler', { idp: {} }, ({ idp }) => ({
    contents: {
      issuers: [localIssuer(idp, 'acme')],
      tenants: [tenant('acme', { recursion: 'deny' })],
      services: [
        service('orders', {
          operations: [
            { name: 'read', path: '/orders/*', methods: ['GET'], required_roles: ['reader'] },
            { name: 'create', path: '/orders', methods: ['POST'], allowed_callers: ['cart'] },
            {
              name: 'delete',
              path: '/orders/*',
              methods: ['DELETE'],
              required_roles: ['admin'],
              max_depth: 2,
            },
          ],
        }),
        service('payments', {
          deny_unmatched: true,
          operations: [
            { name: 'charge', grpc: '/shop.Payments/Charge', allowed_callers: ['checkout'] },
            { name: 'lookups', grpc: '/shop.Payments/*', required_roles: ['reader'] },
          ],
        }),
        service('audit-dry', {
          mode: 'shadow',
          operations: [
            { name: 'write', path: '/audit', methods: ['POST'], required_roles: ['admin'] },
          ],
        }),
        service('audit-live', {
          operations: [
            { name: 'write', path: '/audit', methods: ['POST'], required_roles: ['admin'] },
          ],
        }),
        service('mixed', {
          mode: 'shadow',
          operations: [
            { name: 'strict', path: '/strict', required_roles: ['admin'], mode: 'enforce' },
            { name: 'loose', path: '/loose', required_roles: ['admin'] },
          ],
        }),
      ],
    },
  }));

  const origin = (roles: string[] = []) => h.of('idp').mint({ sub: 'alice', roles });
  /** A chain whose last hop is `caller`, `hops` levels deep. */
  async function via(callers: string[], roles: string[] = []): Promise<string> {
    let token = await origin(roles);
    for (const sid of callers) {
      const hop = await h.w.check({ token, sid });
      assert.equal(hop.allowed, true, hop.body);
      token = hop.forwardedToken as string;
    }
    return token;
  }
  const line = () => h.w.logs.findLast((l) => l['msg'] === 'check') as Record<string, unknown>;
  const expect = (
    result: CheckResult,
    status: number,
    reason: string | undefined,
    operation: string | undefined,
    what: string,
  ) => {
    assert.equal(result.httpStatus, status, `${what}: ${result.body}`);
    assert.equal(line()['reason'], reason, `${what}: reason`);
    assert.equal(line()['operation'], operation, `${what}: operation`);
  };

  it('REST: GET /orders/* for readers, POST /orders only from cart, DELETE /orders/* for admins at depth ≤ 2', async () => {
    const reader = await origin(['reader']);
    expect(
      await h.w.check({ token: reader, sid: 'orders', method: 'GET', path: '/orders/42?x=1' }),
      200,
      undefined,
      'read',
      'reader GETs',
    );
    expect(
      await h.w.check({
        token: await origin(),
        sid: 'orders',
        method: 'GET',
        path: '/orders/42',
      }),
      403,
      'role_missing',
      'read',
      'no reader role',
    );

    const fromCart = await via(['cart']);
    expect(
      await h.w.check({ token: fromCart, sid: 'orders', method: 'POST', path: '/orders' }),
      200,
      undefined,
      'create',
      'cart POSTs',
    );
    const fromGateway = await via(['gateway']);
    expect(
      await h.w.check({ token: fromGateway, sid: 'orders', method: 'POST', path: '/orders' }),
      403,
      'caller_not_allowed',
      'create',
      'gateway POSTs',
    );

    const adminAt1 = await via(['gateway'], ['admin']);
    expect(
      await h.w.check({
        token: adminAt1,
        sid: 'orders',
        method: 'DELETE',
        path: '/orders/42',
      }),
      200,
      undefined,
      'delete',
      'admin at depth 2',
    );
    const adminAt2 = await via(['gateway', 'cart'], ['admin']);
    expect(
      await h.w.check({
        token: adminAt2,
        sid: 'orders',
        method: 'DELETE',
        path: '/orders/42',
      }),
      403,
      'depth_exceeded',
      'delete',
      'admin at depth 3',
    );

    // No operation matches and the service does not deny unmatched: the service's own rule (none).
    expect(
      await h.w.check({
        token: await origin(),
        sid: 'orders',
        method: 'PATCH',
        path: '/orders/42',
      }),
      200,
      undefined,
      undefined,
      'unmatched',
    );
  });

  it('gRPC: per-method rules, first listed wins, everything else refused', async () => {
    const fromCheckout = await via(['checkout']);
    expect(
      await h.w.check({
        token: fromCheckout,
        sid: 'payments',
        method: 'POST',
        path: '/shop.Payments/Charge',
      }),
      200,
      undefined,
      'charge',
      'checkout charges',
    );
    const fromCart = await via(['cart'], ['reader']);
    expect(
      await h.w.check({
        token: fromCart,
        sid: 'payments',
        method: 'POST',
        path: '/shop.Payments/Charge',
      }),
      403,
      'caller_not_allowed',
      'charge',
      'cart charges: the first match decides',
    );
    expect(
      await h.w.check({
        token: fromCart,
        sid: 'payments',
        method: 'POST',
        path: '/shop.Payments/Get',
      }),
      200,
      undefined,
      'lookups',
      'a reader looks up',
    );
    expect(
      await h.w.check({
        token: fromCart,
        sid: 'payments',
        method: 'POST',
        path: '/shop.Refunds/Get',
      }),
      403,
      'operation_not_found',
      undefined,
      'another service',
    );
    expect(
      await h.w.check({ token: fromCart, sid: 'payments' }),
      403,
      'operation_not_found',
      undefined,
      'no path matches nothing',
    );
  });

  it('refuses paths that are not normalised, each with its reason; /Orders reads two ways', async () => {
    const reader = await origin(['reader']);
    for (const path of [
      '/orders/../admin',
      '/orders/%2e%2e/admin',
      '//admin',
      '/orders/1;x',
      '/orders/%2Fadmin',
      '/orders\\admin',
    ]) {
      const result = await h.w.check({ token: reader, sid: 'orders', method: 'GET', path });
      expect(result, 400, 'invalid_path', undefined, path);
      assert.equal(result.grpcCode, 3, `${path}: INVALID_ARGUMENT`);
    }
    // Matching is case-sensitive, but /Orders/1 is /orders/* to a case-insensitive router
    // (ASP.NET Core): the readings disagree, so it is refused rather than given the service rule.
    expect(
      await h.w.check({
        token: await origin(),
        sid: 'orders',
        method: 'GET',
        path: '/Orders/1',
      }),
      400,
      'invalid_path',
      undefined,
      '/Orders',
    );
    expect(
      await h.w.check({
        token: await origin(),
        sid: 'payments',
        method: 'POST',
        path: '/Shop.Payments/Get',
      }),
      400,
      'invalid_path',
      undefined,
      '/Shop…',
    );
  });

  it('runs a dry-run service next to an enforcing one in one run; an operation can enforce inside a dry-run service', async () => {
    const plain = await origin();
    const dry = await h.w.check({
      token: plain,
      sid: 'audit-dry',
      method: 'POST',
      path: '/audit',
    });
    assert.equal(dry.allowed, true, 'dry-run lets it through');
    assert.ok(dry.forwardedToken, 'and mints');
    assert.equal(dry.metadata['decision'], 'shadow_allow');
    assert.equal(line()['reason'], 'role_missing');
    assert.equal(line()['shadow_scope'], 'service');
    assert.equal(line()['operation'], 'write');

    expect(
      await h.w.check({ token: plain, sid: 'audit-live', method: 'POST', path: '/audit' }),
      403,
      'role_missing',
      'write',
      'enforcing neighbour',
    );

    expect(
      await h.w.check({ token: plain, sid: 'mixed', path: '/strict' }),
      403,
      'role_missing',
      'strict',
      'operation says enforce',
    );
    const loose = await h.w.check({ token: plain, sid: 'mixed', path: '/loose' });
    assert.equal(loose.allowed, true);
    assert.equal(line()['shadow_scope'], 'service');
    // A path the dry-run service cannot read is refused all the same: there is no rule to try out.
    expect(
      await h.w.check({ token: plain, sid: 'audit-dry', path: '/a/../audit' }),
      400,
      'invalid_path',
      undefined,
      'invalid path in dry-run',
    );

    const metrics = String(await h.w.metrics?.render());
    assert.match(metrics, /authz_decisions_total\{[^}]*operation="write"[^}]*\}/);
  });
});
