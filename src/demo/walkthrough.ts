/**
 * `npm run demo`: one user request walked through four services, with this process playing the
 * identity provider, the authz service and Envoy. Loopback only, nothing to configure. It checks
 * what it shows and exits 1 when the service misbehaves, so it doubles as a smoke test.
 */
import { invariant, messageOf } from '../errors.js';
import { inspectChain } from '../chain/inspect.js';
import { renderTree } from '../cli/render-tree.js';
import { loadConfig } from '../config/config.js';
import { MemoryRegistry } from '../registry/memory-registry.js';
import { parseIssuer, parseService, parseTenant } from '../registry/records.js';
import { type RunningService, startService } from '../service.js';
import { createLogger } from '../telemetry/logger.js';
import { startTracing } from '../telemetry/tracing.js';
import { type CheckResult, EnvoyLikeClient } from './envoy-client.js';
import { LocalIssuer } from './local-issuer.js';

const TENANT = 'demo';
/** Destinations in call order: client → gateway → A → B → C, then C calls back into A. */
const PATH = ['gateway', 'A', 'B', 'C', 'A'] as const;

const HEADER = `matryoshka-authz demo: one request from user "alice" crossing services gateway → A → B → C → A.
At every hop Envoy asks the authz service whether the call may go on. On ALLOW the service mints a
new token that wraps the one it received (a Matryoshka doll), so the whole call path travels with
the request. The last hop, C → A, calls A a second time: it must be refused as recursion.
(Denial reasons are shown because this demo turns on MATRYOSHKA_DEBUG_REASONS; in production the
reason stays in the logs, spans and metrics and never reaches the caller.)`;

function buildRegistry(idp: LocalIssuer): MemoryRegistry {
  // Through the same parsers as the YAML file and the CLI, so the demo cannot use a record they would refuse.
  return new MemoryRegistry({
    issuers: [
      parseIssuer(
        { issuer: idp.issuer, tenant: TENANT, jwks_uri: idp.jwksUri, algorithms: ['ES256'] },
        'issuers[0]',
        true,
      ),
    ],
    tenants: [parseTenant(TENANT, { recursion: 'deny', max_depth: 8 }, `tenants.${TENANT}`)],
    services: [
      parseService('gateway', { tenant: TENANT, entry: true }, 'services.gateway'),
      parseService('A', { tenant: TENANT }, 'services.A'),
      parseService('B', { tenant: TENANT, allowed_callers: ['A'] }, 'services.B'),
      parseService('C', { tenant: TENANT, required_roles: ['reader'] }, 'services.C'),
    ],
    principals: {},
  });
}

function hopLine(hop: number, from: string, to: string, result: CheckResult): string {
  const cells = [
    String(hop).padStart(3),
    `${from} → ${to}`.padEnd(16),
    (result.allowed ? 'ALLOW' : 'DENY').padEnd(6),
    String(result.httpStatus).padEnd(7),
    (result.headers['x-auth-depth'] ?? '-').padEnd(6),
    result.allowed
      ? (result.headers['x-auth-chain'] ?? '-')
      : `reason: ${result.headers['x-authz-reason'] ?? '(none)'}`,
  ];
  return cells.join('  ');
}

/**
 * Plays Envoy for every hop; returns every token minted, the last being the one service C holds.
 * `quiet`: check the same things without printing the hops (the second, compact walk).
 */
async function walk(client: EnvoyLikeClient, origin: string, quiet = false): Promise<string[]> {
  const print = quiet ? (_: string) => {} : (line: string) => console.log(line);
  print(
    `\nhop  ${'call'.padEnd(16)}  ${'result'.padEnd(6)}  ${'status'.padEnd(7)}  ${'depth'.padEnd(6)}  chain`,
  );
  const minted: string[] = [];
  let token = origin;
  for (const [i, to] of PATH.entries()) {
    const from = PATH[i - 1] ?? 'client';
    const hop = `hop ${i + 1} (${from} → ${to})`;
    // What Envoy forwarded on the previous hop is what the caller presents on this one.
    const result = await client.check({ token, sid: to });
    print(hopLine(i + 1, from, to, result));
    if (i === PATH.length - 1) {
      const reason = result.headers['x-authz-reason'];
      if (result.allowed || reason !== 'recursion') {
        invariant(
          `${hop} should be denied for recursion, got ${result.allowed ? 'ALLOW' : `DENY ${reason ?? '(no reason)'}`}`,
        );
      }
      break;
    }
    if (!result.allowed)
      invariant(`${hop} was denied: ${result.headers['x-authz-reason'] ?? '(no reason)'}`);
    if (result.forwardedToken === undefined)
      invariant(`${hop} was allowed but no token was forwarded`);
    const expected = PATH.slice(0, i + 1).join(',');
    if (result.headers['x-auth-chain'] !== expected)
      invariant(`${hop}: chain ${result.headers['x-auth-chain']}, expected ${expected}`);
    token = result.forwardedToken;
    minted.push(token);
  }
  return minted;
}

