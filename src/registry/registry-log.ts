/**
 * The change log: what one registry write changed, as a replica replays it. Every write appends one
 * entry to the `{p}:log` stream in the transaction that makes the change, under the id
 * `<version>-0`, so the log is ordered by registry version and a gap in versions is a gap in ids.
 *
 *   field `ops`: JSON array of [kind, name, stored] — kind issuer|tenant|service|principal, the
 *   record's name, and what its key now holds (the record's JSON, a principal's sid), or null when
 *   the record was removed.
 *
 * Entries are read back from shared state: anything that does not have this shape is refused here,
 * and the replica falls back to a full reload (which validates record by record).
 */
import { MatryoshkaError } from '../errors.js';

export const RECORD_KINDS = ['issuer', 'tenant', 'service', 'principal'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

export interface LogOp {
  readonly kind: RecordKind;
  readonly name: string;
  /** What the record's key holds after the change; null: the record is gone. */
  readonly stored: string | null;
}

export interface LogEntry {
  readonly version: number;
  readonly ops: readonly LogOp[];
}

/**
 * A log entry that is not ours or no longer readable. The replica reloads in full instead; should
 * that fail too, the registry is as unavailable as an unreachable Redis, hence the code.
 */
export class LogEntryError extends MatryoshkaError {
  constructor(id: string, problem: string) {
    super('ERR_REGISTRY_UNAVAILABLE', `registry log entry ${id.slice(0, 40)}: ${problem}`);
  }
}

export const entryId = (version: number): string => `${version}-0`;

/** The version an entry id stands for (`<version>-0`); NaN for an id of any other shape. */
export function versionOfId(id: string): number {
  const match = /^(\d{1,15})-0$/.exec(id);
  return match === null ? Number.NaN : Number(match[1]);
}

export function encodeOps(ops: readonly LogOp[]): string {
  return JSON.stringify(ops.map((op) => [op.kind, op.name, op.stored]));
}

const isKind = (value: unknown): value is RecordKind =>
  typeof value === 'string' && (RECORD_KINDS as readonly string[]).includes(value);

/** One entry as XRANGE returns it: the id and the flat field/value list. */
export function decodeEntry(id: string, fields: readonly string[]): LogEntry {
  const version = versionOfId(id);
  if (!Number.isSafeInteger(version) || version < 1)
    throw new LogEntryError(id, 'not a version id');
  const at = fields.indexOf('ops');
  if (at < 0 || at % 2 !== 0) throw new LogEntryError(id, 'no ops field');
  let raw: unknown;
  try {
    raw = JSON.parse(fields[at + 1] ?? '');
  } catch {
    throw new LogEntryError(id, 'ops is not JSON');
  }
  if (!Array.isArray(raw)) throw new LogEntryError(id, 'ops is not a list');
  const ops = raw.map((item: unknown): LogOp => {
    if (!Array.isArray(item) || item.length !== 3)
      throw new LogEntryError(id, 'an op is not a triple');
    const [kind, name, stored] = item as [unknown, unknown, unknown];
    if (
      !isKind(kind) ||
      typeof name !== 'string' ||
      (stored !== null && typeof stored !== 'string')
    )
      throw new LogEntryError(id, 'an op has the wrong shape');
    return { kind, name, stored };
  });
  return { version, ops };
}
