import { messageOf } from '../errors.js';
import { MemoryRegistry } from './memory-registry.js';
import {
  type IssuerRecord,
  type ServicePolicy,
  type TenantPolicy,
  RecordError,
  identifier,
  parseIssuer,
  parseService,
  parseTenant,
} from './records.js';
import type { LogOp } from './registry-log.js';

/** A stored record that did not validate; `refuses`: kept as unreadable (tenant, service, principal), else left out. */
export interface InvalidRecord {
  /** `<kind> <name>`, e.g. `service admin`. */
  readonly record: string;
  readonly problem: string;
  readonly refuses: boolean;
}

/** A stored record, validated. */
type Parsed =
  | { readonly kind: 'issuer'; readonly record: IssuerRecord }
  | { readonly kind: 'tenant'; readonly record: TenantPolicy }
  | { readonly kind: 'service'; readonly record: ServicePolicy }
  | { readonly kind: 'principal'; readonly sid: string }
  /** A tenant, service or principal record that exists but does not validate: it refuses its requests. */
  | { readonly kind: 'unreadable'; readonly problem: string };

/**
 * A replica's registry in memory, changed one stored record at a time: by the slices of a full
 * load and by the ops of log entries alike, so both paths validate and store records the same way.
 * A stored record that does not validate is never applied, and reported: an issuer is left out (as
 * if absent: its tokens are untrusted); a tenant, a service or a principal mapping is kept as
 * unreadable, so the requests it governs are refused rather than decided by the defaults of a name
 * with no record (which would drop its restrictions and its tenant binding, and send an unmapped
 * destination principal to MATRYOSHKA_SERVICE_ID's rules).
 */
export class ReplicaState {
  readonly registry = new MemoryRegistry();
  /** Each issuer's stored JSON: tells a rewrite that changes nothing from a change. */
  private readonly issuerDocs = new Map<string, string>();

  constructor(private readonly allowInsecure: boolean) {}

  /**
   * Apply a batch of ops synchronously (so no Check sees half of it); records are parsed before
   * anything is changed. Returns the issuers whose record changed and the records left out.
   */
  apply(ops: readonly LogOp[]): { changedIssuers: string[]; invalid: InvalidRecord[] } {
    const invalid: InvalidRecord[] = [];
    const parsed = ops.map((op) => {
      if (op.stored === null) return { op, value: undefined };
      try {
        return { op, value: this.parse(op.kind, op.name, op.stored) };
      } catch (error) {
        const problem = messageOf(error);
        const refuses = op.kind !== 'issuer';
        invalid.push({ record: `${op.kind} ${op.name}`, problem, refuses });
        if (refuses) return { op, value: { kind: 'unreadable', problem } as const };
        return { op, value: undefined };
      }
    });
    const changedIssuers: string[] = [];
    for (const { op, value } of parsed) {
      if (op.kind === 'issuer') {
        const before = this.issuerDocs.get(op.name);
        const after = value === undefined ? undefined : (op.stored as string);
        if (before !== after) changedIssuers.push(op.name);
      }
      this.store(op, value);
    }
    return { changedIssuers, invalid };
  }

  /** The issuers whose stored record differs between this state and `other` (either way). */
  differingIssuers(other: ReplicaState): string[] {
    const changed: string[] = [];
    for (const [iss, doc] of this.issuerDocs)
      if (other.issuerDocs.get(iss) !== doc) changed.push(iss);
    for (const iss of other.issuerDocs.keys()) if (!this.issuerDocs.has(iss)) changed.push(iss);
    return changed;
  }

  private parse(kind: LogOp['kind'], name: string, stored: string): Parsed {
    if (kind === 'principal') return { kind, sid: identifier(stored, `principal ${name}`) };
    const raw: unknown = JSON.parse(stored);
    if (kind === 'tenant') return { kind, record: parseTenant(name, raw, `tenant ${name}`) };
    if (kind === 'service') return { kind, record: parseService(name, raw, `service ${name}`) };
    const record = parseIssuer(raw, `issuer ${name}`, this.allowInsecure);
    // The key names the issuer: a record filed under another name would answer for the wrong iss.
    if (record.issuer !== name)
      throw new RecordError(`issuer ${name}`, `the record names ${record.issuer}`);
    return { kind, record };
  }

  /** `value` is what parse() returned for `op`; undefined (absent or invalid): the record goes. */
  private store(op: LogOp, value: Parsed | undefined): void {
    const r = this.registry;
    if (value === undefined) {
      if (op.kind === 'issuer') {
        r.removeIssuer(op.name);
        this.issuerDocs.delete(op.name);
      } else if (op.kind === 'tenant') r.removeTenant(op.name);
      else if (op.kind === 'service') r.removeService(op.name);
      else r.unmapPrincipal(op.name);
      return;
    }
    if (value.kind === 'unreadable') {
      if (op.kind !== 'issuer') r.markUnreadable(op.kind, op.name, value.problem);
      return;
    }
    if (value.kind === 'issuer') {
      r.putIssuer(value.record);
      this.issuerDocs.set(op.name, op.stored as string);
    } else if (value.kind === 'tenant') r.putTenant(value.record);
    else if (value.kind === 'service') r.putService(value.record);
    else r.mapPrincipal(op.name, value.sid);
  }
}
