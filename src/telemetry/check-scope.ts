import { AsyncLocalStorage } from 'node:async_hooks';

/** What one Check learnt about the caches it used; read into its span and metrics. */
export interface CheckStats {
  /** The issuer keys a level needed were not in process memory (fetched, or adopted from Redis). */
  keyCacheMiss: boolean;
}

const scope = new AsyncLocalStorage<CheckStats>();

/**
 * Key lookups happen deep in the chain opener, shared by every Check; an async-local scope lets
 * them note a cache miss against the Check that caused it without threading a handle through
 * every signature.
 */
export function inCheckScope<T>(stats: CheckStats, run: () => Promise<T>): Promise<T> {
  return scope.run(stats, run);
}

export function noteKeyCacheMiss(): void {
  const stats = scope.getStore();
  if (stats !== undefined) stats.keyCacheMiss = true;
}
