import { randomUUID } from 'node:crypto';
import { environmentWithConfigFile } from '../config/config-file.js';
import { ConfigError, loadSettings } from '../config/config.js';
import { IDENTIFIER_DESCRIPTION, isIdentifier, isRole, isSubject } from '../header-grammar.js';
import { compactSignJson } from '../keys/jws-crypto.js';
import { OwnKeys } from '../keys/own-keys.js';
import type { Group } from './command.js';
import { UsageError } from './usage-error.js';

/** Longest lifetime of a token minted for trying things out: a day. */
const MAX_TTL_SECONDS = 86_400;

/**
 * `token mint`: an origin token signed with the service's own key file, for local use. The service
 * trusts its own issuer without a registry entry, so a token minted here with the file a service
 * runs with is accepted by it (and by `explain` given the same file). Whoever holds the file can
 * sign such tokens anyway: the command adds no power, it saves writing a JWT by hand.
 */
export const TOKEN: Group = {
  verbs: {
    mint: {
      synopsis: '--tenant T --sub USER [--roles R,...] [--ttl SECONDS]',
      details: [
        'print an origin token signed with MATRYOSHKA_SIGNING_KEYS (required), issued by',
        'MATRYOSHKA_ISSUER, for trying the service locally; a service started with the same key',
        'file verifies it without a registry entry',
        '--tenant T        required; the tenant (tenant_id)',
        '--sub USER        required; the user (sub)',
        "--roles R,...     the user's roles (roles)",
        `--ttl SECONDS     lifetime, 1 to ${MAX_TTL_SECONDS} (default 3600)`,
      ],
      options: {
        tenant: { type: 'string' },
        sub: { type: 'string' },
        roles: { type: 'string' },
        ttl: { type: 'string', default: '3600' },
      },
      async run({ values, env }, out) {
        const tenant = values['tenant'];
        if (typeof tenant !== 'string') throw new UsageError('--tenant is required');
        if (!isIdentifier(tenant))
          throw new UsageError(`--tenant must be ${IDENTIFIER_DESCRIPTION}`);
        const sub = values['sub'];
        if (typeof sub !== 'string') throw new UsageError('--sub is required');
        if (!isSubject(sub))
          throw new UsageError('--sub must be visible text without control characters');
        const roles =
          typeof values['roles'] === 'string'
            ? values['roles'].split(',').filter((r) => r.length > 0)
            : [];
        for (const role of roles)
          if (!isRole(role))
            throw new UsageError(`--roles: ${role} is not a role (visible ASCII, no space)`);
        const ttl = String(values['ttl']);
        if (!/^\d{1,6}$/.test(ttl) || Number(ttl) < 1 || Number(ttl) > MAX_TTL_SECONDS)
          throw new UsageError(`--ttl must be a whole number of seconds, 1 to ${MAX_TTL_SECONDS}`);
        const settings = loadSettings(environmentWithConfigFile(env), [
          'signingKeysFile',
          'issuer',
        ]);
        if (settings.signingKeysFile === undefined)
          throw new ConfigError(
            'MATRYOSHKA_SIGNING_KEYS',
            'token mint signs with the key file the service runs with: set it (make one with `matryoshka-authz keys generate --out keys.json`)',
          );
        const keys = await OwnKeys.fromFile(settings.signingKeysFile);
        const now = Math.floor(Date.now() / 1000);
        const payload = {
          iss: settings.issuer,
          aud: settings.issuer,
          sub,
          tenant_id: tenant,
          ...(roles.length > 0 ? { roles } : {}),
          iat: now,
          exp: now + Number(ttl),
          jti: randomUUID(),
        };
        const { signing } = keys;
        out(compactSignJson(signing.alg, signing.kid, signing.privateKey, JSON.stringify(payload)));
        return 0;
      },
    },
  },
};
