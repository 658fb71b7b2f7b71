/**
 * The command line as a function: argv in, exit code out, text through `io` (main.ts gives it the
 * process's streams; tests call it directly for what needs no process of its own).
 */
import { isUserMistake } from '../errors.js';
import { writeFileSync } from 'node:fs';
import { environmentWithConfigFile } from '../config/config-file.js';
import { loadConfig } from '../config/config.js';
import { generateKeyFile } from '../keys/own-keys.js';
import { createLogger } from '../telemetry/logger.js';
import { type Command, type Group, type Leaf, runCommand, synopses } from './command.js';
import { EXPLAIN } from './explain-command.js';
import { INSPECT } from './inspect-command.js';
import { ISSUER, PRINCIPAL, REGISTRY, SERVICE, TENANT } from './registry-commands.js';
import { UsageError } from './usage-error.js';

export interface ProgramIo {
  /** One line or block of output, without its final newline. */
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

async function serve(): Promise<void> {
  // Loaded here, not at the top: every other command (and --help) starts without the servers,
  // the gRPC stack and the OpenTelemetry SDK.
  const [{ startService }, { startTracing }] = await Promise.all([
    import('../service.js'),
    import('../telemetry/tracing.js'),
  ]);
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
  // The registry file is followed anyway (watch and poll); SIGHUP asks for it now.
  process.on('SIGHUP', () => service.reloadRegistry());
}

const SERVE: Leaf = {
  synopsis: '',
  details: [
    'run the service; it takes no flags: everything comes from the environment (and',
    'MATRYOSHKA_CONFIG_FILE), see docs/configuration.md. Stops cleanly on SIGTERM or SIGINT.',
  ],
  options: {},
  async run() {
    await serve();
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
      async run({ values }, print) {
        const text = `${JSON.stringify(await generateKeyFile(), null, 2)}\n`;
        const out = values['out'];
        if (typeof out !== 'string') print(text.trimEnd());
        else writeFileSync(out, text, { mode: 0o600 });
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
        const files = await generateDevCertificates(dir, { hosts, days: Number(days) });
        out(files.join('\n'));
        return 0;
      },
    },
  },
};

/** Every command; the usage text and --help of each come from here. */
const COMMANDS: Readonly<Record<string, Command>> = {
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
};

const REGISTRY_COMMANDS = new Set(['issuer', 'tenant', 'service', 'principal', 'registry']);

const USAGE = [
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

async function main(argv: string[], print: (text: string) => void): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '-h' || name === '--help' || name === 'help') {
    print(USAGE);
    return 0;
  }
  if (name === undefined) throw new UsageError('which command?', USAGE);
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) throw new UsageError(`unknown command ${name}`, USAGE);
  return runCommand(name, command, rest, print);
}

/** Run the command line; -1: the command keeps running (serve). */
export async function runProgram(argv: string[], io: ProgramIo): Promise<number> {
  try {
    return await main(argv, io.out);
  } catch (error) {
    // A user's mistake is one of our coded errors (or node's own flag parser's): one line, exit 2.
    // Anything else is a bug: said as such, exit 1.
    const mistake =
      isUserMistake(error) ||
      (error instanceof Error &&
        String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS_'));
    const message = error instanceof Error ? error.message : String(error);
    io.err(`matryoshka-authz: ${mistake ? message : `internal error: ${message}`}`);
    // A mistake in the shape of the command line: what was expected, on stderr too.
    if (error instanceof UsageError && error.usage !== undefined) io.err(error.usage);
    return mistake ? 2 : 1;
  }
}
