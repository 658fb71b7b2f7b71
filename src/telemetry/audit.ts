import type { Logger } from 'pino';
import type { DecisionRecord } from '../pipeline/decision.js';

/** One JSON line per decision: the audit trail. No token text, ever; only what the record names. */
export function logDecision(logger: Logger, record: DecisionRecord, durationMs: number, traceId: string | undefined): void {
  const line = {
    request_id: record.requestId,
    tenant_id: record.tenant,
    user_id: record.user,
    decision: record.allowed ? 'allow' : 'deny',
    reason: record.reason,
    detail: record.detail,
    shadow: record.shadow || undefined,
    destination: record.destination,
    depth: record.minted?.level.depth ?? record.chain?.depth,
    chain: record.minted?.sids.join(',') ?? record.chain?.sids.join(','),
    recursion_audited: record.recursionAudited || undefined,
    duration_ms: Math.round(durationMs * 1000) / 1000,
    trace_id: traceId,
  };
  if (record.allowed && record.reason === undefined) logger.info(line, 'check');
  else logger.warn(line, 'check');
}
