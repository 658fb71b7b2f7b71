/**
 * One describe's LocalIssuer, registered for tenant acme, and the service in front of it (a gRPC
 * harness), started before the suite's tests and stopped after them.
 *
 *     const s = idpHarness({ env: { … }, contents: { services: [service('orders')] } });
 *     it('…', async () => { await s.h.client.check({ token: await s.idp.mint(…), sid: 'orders' }); });
 */
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, type HarnessOptions, startHarness } from './harness.js';
import { localIssuer } from './records.js';
import { suiteParts } from './suite-parts.js';

export interface IdpHarnessSpec extends HarnessOptions {
  /** Further fields of the IdP's record (algorithms, mints_for, …); `contents.issuers` come after it. */
  readonly record?: Record<string, unknown>;
}

export interface IdpHarness {
  readonly idp: LocalIssuer;
  readonly h: Harness;
}

export function idpHarness(spec: IdpHarnessSpec = {}): IdpHarness {
  const { record, ...options } = spec;
  return suiteParts(async (own) => {
    const idp = own(await LocalIssuer.start());
    const h = own(
      await startHarness({
        ...options,
        contents: {
          ...options.contents,
          issuers: [localIssuer(idp, 'acme', record), ...(options.contents?.issuers ?? [])],
        },
      }),
    );
    return { idp, h };
  });
}
