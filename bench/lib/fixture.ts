/**
 * What the servers are configured with: a LocalIssuer running in the coordinator, a registry file
 * naming it (and an HS256 issuer for the memory run), a key file two replicas can share, and the
 * padding that brings origin tokens to BENCH_ORIGIN_BYTES.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { generateKeyFile } from '../../src/keys/own-keys.js';
import type { Knobs } from './knobs.js';
import { log } from './log.js';
import { originClaims, originPad } from './requests.js';
import type { ServeOptions } from './serve-options.js';

export interface Fixture {
  readonly issuer: LocalIssuer;
  /** Secret of the `bench-hs256` issuer (`secret_env: BENCH_HS_SECRET`). */
  readonly hsSecret: string;
  readonly registryFile: string;
  /** MATRYOSHKA_SIGNING_KEYS of the peer runs: two replicas with one key file, as in deploy/kubernetes. */
  readonly sharedKeysFile: string;
  /** Appended to origin claims to reach BENCH_ORIGIN_BYTES. */
  readonly pad: string;
  readonly originTokenLength: number;
}

export async function prepareFixture(knobs: Knobs, workDir: string): Promise<Fixture> {
  const issuer = await LocalIssuer.start({ alg: 'ES256' });
  const hsSecret = randomBytes(32).toString('base64url');
  const registryFile = join(workDir, 'registry.yaml');
  writeFileSync(
    registryFile,
    [
      'issuers:',
      `  - issuer: ${issuer.issuer}`,
      '    tenant: bench',
      `    jwks_uri: ${issuer.jwksUri}`,
      '    algorithms: [ES256]',
      '  - issuer: bench-hs256',
      '    tenant: bench',
      '    algorithms: [HS256]',
      '    secret_env: BENCH_HS_SECRET',
      'tenants:',
      '  bench: {}',
      'services:',
      '  dest: { tenant: bench }',
      '',
    ].join('\n'),
  );
  const sharedKeysFile = join(workDir, 'signing-keys.json');
  writeFileSync(sharedKeysFile, `${JSON.stringify(await generateKeyFile(), null, 2)}\n`, {
    mode: 0o600,
  });
  const pad = await originPad(issuer, knobs.originBytes);
  const sampleOrigin = await issuer.mint(originClaims(1, pad), { ttl: 3600 });
  log(`origin tokens: ${sampleOrigin.length} characters (ES256, LocalIssuer at ${issuer.issuer})`);
  return {
    issuer,
    hsSecret,
    registryFile,
    sharedKeysFile,
    pad,
    originTokenLength: sampleOrigin.length,
  };
}

export function fixtureServeOptions(
  fixture: Fixture,
  logLevel: string,
  memoEntries?: number,
  signingKeysFile?: string,
): ServeOptions {
  return {
    logLevel,
    registryFile: fixture.registryFile,
    hsSecret: fixture.hsSecret,
    ...(memoEntries !== undefined ? { memoEntries } : {}),
    ...(signingKeysFile !== undefined ? { signingKeysFile } : {}),
  };
}
