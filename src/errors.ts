/**
 * Every failure this service raises on purpose derives from `MatryoshkaError` and carries a stable
 * `code`: what tests, the CLI and the Check pipeline branch on (never a message, never a class
 * name). Anything else that escapes a step is a bug or a dependency exploding: the Check answers
 * it 503 through `onUnexpected`, the CLI prints it as an internal error.
 */
export const ERROR_CODES = [
  'ERR_DENIED',
  'ERR_COMPACT_FORMAT',
  'ERR_STACK_FORMAT',
  'ERR_STACK_TOO_LARGE',
  'ERR_CLAIM_INVALID',
  'ERR_AUDIENCE_INVALID',
  'ERR_SUBJECT_INVALID',
  'ERR_SEAL',
  'ERR_INFLATE_LIMIT',
  'ERR_INFLATE_FORMAT',
  'ERR_KEYS_UNAVAILABLE',
  'ERR_FETCH_FAILED',
  'ERR_REGISTRY_UNAVAILABLE',
  'ERR_RECORD_INVALID',
  'ERR_KEY_FILE',
  'ERR_CONFIG',
  'ERR_USAGE',
  'ERR_RECORD_UNREADABLE',
  'ERR_ENVIRONMENT',
  'ERR_INVARIANT',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class MatryoshkaError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A mistake of the person at the keyboard (flag, file, variable): one line and exit 2, no stack. */
const USER_MISTAKES: ReadonlySet<ErrorCode> = new Set([
  'ERR_CONFIG',
  'ERR_USAGE',
  'ERR_RECORD_INVALID',
  'ERR_KEY_FILE',
]);

export function isUserMistake(error: unknown): error is MatryoshkaError {
  return error instanceof MatryoshkaError && USER_MISTAKES.has(error.code);
}

/**
 * Something the command needs from outside its input is not there: Redis unreachable, a port
 * already taken, a file system refusing a write. Nobody's mistake and not a bug: exit code 3.
 */
export class EnvironmentError extends MatryoshkaError {
  constructor(message: string) {
    super('ERR_ENVIRONMENT', message);
  }
}

/** An outage of what we depend on: the CLI's exit code 3, never "internal error". */
const ENVIRONMENT_FAILURES: ReadonlySet<ErrorCode> = new Set([
  'ERR_ENVIRONMENT',
  'ERR_REGISTRY_UNAVAILABLE',
  'ERR_KEYS_UNAVAILABLE',
  'ERR_FETCH_FAILED',
]);

export function isEnvironmentFailure(error: unknown): error is MatryoshkaError {
  return error instanceof MatryoshkaError && ENVIRONMENT_FAILURES.has(error.code);
}

/** A state the code rules out was reached: a bug, said as one (exit 1, "internal error"). */
export function invariant(message: string): never {
  throw new MatryoshkaError('ERR_INVARIANT', message);
}

/**
 * The first line of what a thrown value says, whatever was thrown (an Error, a string, an object
 * from a library): the one way to quote a caught value in a message or a log field.
 */
export function messageOf(error: unknown): string {
  const text =
    error instanceof Error
      ? error.message
      : typeof error === 'string'
        ? error
        : (() => {
            try {
              return JSON.stringify(error) ?? String(error);
            } catch {
              return String(error);
            }
          })();
  return text.split('\n')[0] ?? '';
}

/** The errno-style code of a thrown value (`ENOENT`, `EADDRINUSE`), when it has one. */
export function errnoOf(error: unknown): string | undefined {
  const code =
    error !== null && typeof error === 'object' && 'code' in error
      ? (error as { code: unknown }).code
      : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** Why a file could not be read or written, in words a person at the keyboard acts on. */
export function fileProblem(error: unknown): string {
  switch (errnoOf(error)) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EISDIR':
      return 'is a directory';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return messageOf(error);
  }
}
