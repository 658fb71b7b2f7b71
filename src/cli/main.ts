#!/usr/bin/env node
import { isUserMistake } from '../errors.js';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { environmentWithConfigFile } from '../config/config-file.js';
import { loadConfig } from '../config/config.js';
import { generateKeyFile } from '../keys/own-keys.js';
import { startService } from '../service.js';
import { createLogger } from '../telemetry/logger.js';
import { startTracing } from '../telemetry/tracing.js';
import { inspectCommand } from './inspect-command.js';
import {
  issuerCommand,
  principalCommand,
  registryCommand,
  serviceCommand,
  tenantCommand,
} from './registry-commands.js';
import { UsageError } from './usage-error.js';
import { DEFAULT_DEV_HOSTS, generateDevCertificates } from '../tls/dev-certs.js';

const USAGE = `usage: matryoshka-authz <command>
  serve                          run the service (configured by environment; see README)
  inspect [TOKEN|-] [--json]     print a chain as a tree, without verifying it
  keys generate [--out FILE]     write a JWK Set for MATRYOSHKA_SIGNING_KEYS
  certs generate --dir D [--host H]... [--days N]
                                 a development CA, server and client certificates for mTLS
registry commands (need REDIS_URL; every change reaches every replica within a second):
  issuer add --tenant T --issuer URL [--jwks-uri URL] [--audience A]... [--algorithms ES256,RS256]
             [--secret-env NAME] [--roles-claim PATH] [--mints-for GLOB,...]
  issuer list [--tenant T] [--json]          issuer remove --issuer URL
  tenant set --tenant T [--max-depth N] [--recursion deny|audit] [--sealed allow|deny] [--entry-only]
             [--chain-format nested|compact|auto] [--header-budget BYTES]
  tenant show [--tenant T] [--json]
  service set --sid S [--tenant T] [--allowed-callers GLOB,...] [--required-roles R,...] [--max-depth N]
              [--seal] [--entry] [--bind-source]
  service show [--sid S] [--json]            principal map --principal P --sid S
  registry import FILE                       load a registry YAML (the embedded-mode format) into Redis`;

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

async function serve(): Promise<void> {
  const config = loadConfig(environmentWithConfigFile(process.env));
  const logger = createLogger(config.logLevel);
  if (config.redisUrl === undefined && config.registryFile === undefined) {
    logger.info(
      { trusted_issuers: [config.issuer], try: 'npm run demo' },
      'embedded registry is empty: only tokens minted by this service are trusted; set MATRYOSHKA_REGISTRY_FILE to register issuers',
    );
  }
  const tracing = startTracing(process.env);
  logger.info(
    {
      tracing: tracing.enabled ? 'otlp (OTEL_* variables)' : 'off (no OTEL_EXPORTER_OTLP_ENDPOINT)',
      metrics: '/metrics',
    },
    'telemetry',
  );
  const service = await startService(config, logger);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info(
      { signal, grace_ms: config.shutdownGraceMs },
      'shutting down: health NOT_SERVING, draining in-flight checks',
    );
    service
      .close()
      .then(() => tracing.shutdown())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function keys(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { out: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals[0] !== 'generate' || positionals.length !== 1)
    throw new UsageError('usage: keys generate [--out FILE]');
  const text = `${JSON.stringify(await generateKeyFile(), null, 2)}\n`;
  if (values.out === undefined) process.stdout.write(text);
  else writeFileSync(values.out, text, { mode: 0o600 });
}

async function certs(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      host: { type: 'string', multiple: true },
      days: { type: 'string', default: '30' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals[0] !== 'generate' || positionals.length !== 1 || values.dir === undefined) {
    throw new UsageError('usage: certs generate --dir D [--host H]... [--days N]');
  }
  if (!/^\d{1,4}$/.test(values.days ?? '') || Number(values.days) < 1)
    throw new UsageError('--days must be a whole number of days');
  const hosts = values.host ?? DEFAULT_DEV_HOSTS;
  for (const host of hosts)
    if (!/^[A-Za-z0-9.:*-]{1,253}$/.test(host))
      throw new UsageError(`--host ${host} is not a DNS name or IP address`);
  const files = await generateDevCertificates(values.dir, { hosts, days: Number(values.days) });
  print(files.join('\n'));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      await serve();
      return -1;
    case 'inspect':
      return inspectCommand(rest, print);
    case 'keys':
      await keys(rest);
      return 0;
    case 'certs':
      await certs(rest);
      return 0;
    case 'issuer':
      await issuerCommand(rest, print);
      return 0;
    case 'tenant':
      await tenantCommand(rest, print);
      return 0;
    case 'service':
      await serviceCommand(rest, print);
      return 0;
    case 'principal':
      await principalCommand(rest, print);
      return 0;
    case 'registry':
      await registryCommand(rest, print);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      print(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${command}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    // A user's mistake is one of our coded errors (or node's own flag parser's): one line, exit 2.
    // Anything else is a bug: said as such, exit 1.
    const mistake =
      isUserMistake(error) ||
      (error instanceof Error &&
        String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS_'));
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`matryoshka-authz: ${mistake ? message : `internal error: ${message}`}\n`);
    process.exitCode = mistake ? 2 : 1;
  },
);
