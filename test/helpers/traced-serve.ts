/**
 * `serve` spawned for one `describe` as `npm start` runs it, its traces exported to an OTLP
 * receiver: a LocalIssuer registered for tenant acme in a registry file, a gRPC client in front.
 * Started before the suite's tests, stopped after them.
 *
 *     const s = tracedServe({ env: { MATRYOSHKA_MODE: 'shadow' } });
 *     it('…', async () => { const r = await s.client.check({ token: await s.idp.mint(…), sid: 'A' }); });
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { emptyContents } from '../../src/registry/memory-registry.js';
import type { TenantPolicy } from '../../src/registry/records.js';
import { registryDocument } from '../world/world.js';
import { type OtlpSpan, OtlpReceiver } from './otlp-receiver.js';
import { type Served, eventually, spawnServe } from './processes.js';
import { localIssuer } from './records.js';
import { suiteParts } from './suite-parts.js';

export interface TracedServeSpec {
  /** Further fields of the IdP's issuer record, as the registry file spells them (mints_for, …). */
  readonly record?: Record<string, unknown>;
  readonly tenants?: TenantPolicy[];
  /** Settings besides the registry file, local issuers and the exporter's. */
  readonly env?: Record<string, string>;
}

export interface TracedServe {
  readonly idp: LocalIssuer;
  readonly receiver: OtlpReceiver;
  readonly served: Served;
  readonly client: EnvoyLikeClient;
  /** The SERVER span of one trace, once exported. */
  spanOf(traceId: string): Promise<OtlpSpan>;
  /** The audit line of one request id, once written (within `timeoutMs`). */
  auditLine(requestId: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function tracedServe(spec: TracedServeSpec = {}): TracedServe {
  return suiteParts(async (own) => {
    const idp = own(await LocalIssuer.start());
    const receiver = own(await OtlpReceiver.start());
    const file = join(mkdtempSync(join(tmpdir(), 'matryoshka-traced-')), 'registry.json');
    writeFileSync(
      file,
      registryDocument({
        ...emptyContents(),
        issuers: [localIssuer(idp, 'acme', spec.record)],
        tenants: spec.tenants ?? [],
      }),
    );
    const served = own(
      await spawnServe({
        MATRYOSHKA_REGISTRY_FILE: file,
        MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
        ...receiver.env,
        ...spec.env,
      }),
    );
    const client = own(new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`));
    return {
      idp,
      receiver,
      served,
      client,
      spanOf: (traceId: string) => receiver.serverSpan(traceId),
      auditLine: async (requestId: string, timeoutMs = 3000) => {
        await eventually(
          async () => served.lines.some((l) => l['request_id'] === requestId),
          timeoutMs,
          'audit line',
        );
        return served.lines.find((l) => l['request_id'] === requestId) as Record<string, unknown>;
      },
    };
  });
}
