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
