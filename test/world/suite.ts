/**
 * A world for one `describe`: its IdPs (LocalIssuers, each registered for its tenant) and records
 * declared once, started before the suite's tests and stopped after them, at the level asked for.
 *
 *     const s = worldSuite('handler', { idps: { acme: {} }, tenants: [tenant('acme', …)] });
 *     it('…', async () => { const r = await s.w.check({ token: await s.idp.mint(…), sid: 'A' }); });
 */
import { after, before } from 'node:test';
import { LocalIssuer, type LocalIssuerOptions } from '../../src/demo/local-issuer.js';
import type { OwnKeys } from '../../src/keys/own-keys.js';
import type { RegistryContents } from '../../src/registry/memory-registry.js';
import { issuer } from '../helpers/records.js';
import { type Level, type World, type WorldOptions, startWorld } from './world.js';

export interface IdpSpec {
  /** The tenant its tokens belong to; default: the IdP's name. */
  readonly tenant?: string;
  /** Further fields of its issuer record, as the registry file spells them (mints_for, …). */
  readonly record?: Record<string, unknown>;
  /** How the LocalIssuer signs (alg) and answers. */
  readonly start?: LocalIssuerOptions;
  /** Started but not in the registry: a stranger's IdP. */
  readonly unregistered?: boolean;
}

export interface SuiteSpec extends Partial<Omit<RegistryContents, 'issuers'>> {
  /** IdPs by name; default one, `acme`, for tenant acme. */
  readonly idps?: Readonly<Record<string, IdpSpec>>;
  /** Issuer records the world registers besides its IdPs. */
  readonly issuers?: RegistryContents['issuers'];
  readonly env?: Record<string, string>;
  readonly ownKeys?: OwnKeys;
  readonly now?: () => number;
}

export interface Suite {
  /** The world, once the suite has started. */
  readonly w: World;
  /** The IdPs by name. */
  readonly idps: Readonly<Record<string, LocalIssuer>>;
  /** The first IdP. */
  readonly idp: LocalIssuer;
  /** The IdP of that name. */
  of(name: string): LocalIssuer;
}

/** Start the IdPs and the world before the suite's tests, stop them after; see the file comment. */
export function worldSuite(level: Level, spec: SuiteSpec = {}): Suite {
  const specs = Object.entries(spec.idps ?? { acme: {} });
  return worldSuiteWith(
    level,
    Object.fromEntries(specs.map(([name, idp]) => [name, idp.start ?? {}])),
    (idps) => ({
      contents: {
        issuers: [
          ...specs
            .filter(([, idp]) => idp.unregistered !== true)
            .map(([name, idp]) =>
              issuer({
                issuer: idps[name]?.issuer,
                tenant: idp.tenant ?? name,
                jwks_uri: idps[name]?.jwksUri,
                ...idp.record,
              }),
            ),
          ...(spec.issuers ?? []),
        ],
        tenants: spec.tenants ?? [],
        services: spec.services ?? [],
        principals: spec.principals ?? {},
      },
      ...(spec.env ? { env: spec.env } : {}),
      ...(spec.ownKeys ? { ownKeys: spec.ownKeys } : {}),
      ...(spec.now ? { now: spec.now } : {}),
    }),
  );
}

/**
 * The same with the world's options built from the started IdPs (records that name them, …):
 * `idps` names each IdP with how it starts.
 */
export function worldSuiteWith<N extends string>(
  level: Level,
  idps: Readonly<Record<N, LocalIssuerOptions>>,
  build: (idps: Readonly<Record<N, LocalIssuer>>) => WorldOptions,
): Suite {
  const started: Record<string, LocalIssuer> = {};
  const names = Object.keys(idps) as N[];
  let world: World | undefined;
  before(async () => {
    for (const name of names) started[name] = await LocalIssuer.start(idps[name]);
    world = await startWorld(level, build(started as Record<N, LocalIssuer>));
  });
  after(async () => {
    await world?.stop();
    for (const idp of Object.values(started)) await idp.stop();
  });
  const of = (name: string): LocalIssuer => {
    const idp = started[name];
    if (idp === undefined) throw new Error(`no IdP ${name} in this world`);
    return idp;
  };
  return {
    get w() {
      if (world === undefined) throw new Error('the world starts before the suite');
      return world;
    },
    idps: started,
    get idp() {
      return of(names[0] ?? '');
    },
    of,
  };
}

/** Walk `sids` from `token`: the token forwarded after the last hop (each hop must be allowed). */
export async function walkWorld(w: World, token: string, sids: readonly string[]): Promise<string> {
  let current = token;
  for (const sid of sids) {
    const hop = await w.check({ token: current, sid });
    if (!hop.allowed || hop.forwardedToken === undefined)
      throw new Error(`hop ${sid}: ${hop.httpStatus} ${hop.reason}`);
    current = hop.forwardedToken;
  }
  return current;
}
