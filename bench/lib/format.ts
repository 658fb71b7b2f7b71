export function mib(kib: number): string {
  return (kib / 1024).toFixed(0);
}

export function signed(x: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
}

/** Mean length of a list of tokens (0 for none). */
export function meanLength(xs: readonly string[]): number {
  return xs.reduce((a, t) => a + t.length, 0) / Math.max(1, xs.length);
}
