import { MatryoshkaError } from '../errors.js';
/**
 * Bad input on the command line: exit code 2, nothing done. One line on stderr, followed by the
 * usage of the command when the mistake is in its shape (an unknown command or flag).
 */
export class UsageError extends MatryoshkaError {
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super('ERR_USAGE', message);
  }
}
