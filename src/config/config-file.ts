import { errnoOf, messageOf } from '../errors.js';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, ConfigError } from './config.js';
import type { Env } from '../env.js';

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
/** Variables whose value is a credential, by the name's last word (MATRYOSHKA_TOKEN_TTL is not one). */
const SECRET_NAMES = /(SECRET|PASSWORD|TOKEN|CREDENTIALS?)$/;

/** A literal password in a URL's userinfo (`redis://:pw@host`) is a secret in the file. */
function embedsLiteralCredential(name: string, value: string): boolean {
  if (SECRET_NAMES.test(name)) return !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(value);
  const userinfo = /^[a-z+]+:\/\/([^@/]*)@/i.exec(value)?.[1];
  if (userinfo === undefined || !userinfo.includes(':')) return false;
  const password = userinfo.slice(userinfo.indexOf(':') + 1);
  return password.length > 0 && !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(password);
}

/**
 * `MATRYOSHKA_CONFIG_FILE`: a YAML mapping of the same variable names, for those who prefer a
 * mounted file to a long env list. The environment wins over the file. Values may reference the
 * environment as `${NAME}`; a secret must, and a literal one stops the service naming the field.
 */
export function environmentWithConfigFile(env: Env): Env {
  const path = env['MATRYOSHKA_CONFIG_FILE'];
  if (path === undefined || path.trim() === '') return env;
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'), { uniqueKeys: true });
  } catch (error) {
    throw new ConfigError(
      'MATRYOSHKA_CONFIG_FILE',
      `cannot read ${path} (${errnoOf(error) ?? messageOf(error)})`,
    );
  }
  if (doc === null || doc === undefined) return env;
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigError(
      'MATRYOSHKA_CONFIG_FILE',
      'must be a mapping of variable names to values',
    );
  const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
  const fromFile: Record<string, string> = {};
  for (const [name, value] of Object.entries(doc as Record<string, unknown>)) {
    if (!known.has(name) && !name.startsWith('OTEL_'))
      throw new ConfigError(`${path}: ${name}`, 'unknown variable');
    if (name === 'MATRYOSHKA_CONFIG_FILE')
      throw new ConfigError(`${path}: ${name}`, 'cannot name another config file');
    if (value === null || typeof value === 'object')
      throw new ConfigError(`${path}: ${name}`, 'must be a single value');
    const text = String(value);
    if (embedsLiteralCredential(name, text)) {
      throw new ConfigError(
        `${path}: ${name}`,
        'a secret must be an environment reference (${NAME}), not a literal',
      );
    }
    fromFile[name] = text.replace(ENV_REF, (_match, ref: string) => {
      const resolved = env[ref];
      if (resolved === undefined)
        throw new ConfigError(`${path}: ${name}`, `references \${${ref}}, which is not set`);
      return resolved;
    });
  }
  return {
    ...fromFile,
    ...Object.fromEntries(
      Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''),
    ),
  };
}
