import { MatryoshkaError, errnoOf } from '../errors.js';
import { environmentWithConfigFile } from '../config/config-file.js';
import { loadConfig } from '../config/config.js';
import type { Env } from '../env.js';
import { generateKeyFile } from '../keys/own-keys.js';
import type { RunningService } from '../service.js';
import { createLogger } from '../telemetry/logger.js';
import { type Command, type Group, type Leaf, synopses } from './command.js';
import { EXPLAIN } from './explain-command.js';
import { INSPECT } from './inspect-command.js';
import { ISSUER, PRINCIPAL, REGISTRY, SERVICE, TENANT } from './registry-commands.js';
import { TOKEN } from './token-command.js';
import { UsageError } from './usage-error.js';
import { writeNamedFile, writeProblem } from './write-file.js';

async function serve(env: Env): Promise<void> {
  // Loaded here, not at the top: every other command (and --help) starts without the servers,
  // the gRPC stack and the OpenTelemetry SDK.
  const [{ routeGrpcLogs }, { startService }, { TRACING_FLUSH_MS, startTracing }] =
    await Promise.all([
      import('../server/grpc-server.js'),
      import('../service.js'),
      import('../telemetry/tracing.js'),
    ]);
  const config = loadConfig(environmentWithConfigFile(env));
  const logger = createLogger(config.logLevel);
  routeGrpcLogs((detail) => logger.warn({ detail }, 'grpc-js'));
  if (config.redisUrl === undefined && config.registryFile === undefined) {
    logger.info(
      { trusted_issuers: [config.issuer], try: 'npm run demo' },
      'embedded registry is empty: only tokens minted by this service are trusted; set MATRYOSHKA_REGISTRY_FILE to register issuers',
    );
  }
  const tracing = await startTracing(env, (detail) =>
    logger.warn(
      { detail, endpoint: env['OTEL_EXPORTER_OTLP_ENDPOINT'] },
      'spans cannot be exported (OTLP endpoint unreachable?); further failures are not logged',
    ),
  );
  logger.info(
    {
      tracing: tracing.enabled ? 'otlp (OTEL_* variables)' : 'off (no OTEL_EXPORTER_OTLP_ENDPOINT)',
      metrics: '/metrics',
    },
    'telemetry',
  );
  // Signals are taken before the ports open: a SIGTERM arriving right after "serving" (or while
  // starting) must drain and exit 0, not kill the process by node's default.
  let service: RunningService | undefined;
  let requested: string | undefined;
  let stopping = false;
  const stop = (signal: string): void => {
    if (service === undefined) {
      requested ??= signal;
      return;
    }
    if (stopping) return;
    stopping = true;
    logger.info(
      { signal, grace_ms: config.shutdownGraceMs },
      'shutting down: health NOT_SERVING, draining in-flight checks',
    );
    const started = Date.now();
    service
      .close()
      // The spans' flush gets what is left of the drain time (a little at least), never more.
      .then(() =>
        tracing.shutdown(
          Math.min(
            TRACING_FLUSH_MS,
            Math.max(250, config.shutdownGraceMs - (Date.now() - started)),
          ),
        ),
      )
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The registry file is followed anyway (watch and poll); SIGHUP asks for it now.
  process.on('SIGHUP', () => service?.reloadRegistry());
  service = await startService(config, logger, { env });
  if (requested !== undefined) stop(requested);
}

const SERVE: Leaf = {
  synopsis: '',
  details: [
    'run the service; it takes no flags: everything comes from the environment (and',
    'MATRYOSHKA_CONFIG_FILE), see docs/configuration.md. Stops cleanly on SIGTERM or SIGINT.',
  ],
  options: {},
  async run({ env }) {
    await serve(env);
    return -1;
  },
};

const KEYS: Group = {
  verbs: {
    generate: {
      synopsis: '[--out FILE]',
      details: [
        'write a JWK Set with private keys for MATRYOSHKA_SIGNING_KEYS (an ES256 signing key and',
        'an ECDH-ES P-256 sealing key)',
        '--out FILE   write to FILE (mode 0600) instead of standard output',
      ],
      options: { out: { type: 'string' } },
      async run({ values }, out) {
        const text = JSON.stringify(await generateKeyFile(), null, 2);
        const file = values['out'];
        if (typeof file !== 'string') out(text);
        else writeNamedFile('--out', file, `${text}\n`);
        return 0;
      },
    },
  },
};

const CERTS: Group = {
  verbs: {
    generate: {
      synopsis: '--dir D [--host H]... [--days N]',
      details: [
        'a development CA, server and client certificates for mTLS (development only)',
        '--dir D      required; where ca.pem, server.pem, client.pem and their keys are written',
        '--host H     repeatable; names and addresses of the server certificate',
        '--days N     validity in days (default 30)',
      ],
      options: {
        dir: { type: 'string' },
        host: { type: 'string', multiple: true },
        days: { type: 'string', default: '30' },
      },
      async run({ values }, out) {
        const dir = values['dir'];
        if (typeof dir !== 'string') throw new UsageError('--dir is required');
        const days = String(values['days']);
        if (!/^\d{1,4}$/.test(days) || Number(days) < 1)
          throw new UsageError('--days must be a whole number of days');
        const { DEFAULT_DEV_HOSTS, generateDevCertificates } = await import('../tls/dev-certs.js');
        const hosts = (values['host'] as string[] | undefined) ?? DEFAULT_DEV_HOSTS;
        for (const host of hosts)
          if (!/^[A-Za-z0-9.:*-]{1,253}$/.test(host))
            throw new UsageError(`--host ${host} is not a DNS name or IP address`);
        let files: string[];
        try {
          files = await generateDevCertificates(dir, { hosts, days: Number(days) });
        } catch (error) {
          if (error instanceof MatryoshkaError || errnoOf(error) === undefined) throw error;
          throw writeProblem('--dir', dir, error);
        }
        out(files.join('\n'));
        return 0;
      },
    },
  },
};

/** Every command; the usage text and --help of each come from here. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  serve: SERVE,
  inspect: INSPECT,
  explain: EXPLAIN,
  keys: KEYS,
  certs: CERTS,
  issuer: ISSUER,
  tenant: TENANT,
  service: SERVICE,
  principal: PRINCIPAL,
  registry: REGISTRY,
  token: TOKEN,
};

export const REGISTRY_COMMANDS = new Set(['issuer', 'tenant', 'service', 'principal', 'registry']);

export const USAGE = [
  'usage: matryoshka-authz <command> [--help]',
  ...Object.entries(COMMANDS)
    .filter(([name]) => !REGISTRY_COMMANDS.has(name))
    .flatMap(([name, command]) => synopses(`  ${name}`, command)),
  'registry commands (need REDIS_URL; every change reaches every replica within a second):',
  ...Object.entries(COMMANDS)
    .filter(([name]) => REGISTRY_COMMANDS.has(name))
    .flatMap(([name, command]) => synopses(`  ${name}`, command)),
  '`matryoshka-authz <command> --help` says more about each.',
].join('\n');
