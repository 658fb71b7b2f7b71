/**
 * The HTTP authorizer behind a proxy running its shipped config: a LocalIssuer registered for
 * tenant acme, the service (gRPC harness with its HTTP authorization listener) with the given
 * service records, the echoing upstream, and the proxy in front of both.
 */
import assert from 'node:assert/strict';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { ServicePolicy } from '../../src/registry/records.js';
import { type Harness, startHarness } from './harness.js';
import { type ProxyTargets, type RunningProxy, startEcho } from './proxies.js';
import { localIssuer } from './records.js';
import { suiteParts } from './suite-parts.js';

export interface ProxiedAuthz {
  readonly idp: LocalIssuer;
  readonly h: Harness;
  readonly echo: Awaited<ReturnType<typeof startEcho>>;
  readonly proxy: RunningProxy;
  stop(): Promise<void>;
}

export async function startProxiedAuthz(
  start: (targets: ProxyTargets) => Promise<RunningProxy>,
  services: readonly ServicePolicy[],
): Promise<ProxiedAuthz> {
  const idp = await LocalIssuer.start();
  const h = await startHarness({
    env: { MATRYOSHKA_AUTHZ_HTTP_PORT: '0' },
    contents: { issuers: [localIssuer(idp, 'acme')], services: [...services] },
  });
  const echo = await startEcho();
  const authzPort = h.service.authzHttpPort;
  assert.ok(authzPort !== undefined, 'the HTTP authorization listener is open');
  const proxy = await start({ authzPort, upstreamPort: echo.port });
  echo.setProxy(proxy.port);
  return {
    idp,
    h,
    echo,
    proxy,
    async stop() {
      await proxy.stop();
      await echo.close();
      await h.stop();
      await idp.stop();
    },
  };
}

/** The same for one `describe`: started before its tests, stopped after them. */
export function proxiedAuthz(
  start: (targets: ProxyTargets) => Promise<RunningProxy>,
  services: readonly ServicePolicy[],
): ProxiedAuthz {
  return suiteParts(async (own) => own(await startProxiedAuthz(start, services)));
}
