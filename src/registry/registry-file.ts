import { readFileSync } from 'node:fs';
import { fileProblem, messageOf } from '../errors.js';
import { type Document, LineCounter, isMap, parseDocument, visit } from 'yaml';
import type { RegistryContents } from './memory-registry.js';
import {
  RecordError,
  asObject,
  identifier,
  parseIssuer,
  parseService,
  parseTenant,
} from './records.js';

/**
 * Parse the embedded-mode registry file. Any problem is one RecordError naming the field; the
 * service refuses to start rather than run with half a registry.
 */
export function parseRegistryDocument(text: string, allowInsecure: boolean): RegistryContents {
  let doc: unknown;
  try {
    // Keys checked for uniqueness below, in linear time: the library's own check compares every
    // key with every other one, minutes for a registry of 50,000 tenants.
    const lines = new LineCounter();
    const document = parseDocument(text, { uniqueKeys: false, lineCounter: lines });
    if (document.errors.length > 0) throw document.errors[0];
    refuseDuplicateKeys(document, lines);
    doc = document.toJS({ maxAliasCount: 50 });
  } catch (error) {
    throw new RecordError('registry file', `not valid YAML (${messageOf(error)})`);
  }
  const root = doc === null || doc === undefined ? {} : asObject(doc, 'registry file');
  for (const key of Object.keys(root)) {
    if (!['issuers', 'tenants', 'services', 'principals'].includes(key))
      throw new RecordError(key, 'unknown section');
  }
  const issuersRaw = root['issuers'] ?? [];
  if (!Array.isArray(issuersRaw)) throw new RecordError('issuers', 'must be a list');
  const issuers = issuersRaw.map((raw, i) => parseIssuer(raw, `issuers[${i}]`, allowInsecure));
  const seen = new Set<string>();
  for (const [i, record] of issuers.entries()) {
    if (seen.has(record.issuer))
      throw new RecordError(`issuers[${i}].issuer`, `duplicate issuer ${record.issuer}`);
    seen.add(record.issuer);
  }
  const tenants = Object.entries(asObject(root['tenants'] ?? {}, 'tenants')).map(([name, raw]) =>
    parseTenant(name, raw, `tenants.${name}`),
  );
  const services = Object.entries(asObject(root['services'] ?? {}, 'services')).map(([sid, raw]) =>
    parseService(sid, raw, `services.${sid}`),
  );
  const principals: Record<string, string> = {};
  for (const [principal, sid] of Object.entries(asObject(root['principals'] ?? {}, 'principals'))) {
    principals[principal] = identifier(sid, `principals.${principal}`);
  }
  return { issuers, tenants, services, principals };
}

/** Every mapping's keys are distinct (compared by their scalar values, as the library would). */
function refuseDuplicateKeys(document: Document, lines: LineCounter): void {
  visit(document, {
    Map(_key, map) {
      if (!isMap(map)) return;
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key: unknown = pair.key;
        const value =
          key !== null && typeof key === 'object' && 'value' in key
            ? (key as { value: unknown }).value
            : key;
        if (seen.has(value)) {
          const offset = (key as { range?: [number] } | null)?.range?.[0];
          const where = offset === undefined ? '' : ` at line ${lines.linePos(offset).line}`;
          throw new RecordError(
            'registry file',
            `not valid YAML (Map keys must be unique${where})`,
          );
        }
        seen.add(value);
      }
    },
  });
}

/**
 * Whether the file says, in so many words, that it registers no issuer: `issuers: []`. A file
 * that merely lacks issuers (empty, truncated, the section left out) does not.
 */
export function saysNoIssuers(text: string): boolean {
  try {
    const root: unknown = parseDocument(text, { uniqueKeys: false }).toJS({ maxAliasCount: 50 });
    if (root === null || typeof root !== 'object' || Array.isArray(root)) return false;
    const issuers = (root as Record<string, unknown>)['issuers'];
    return Array.isArray(issuers) && issuers.length === 0;
  } catch {
    return false;
  }
}

/**
 * The text of a registry file. `source` is what the person named the file with (the variable, or
 * the command's argument), so a file that cannot be read is reported as their mistake, by that name.
 */
export function readRegistryText(path: string, source = 'MATRYOSHKA_REGISTRY_FILE'): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new RecordError(source, `cannot read ${path} (${fileProblem(error)})`);
  }
}

export function loadRegistryFile(
  path: string,
  allowInsecure: boolean,
  source = 'MATRYOSHKA_REGISTRY_FILE',
): RegistryContents {
  return parseRegistryDocument(readRegistryText(path, source), allowInsecure);
}
