/** Shell-style globs over service ids: `*` any run of characters, `?` one character. */
const compiled = new Map<string, RegExp>();

export function globMatches(glob: string, value: string): boolean {
  let re = compiled.get(glob);
  if (re === undefined) {
    const body = glob.replace(/[.+^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(glob, re);
  }
  return re.test(value);
}