function showChain(origin: string, final: string, form: string): void {
  const inspection = inspectChain(final);
  if (inspection.stop.kind !== 'origin')
    invariant(`the final chain does not open to its origin: ${inspection.stop.detail}`);
  console.log(
    `\nThe ${form} token service C received, opened from the origin (root) outwards (not verified, as \`inspect\` does):`,
  );
  console.log(renderTree(inspection).replace(/^/gm, '  '));
  console.log(
    `Size: ${final.length} characters at depth ${inspection.levels.length - 1} (the origin alone: ${origin.length}).`,
  );
}

/** The two forms hop by hop: the nested one grows by a third per hop, the compact one by a record. */
function showSizes(origin: string, nested: readonly string[], compact: readonly string[]): void {
  console.log(`\nThe same walk in both chain forms (characters of the forwarded token):`);
  console.log(`  ${'depth'.padEnd(6)}  ${'nested'.padStart(7)}  ${'compact'.padStart(7)}`);
  console.log(
    `  ${'0'.padEnd(6)}  ${String(origin.length).padStart(7)}  ${String(origin.length).padStart(7)}`,
  );
  for (const [i, token] of nested.entries()) {
    const other = compact[i];
    if (other === undefined) invariant('the compact walk minted fewer tokens');
    console.log(
      `  ${String(i + 1).padEnd(6)}  ${String(token.length).padStart(7)}  ${String(other.length).padStart(7)}`,
    );
  }
  console.log(
    'Nested: each level holds the previous token (gzip-compressed from depth 3 on when shorter).\n' +
      'Compact: one level of ours with a record per hop, around the origin (docs/compact-chains.md).',
  );
}

async function startAuthz(idp: LocalIssuer, format: 'nested' | 'compact'): Promise<RunningService> {
  const config = loadConfig({
    MATRYOSHKA_GRPC_PORT: '0',
    MATRYOSHKA_HTTP_PORT: '0',
    MATRYOSHKA_HOST: '127.0.0.1',
    MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
    MATRYOSHKA_DEBUG_REASONS: 'true',
    MATRYOSHKA_CHAIN_FORMAT: format,
    LOG_LEVEL: 'silent',
  });
  return startService(config, createLogger(config.logLevel), { registry: buildRegistry(idp) });
}

async function main(): Promise<void> {
  let idp: LocalIssuer | undefined;
  let service: RunningService | undefined;
  let client: EnvoyLikeClient | undefined;
  let compactService: RunningService | undefined;
  let compactClient: EnvoyLikeClient | undefined;
  // With OTEL_EXPORTER_OTLP_ENDPOINT set (deploy/compose does), every decision below is a span.
  const tracing = await startTracing(process.env);
  try {
    console.log(HEADER);
    idp = await LocalIssuer.start({ alg: 'ES256' });
    service = await startAuthz(idp, 'nested');
    compactService = await startAuthz(idp, 'compact');
    client = new EnvoyLikeClient(`127.0.0.1:${service.grpcPort}`);
    console.log(`\nlocal issuer   ${idp.issuer} (ES256), trusted for tenant "${TENANT}"`);
    console.log(
      `authz service  gRPC 127.0.0.1:${service.grpcPort}; B accepts calls only from A, C requires role "reader"`,
    );

    const origin = await idp.mint({ sub: 'alice', roles: ['reader', 'writer'] });
    const nested = await walk(client, origin);
    compactClient = new EnvoyLikeClient(`127.0.0.1:${compactService.grpcPort}`);
    const compact = await walk(compactClient, origin, true);
    showChain(origin, nested.at(-1) as string, 'nested');
    showChain(origin, compact.at(-1) as string, 'compact');
    showSizes(origin, nested, compact);
    console.log('\nDemo finished: every hop behaved as expected.');
    console.log(
      'Next: mint a token of your own and ask the service about it (README.md, "Try it with a token of your own").',
    );
    if (tracing.enabled)
      console.log(
        `Each decision was exported as a span to ${process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? 'the configured OTLP endpoint'}.`,
      );
  } finally {
    client?.close();
    compactClient?.close();
    await service?.close(1000);
    await compactService?.close(1000);
    await idp?.stop();
    await tracing.shutdown();
  }
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${messageOf(error)}`);
  process.exitCode = 1;
});
