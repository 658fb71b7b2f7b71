import { LRUCache } from 'lru-cache';

/** Shell-style globs over service ids: `*` any run of characters, `?` one character. */
const compiled = new LRUCache<string, RegExp>({ max: 4096 });

export function globMatches(glob: string, value: string): boolean {
  let re = compiled.get(glob);
  if (re === undefined) {
    const body = glob.replace(/[.+^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`);
    compiled.set(glob, re);
  }
  return re.test(value);
}
