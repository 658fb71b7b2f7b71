import {
  type Context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  ROOT_CONTEXT,
  trace,
} from '@opentelemetry/api';
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import type { DecisionRecord } from '../pipeline/decision.js';
import { untrustedText } from '../untrusted-text.js';
import { decisionLabel } from './metrics.js';

/** Token-derived text as an attribute value: escaped and bounded (see untrusted-text.ts). */
const sidList = (sids: readonly string[]): string =>
  sids.map((sid) => untrustedText(sid)).join(',');

/**
 * Envoy passes the request's trace headers in the CheckRequest; the Check span continues that
 * trace whatever the mesh uses: W3C `traceparent`/`tracestate`, B3 multi-header (`x-b3-*`, Istio's
 * default) or B3 single (`b3`).
 */
const propagator = new CompositePropagator({
  propagators: [
    new W3CTraceContextPropagator(),
    new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }),
  ],
});

const getter: TextMapGetter<ReadonlyMap<string, string>> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key.toLowerCase()),
};

export function parentContextOf(headers: ReadonlyMap<string, string>): Context {
  return propagator.extract(ROOT_CONTEXT, headers, getter);
}

export function startCheckSpan(
  tracer: Tracer,
  headers: ReadonlyMap<string, string>,
): { span: Span; ctx: Context } {
  const parent = parentContextOf(headers);
  const span = tracer.startSpan(
    'authz check',
    {
      kind: SpanKind.SERVER,
      attributes: {
        'rpc.system': 'grpc',
        'rpc.service': 'envoy.service.auth.v3.Authorization',
        'rpc.method': 'Check',
      },
    },
    parent,
  );
  return { span, ctx: trace.setSpan(parent, span) };
}

/**
 * Everything a person needs to understand the decision from the trace view, and nothing that
 * could authenticate: no token, signature or secret is ever an attribute.
 */
export function finishCheckSpan(span: Span, record: DecisionRecord, keyCacheMiss: boolean): void {
  if (!span.isRecording()) {
    span.end();
    return;
  }
  const decision = decisionLabel(record);
  span.updateName(
    `authz ${decision} ${record.destination === undefined ? 'unknown' : untrustedText(record.destination)}`,
  );
  const chain = record.chain;
  const origin = chain?.sealed ? undefined : chain?.levels[0];
  span.setAttributes({
    'authz.decision': decision,
    'authz.reason': record.reason ?? 'none',
    'authz.request_id': record.requestId,
    ...(record.tenant !== undefined ? { 'authz.tenant': untrustedText(record.tenant) } : {}),
    ...(record.destination !== undefined
      ? { 'authz.destination': untrustedText(record.destination) }
      : {}),
    ...(origin !== undefined ? { 'authz.origin_issuer': untrustedText(origin.iss) } : {}),
    ...(chain !== undefined
      ? {
          'authz.depth': chain.depth,
          'authz.chain': sidList(chain.sids),
          'authz.sealed': chain.sealed,
          'authz.key_cache': keyCacheMiss ? 'miss' : 'hit',
        }
      : {}),
    ...(record.minted !== undefined
      ? {
          'authz.minted_depth': record.minted.level.depth,
          'authz.minted_chain': sidList(record.minted.sids),
          'authz.minted_form': record.minted.form,
          ...(record.headerBytes !== undefined
            ? { 'authz.minted_header_bytes': record.headerBytes }
            : {}),
        }
      : {}),
    'authz.recursion': record.reason === 'recursion' || record.recursionAudited,
    ...(record.txn === undefined ? {} : { 'authz.txn': untrustedText(record.txn) }),
    ...(record.txnTokenSource === undefined ? {} : { 'authz.txn_token': record.txnTokenSource }),
    'authz.shadow': record.shadow,
    ...(record.shadowScope === undefined ? {} : { 'authz.shadow_scope': record.shadowScope }),
    ...(record.operation === undefined ? {} : { 'authz.operation': record.operation }),
  });
  const levels = chain?.levels ?? [];
  const firstVerifiedHere = levels.length - (chain?.verifiedHere ?? 0);
  for (const [index, level] of levels.entries()) {
    span.addEvent('chain level', {
      'level.depth': level.depth,
      'level.iss': untrustedText(level.iss),
      ...(level.stack?.sid !== undefined ? { 'level.sid': untrustedText(level.stack.sid) } : {}),
      'level.alg': untrustedText(level.alg),
      ...(level.kid !== undefined ? { 'level.kid': untrustedText(level.kid) } : {}),
      'level.verified': index < firstVerifiedHere ? 'memo' : 'signature',
      // A hop of a compact level: its record was vouched for by that level's signature.
      ...(level.form === 'compact' ? { 'level.form': 'compact' } : {}),
    });
  }
  // A denial is the service doing its job; only "could not decide" is an error in the trace.
  if (record.reason === 'unavailable')
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'unavailable' });
  span.end();
}
