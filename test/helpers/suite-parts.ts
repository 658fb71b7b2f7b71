/**
 * What one `describe` shares (IdPs, harnesses, Redis servers, receivers, …), started once before
 * its tests and stopped after them, the last started first — a service stops before the Redis it
 * reads, which node:test's own `after` hooks (run first-registered first) would not give — instead
 * of a `let` per part and hand-written hooks.
 *
 *     const s = suiteParts(async (own) => {
 *       const idp = own(await LocalIssuer.start());
 *       const h = own(await startHarness({ contents: { issuers: [localIssuer(idp, 'acme')] } }));
 *       return { idp, h };
 *     });
 *     it('…', async () => { await s.h.client.check({ token: await s.idp.mint(…), sid: 'A' }); });
 *
 *     const redis = perSuite(() => RedisServer.start());   // one part: redis().url
 */
import { after, before } from 'node:test';

/** A part that ends itself: `stop()` (servers, IdPs), `dispose()` (Redis topologies) or `close()`. */
export type Stoppable = { stop(): unknown } | { dispose(): unknown } | { close(): unknown };

type Stop<P> = (part: P) => unknown;

/** Registers `part` to be stopped after the suite (by `stop`, or its own way); returns it. */
export interface Own {
  <P extends Stoppable>(part: P): P;
  <P>(part: P, stop: Stop<P>): P;
}

const stopOf = (part: Stoppable): unknown =>
  'stop' in part ? part.stop() : 'dispose' in part ? part.dispose() : part.close();

export function suiteParts<T extends object>(start: (own: Own) => Promise<T>): T {
  const owned: Array<() => unknown> = [];
  let parts: T | undefined;
  before(async () => {
    parts = await start(<P>(part: P, stop?: Stop<P>): P => {
      // Without `stop`, the first overload has made sure the part ends itself.
      owned.push(() => (stop === undefined ? stopOf(part as Stoppable) : stop(part)));
      return part;
    });
  });
  after(async () => {
    // Every part is stopped even when one fails to; the first failure is the suite's.
    const failures: unknown[] = [];
    for (const stop of owned.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  });
  return new Proxy({} as T, {
    get(_target, key) {
      if (parts === undefined)
        throw new Error(`${String(key)}: the suite's parts start before its tests`);
      return Reflect.get(parts, key);
    },
  });
}

/** One part for the enclosing describe, read through the returned function. */
export function perSuite<P extends Stoppable>(start: () => Promise<P> | P): () => P;
export function perSuite<P>(start: () => Promise<P> | P, stop: Stop<P>): () => P;
export function perSuite<P>(start: () => Promise<P> | P, stop?: Stop<P>): () => P {
  const s = suiteParts(async (own) => ({
    part: stop === undefined ? own((await start()) as Stoppable) : own(await start(), stop),
  }));
  return () => s.part as P;
}
