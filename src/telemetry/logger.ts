import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * The process logger. Tokens and credentials are redacted by path wherever they might appear, so
 * a careless `log.info({ headers })` cannot leak a bearer token into the audit trail.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'matryoshka-authz' },
      messageKey: 'msg',
      redact: {
        paths: [
          'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
          'secret', '*.secret', 'password', '*.password', 'jwt', '*.jwt',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

export type { Logger };
