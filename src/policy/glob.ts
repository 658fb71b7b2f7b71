import { LRUCache } from 'lru-cache';
import { isIdentifier } from '../header-grammar.js';

/** Shell-style globs over service ids: `*` any run of characters, `?` one character. */
const compiled = new LRUCache<string, RegExp>({ max: 4096 });

/**
 * Whether `value` is a service id the glob covers. `*` would also cover a comma or a control
 * character (`partner-*` against `partner-x,gateway`), so a value outside the sid grammar matches
 * no glob at all: a glob grants only names that are one element of `x-auth-chain`.
 */
export function globMatches(glob: string, value: string): boolean {
  if (!isIdentifier(value)) return false;
  let re = compiled.get(glob);
  if (re === undefined) {
    const body = glob
      .replace(/[.+^${}()|[\]\\/]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    re = new RegExp(`^${body}$`);
    compiled.set(glob, re);
  }
  return re.test(value);
}
