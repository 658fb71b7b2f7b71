import { EnvironmentError, errnoOf, messageOf } from '../errors.js';

/**
 * A listener that could not open, as the environment's failure naming the variable that chose the
 * port: a port already taken is nobody's typo, and nothing the code got wrong either.
 */
export function listenError(variable: string, address: string, error: unknown): EnvironmentError {
  const text = messageOf(error);
  const why =
    errnoOf(error) === 'EADDRINUSE' || /EADDRINUSE/.test(text)
      ? 'address already in use'
      : errnoOf(error) === 'EACCES' || /EACCES/.test(text)
        ? 'permission denied (a port below 1024 needs privileges)'
        : errnoOf(error) === 'EADDRNOTAVAIL' || /EADDRNOTAVAIL/.test(text)
          ? 'no such local address (MATRYOSHKA_HOST)'
          : text;
  return new EnvironmentError(`${variable}: cannot listen on ${address}: ${why}`);
}
