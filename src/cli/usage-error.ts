/** Bad input on the command line: one line on stderr, exit code 2, nothing done. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
