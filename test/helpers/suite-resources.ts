import { after, before } from 'node:test';

type Dispose<T> = (value: T) => Promise<void> | void;

/**
 * What the tests of the enclosing describe share: each resource made in a `before` hook in the
 * order it is added, all disposed of in one `after` hook in the reverse order — a service goes
 * before the Redis it reads, which node:test's own after hooks (run first-registered first) would
 * not give. A resource that was never made is not disposed of.
 */
export class SuiteResources {
  private readonly made: Array<() => Promise<void> | void> = [];

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

  /** The resource `make` gives, read through the returned function once the suite has begun. */
  add<T>(make: () => Promise<T> | T, dispose: Dispose<T>): () => T {
    let value: { readonly it: T } | undefined;
    before(async () => {
      const made = await make();
      value = { it: made };
      this.made.push(() => dispose(made));
    });
    return () => {
      if (value === undefined) throw new Error('a suite resource read before the suite began');
      return value.it;
    };
  }
}

/** One resource for the enclosing describe (see SuiteResources). */
export const perSuite = <T>(make: () => Promise<T> | T, dispose: Dispose<T>): (() => T) =>
  new SuiteResources().add(make, dispose);
