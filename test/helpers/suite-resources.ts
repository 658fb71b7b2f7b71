import { after, before } from 'node:test';

type Dispose<T> = (value: T) => Promise<unknown> | unknown;

/** What ends itself: a server we started (`dispose`) or a service or IdP (`stop`). */
type Endable = { dispose(): Promise<unknown> | unknown } | { stop(): Promise<unknown> | unknown };

const end = (value: Endable): Promise<unknown> | unknown =>
  'dispose' in value ? value.dispose() : value.stop();

/**
 * What the tests of the enclosing describe share: each resource made in a `before` hook in the
 * order it is added, all disposed of in one `after` hook in the reverse order — a service goes
 * before the Redis it reads, which node:test's own after hooks (run first-registered first) would
 * not give. A resource that was never made is not disposed of.
 */
export class SuiteResources {
  private readonly made: Array<() => Promise<unknown> | unknown> = [];

  constructor() {
    after(async () => {
      const failures: unknown[] = [];
      for (const dispose of this.made.splice(0).reverse()) {
        try {
          await dispose();
        } catch (error) {
          failures.push(error);
        }
      }
      if (failures.length > 0) throw failures[0];
    });
  }

  /**
   * The resource `make` gives, read through the returned function once the suite has begun;
   * disposed of by `dispose`, or by its own `dispose()` or `stop()`.
   */
  add<T extends Endable>(make: () => Promise<T> | T): () => T;
  add<T>(make: () => Promise<T> | T, dispose: Dispose<T>): () => T;
  add<T>(make: () => Promise<T> | T, dispose?: Dispose<T>): () => T {
    let value: { readonly it: T } | undefined;
    before(async () => {
      const made = await make();
      value = { it: made };
      // Without `dispose`, the first overload has made sure T ends itself.
      this.made.push(() => (dispose === undefined ? end(made as Endable) : dispose(made)));
    });
    return () => {
      if (value === undefined) throw new Error('a suite resource read before the suite began');
      return value.it;
    };
  }
}

/** One resource for the enclosing describe (see SuiteResources). */
export function perSuite<T extends Endable>(make: () => Promise<T> | T): () => T;
export function perSuite<T>(make: () => Promise<T> | T, dispose: Dispose<T>): () => T;
export function perSuite<T>(make: () => Promise<T> | T, dispose?: Dispose<T>): () => T {
  // Without `dispose`, the first overload has made sure T ends itself.
  return new SuiteResources().add(make, dispose ?? ((made) => end(made as Endable)));
}
