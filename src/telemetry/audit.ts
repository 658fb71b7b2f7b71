import type { Logger } from 'pino';
import type { DecisionRecord } from '../pipeline/decision.js';
import { untrustedText } from '../untrusted-text.js';

/**
 * The detail is our own sentence around pieces of token text that were bounded where it was
 * built; this outer bound only keeps a future careless message from growing the line.
 */
const DETAIL_BOUND = 1024;

const text = (value: string | undefined): string | undefined =>
  value === undefined ? undefined : untrustedText(value);
/** Each sid bounded on its own: an honest chain of many short sids is kept whole. */
const sids = (list: readonly string[] | undefined): string | undefined =>
  list?.map((sid) => untrustedText(sid)).join(',');

/**
 * One JSON line per decision: the audit trail. No token text, ever; only what the record names,
 * and every string a client could have chosen escaped and bounded (see untrusted-text.ts).
 */
export function logDecision(
  logger: Logger,
  record: DecisionRecord,
  durationMs: number,
  traceId: string | undefined,
): void {
  const plainAllow = record.allowed && record.reason === undefined;
  // An allow is an info line: below that level nothing is written, so nothing is built either.
  if (plainAllow && !logger.isLevelEnabled('info')) return;
  const line = {
    request_id: record.requestId,
    tenant_id: text(record.tenant),
    user_id: text(record.user),
    decision: record.allowed ? 'allow' : 'deny',
    reason: record.reason,
    detail: record.detail === undefined ? undefined : untrustedText(record.detail, DETAIL_BOUND),
    shadow: record.shadow || undefined,
    shadow_scope: record.shadowScope,
    operation: record.operation,
    destination: text(record.destination),
    depth: record.minted?.level.depth ?? record.chain?.depth,
    chain: sids(record.minted?.sids ?? record.chain?.sids),
    form: record.minted?.form,
    header_bytes: record.headerBytes,
    recursion_audited: record.recursionAudited || undefined,
    txn: text(record.txn),
    txn_token: record.txnTokenSource,
    actors: sids(record.actors),
    duration_ms: Math.round(durationMs * 1000) / 1000,
    trace_id: traceId,
  };
  if (plainAllow) logger.info(line, 'check');
  else logger.warn(line, 'check');
}
