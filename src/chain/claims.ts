/**
 * Reading registered claims the same way everywhere: numeric dates, audiences, roles.
 * Each reader returns `undefined` for "absent" and throws ClaimError for "present but invalid".
 */
export class ClaimError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClaimError';
  }
}

export function numericDate(payload: Readonly<Record<string, unknown>>, name: 'exp' | 'nbf' | 'iat'): number | undefined {
  const value = payload[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new ClaimError(`${name} is not a NumericDate`);
  return value;
}

export function audiences(payload: Readonly<Record<string, unknown>>): string[] {
  const aud = payload['aud'];
  if (aud === undefined) return [];
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) return aud as string[];
  throw new ClaimError('aud is not a string or list of strings');
}

/** A dotted path (`realm_access.roles`) into the payload; an array of strings or a space/comma list. */
export function rolesAt(payload: Readonly<Record<string, unknown>>, path: string): string[] {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
    if (!Object.prototype.hasOwnProperty.call(value, part)) return [];
    value = (value as Record<string, unknown>)[part];
  }
  const list = typeof value === 'string' ? value.split(/[\s,]+/) : Array.isArray(value) ? value : [];
  return list.filter((r): r is string => typeof r === 'string' && r.length > 0 && r.length <= 256 && !/[,\s]/.test(r)).slice(0, 256);
}

/** The user a token speaks for: `sub`, or for client-credentials tokens without one, the client. */
export function subjectOf(payload: Readonly<Record<string, unknown>>): string | undefined {
  for (const name of ['sub', 'client_id', 'azp']) {
    const value = payload[name];
    if (typeof value === 'string' && value.length > 0 && value.length <= 1024) return value;
  }
  return undefined;
}
