/**
 * What one `describe` shares (IdPs, harnesses, receivers, …), started once before its tests and
 * stopped after them, the last started first, instead of a `let` per part and hand-written hooks.
 *
 *     const s = suiteParts(async (own) => {
 *       const idp = own(await LocalIssuer.start());
 *       const h = own(await startHarness({ contents: { issuers: [localIssuer(idp, 'acme')] } }));
 *       return { idp, h };
 *     });
 *     it('…', async () => { await s.h.client.check({ token: await s.idp.mint(…), sid: 'A' }); });
 */
import { after, before } from 'node:test';

/** Anything with a way to stop it: `stop()` (servers, IdPs) or `close()` (clients). */
export type Stoppable = { stop(): unknown } | { close(): unknown };

/** Registers `part` to be stopped after the suite; returns it. */
export type Own = <P extends Stoppable>(part: P) => P;

export function suiteParts<T extends object>(start: (own: Own) => Promise<T>): T {
  const owned: Stoppable[] = [];
  let parts: T | undefined;
  before(async () => {
    parts = await start((part) => {
      owned.push(part);
      return part;
    });
  });
  after(async () => {
    for (const part of owned.reverse()) await ('stop' in part ? part.stop() : part.close());
  });
  return new Proxy({} as T, {
    get(_target, key) {
      if (parts === undefined)
        throw new Error(`${String(key)}: the suite's parts start before its tests`);
      return Reflect.get(parts, key);
    },
  });
}
