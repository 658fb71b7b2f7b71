import { MatryoshkaError } from '../errors.js';
/** Bad input on the command line: one line on stderr, exit code 2, nothing done. */
export class UsageError extends MatryoshkaError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}
