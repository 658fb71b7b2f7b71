import { writeFileSync } from 'node:fs';
import { EnvironmentError, errnoOf, fileProblem } from '../errors.js';
import { UsageError } from './usage-error.js';

/**
 * A file the person named with `flag` could not be written: where it cannot be (no such folder,
 * no permission) is their mistake and names the flag; a device refusing it is the environment's.
 */
export function writeProblem(flag: string, path: string, error: unknown): Error {
  const code = errnoOf(error);
  if (code === 'ENOSPC' || code === 'EIO' || code === 'EROFS' || code === 'EDQUOT')
    return new EnvironmentError(`${flag} ${path}: cannot write (${fileProblem(error)})`);
  return new UsageError(`${flag} ${path}: cannot write (${fileProblem(error)})`);
}

/** Write `text` to the file the person named with `flag`. */
export function writeNamedFile(flag: string, path: string, text: string, mode = 0o600): void {
  try {
    writeFileSync(path, text, { mode });
  } catch (error) {
    throw writeProblem(flag, path, error);
  }
}
