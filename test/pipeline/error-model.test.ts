/**
 * One error model (src/errors.ts, src/reasons.ts): our coded failures become their denial through
 * one table; anything else — a bug, a dependency exploding — reaches `onUnexpected` and answers 503,
 * whichever step of the chain walk it comes from.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClaimError } from '../../src/chain/claims.js';
import { CompactFormatError } from '../../src/chain/compact.js';
import { StackFormatError } from '../../src/chain/auth-stack.js';
import { SealError } from '../../src/chain/seal.js';
import { ConfigError } from '../../src/config/config.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { ERROR_CODES, type MatryoshkaError, isUserMistake } from '../../src/errors.js';
import { FetchFailedError } from '../../src/keys/fetch-json.js';
import { KeysUnavailableError } from '../../src/keys/remote-jwks.js';
import { DenyError, asDenial, denying } from '../../src/reasons.js';
import { RecordError } from '../../src/registry/records.js';
import { RegistryUnavailableError } from '../../src/registry/registry.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { inProcess, walk } from '../helpers/in-process.js';
import { localIssuer, service } from '../helpers/records.js';

describe('coded errors and their denials', () => {
  it('maps each coded failure to its denial, at the position it is met', () => {
    const cases: Array<[MatryoshkaError, string, string]> = [
      [new CompactFormatError('x'), 'malformed_token', 'stack_malformed'],
      [new ClaimError('exp is not a NumericDate'), 'malformed_token', 'stack_malformed'],
      [new ClaimError('aud', 'ERR_AUDIENCE_INVALID'), 'audience_mismatch', 'audience_mismatch'],
      [new ClaimError('sub', 'ERR_SUBJECT_INVALID'), 'malformed_token', 'malformed_token'],
      [new StackFormatError('x'), 'stack_malformed', 'stack_malformed'],
      [new StackFormatError('x', true), 'stack_too_large', 'stack_too_large'],
      [new SealError('x'), 'stack_malformed', 'stack_malformed'],
      [new KeysUnavailableError('x'), 'unavailable', 'unavailable'],
      [new RegistryUnavailableError('x'), 'unavailable', 'unavailable'],
    ];
    for (const [error, outer, inner] of cases) {
      for (const [position, expected] of [
        ['malformed_token', outer],
        ['stack_malformed', inner],
      ] as const) {
        const mapped = asDenial(error, position);
        assert.ok(mapped instanceof DenyError, `${error.code} becomes a denial`);
        assert.equal(mapped.reason, expected, `${error.code} at ${position}`);
        assert.equal(mapped.message, error.message);
      }
    }
  });

  it('leaves anything that is not a decision untouched: bugs, outside errors, and our errors that are no denial', () => {
    const notDecisions: unknown[] = [
      new TypeError('x is undefined'),
      new RangeError('r'),
      'a string',
      { code: 'ERR_SEAL' },
      new ConfigError('X', 'bad'),
      new FetchFailedError('u', 'p'),
      new UsageError('u'),
    ];
    for (const error of notDecisions) assert.equal(asDenial(error, 'malformed_token'), error);
    const denial = new DenyError('recursion', 'r');
    assert.equal(asDenial(denial, 'malformed_token'), denial, 'a denial keeps its reason');
  });

  it('denying() converts synchronous and asynchronous failures alike, and nothing else', async () => {
    assert.throws(
      () =>
        denying('stack_malformed', () => {
          throw new SealError('s');
        }),
      (e: unknown) => e instanceof DenyError && e.reason === 'stack_malformed',
    );
    await assert.rejects(
      denying('stack_malformed', async () => {
        throw new KeysUnavailableError('k');
      }),
      (e: unknown) => e instanceof DenyError && e.reason === 'unavailable',
    );
    const bug = new TypeError('boom');
    assert.throws(
      () =>
        denying('malformed_token', () => {
          throw bug;
        }),
      (e: unknown) => e === bug,
    );
    await assert.rejects(
      denying('malformed_token', async () => {
        throw bug;
      }),
      (e: unknown) => e === bug,
    );
    assert.equal(
      denying('malformed_token', () => 7),
      7,
    );
  });

  it('gives every error class a stable code from one list, and tells user mistakes from bugs by it', () => {
    const samples = [
      new CompactFormatError('x'),
      new StackFormatError('x'),
      new ClaimError('x'),
      new SealError('x'),
      new KeysUnavailableError('x'),
      new RegistryUnavailableError('x'),
      new FetchFailedError('u', 'p'),
      new DenyError('expired', 'x'),
      new ConfigError('X', 'y'),
      new UsageError('u'),
      new RecordError('f', 'p'),
    ];
    for (const error of samples) {
      assert.ok((ERROR_CODES as readonly string[]).includes(error.code), error.code);
      assert.equal(error.name, error.constructor.name);
    }
    assert.deepEqual(
      samples.filter(isUserMistake).map((e) => e.code),
      ['ERR_CONFIG', 'ERR_USAGE', 'ERR_RECORD_INVALID'],
    );
    assert.equal(isUserMistake(new TypeError('x')), false);
  });
});

describe('an unexpected failure at each step of the chain walk answers 503 and reaches onUnexpected', () => {
  let idp: LocalIssuer;
  before(async () => {
    idp = await LocalIssuer.start();
  });
  after(() => idp.stop());
  const contents = () => ({
    issuers: [localIssuer(idp, 'acme')],
    services: [service('vault', { seal: true })],
  });
  const bug = () => new TypeError('a bug in a dependency');

  /** `target` with `method` failing as a bug would; everything else as it was. */
  function failing<T extends object>(target: T, method: string): T {
    return new Proxy(target, {
      get: (object, prop) =>
        prop === method
          ? () => {
              throw bug();
            }
          : Reflect.get(object, prop, object),
    });
  }

  /** Each injection breaks one dependency a former error adapter sat in front of. */
  type Override = NonNullable<NonNullable<Parameters<typeof inProcess>[0]>['override']>;
  const injections: Array<{ step: string; sealed?: boolean; memo?: boolean; override: Override }> =
    [
      {
        step: 'issuer lookup (registry)',
        override: (d) => ({ trust: { ...d.trust, registry: failing(d.trust.registry, 'issuer') } }),
      },
      {
        step: 'issuer keys',
        override: (d) => ({ trust: { ...d.trust, keys: failing(d.trust.keys, 'issuerKeys') } }),
      },
      {
        step: 'our own keys',
        override: (d) => ({ trust: { ...d.trust, keys: failing(d.trust.keys, 'ownKey') } }),
      },
      {
        step: 'container unpacking (limits)',
        override: (d) => ({
          limits: Object.defineProperty({ ...d.limits }, 'maxContainerBytes', {
            get: () => {
              throw bug();
            },
          }),
        }),
      },
      {
        step: 'unsealing (our seal keys)',
        sealed: true,
        override: (d) => ({ ownKeys: failing(d.ownKeys, 'sealKey') }),
      },
      {
        step: 'memo lookup',
        memo: true,
        override: (d) => ({ memo: d.memo === undefined ? undefined : failing(d.memo, 'get') }),
      },
    ];

  for (const { step, sealed, memo, override } of injections) {
    it(step, async () => {
      const healthy = await inProcess({ contents: contents(), memo: false });
      // A depth-2 chain (sealed where the step is unsealing), minted by a healthy replica with the same keys.
      const token = await walk(
        healthy,
        await idp.mint({ sub: 'alice' }),
        sealed ? ['vault', 'B'] : ['A', 'B'],
      );
      const broken = await inProcess({
        contents: contents(),
        ownKeys: healthy.ownKeys,
        memo: memo ?? false,
        override,
      });
      const record = await broken.check({ token, sid: 'C' });
      assert.equal(record.allowed, false);
      assert.equal(record.reason, 'unavailable', `${step}: ${record.detail}`);
      assert.equal(record.detail, 'internal error');
      assert.equal(broken.unexpected.length, 1, 'reported once');
      assert.match(String(broken.unexpected[0]), /a bug in a dependency/);
      // The same token through the healthy replica: the failure was the injected one.
      assert.equal((await healthy.check({ token, sid: 'C' })).allowed, true);
    });
  }
});
