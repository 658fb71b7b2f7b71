import { isHeaderValue, unsafeIdentity } from '../header-grammar.js';
import { type DenyReason, httpStatusOf } from '../reasons.js';
import type { DecisionRecord } from './decision.js';
import { IDENTITY_HEADERS, REQUEST_ID_HEADER, ownedHeaders } from './owned-headers.js';
import { forwardValue, identityValues } from './upstream-headers.js';

/** The CheckResponse as the proto-loader object form (`keepCase`); see proto/envoy/service/auth/v3. */
export interface HeaderValueOption {
  header: { key: string; value: string };
  append: { value: boolean };
}
export type StructValue =
  | { stringValue: string }
  | { numberValue: number }
  | { boolValue: boolean };
export interface ProtoStruct {
  fields: Record<string, StructValue>;
}
export interface CheckResponseMessage {
  status: { code: number; message: string };
  ok_response?: { headers: HeaderValueOption[]; headers_to_remove: string[] };
  denied_response?: { status: { code: number }; headers: HeaderValueOption[]; body: string };
  dynamic_metadata: ProtoStruct;
}

export interface ResponseSettings {
  /** Header that carries the minted token; `authorization` gets the Bearer scheme. */
  readonly forwardHeader: string;
  readonly debugReasons: boolean;
}

const GRPC_OK = 0;
// UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAVAILABLE
const GRPC_CODE_BY_HTTP = { 401: 16, 403: 7, 431: 8, 503: 14 } as const;
const BODY_ERROR_BY_HTTP = {
  401: 'unauthorized',
  403: 'forbidden',
  431: 'request_header_fields_too_large',
  503: 'unavailable',
} as const;

// Envoy has read an unset `append` as "append" in some versions; we always say "overwrite".
const set = (key: string, value: string): HeaderValueOption => ({
  header: { key, value },
  append: { value: false },
});

function metadata(record: DecisionRecord): ProtoStruct {
  const fields: Record<string, StructValue> = {
    decision: {
      stringValue: record.allowed
        ? record.reason === undefined
          ? 'allow'
          : 'shadow_allow'
        : 'deny',
    },
  };
  if (record.reason !== undefined) fields['reason'] = { stringValue: record.reason };
  if (record.tenant !== undefined) fields['tenant_id'] = { stringValue: record.tenant };
  if (record.minted !== undefined) fields['depth'] = { numberValue: record.minted.level.depth };
  else if (record.chain !== undefined) fields['depth'] = { numberValue: record.chain.depth };
  fields['request_id'] = { stringValue: record.requestId };
  return { fields };
}

/**
 * What we say upstream under the headers we own; a name without a value is removed. Only a minted
 * level vouches for anyone: a pass-through without one (shadow mode letting a would-be denial, a
 * missing or unreadable token or a timeout through) sets nothing but the request id, so a
 * client's own forward or identity header never reaches the upstream.
 */
function upstreamValues(
  record: DecisionRecord,
  settings: ResponseSettings,
): ReadonlyMap<string, string> {
  const values = new Map<string, string>([[REQUEST_ID_HEADER, record.requestId]]);
  const minted = record.minted;
  if (minted === undefined) return values;
  values.set(settings.forwardHeader, forwardValue(settings.forwardHeader, minted.token));
  const identity = identityValues({
    tenant: record.tenant,
    user: record.user,
    roles: record.roles,
    depth: minted.level.depth,
    sids: minted.sids,
  });
  for (const name of IDENTITY_HEADERS) {
    const value = identity[name];
    if (value !== undefined) values.set(name, value);
  }
  return values;
}

function allowResponse(record: DecisionRecord, settings: ResponseSettings): CheckResponseMessage {
  const values = upstreamValues(record, settings);
  const headers: HeaderValueOption[] = [];
  const headersToRemove: string[] = [];
  for (const name of ownedHeaders(settings.forwardHeader)) {
    const value = values.get(name);
    if (value === undefined) headersToRemove.push(name);
    else headers.push(set(name, value));
  }
  if (!emittable(record, headers)) {
    // Fail closed rather than hand Envoy a value it might forward without validating it.
    return denyResponse(
      {
        ...record,
        allowed: false,
        reason: 'unavailable',
        tenant: undefined,
        user: undefined,
        roles: [],
        minted: undefined,
      },
      'unavailable',
      settings,
    );
  }
  return {
    status: { code: GRPC_OK, message: '' },
    ok_response: { headers, headers_to_remove: headersToRemove },
    dynamic_metadata: metadata(record),
  };
}

/**
 * The last line before Envoy: list elements still one element each, and every value, whatever
 * header carries it, free of anything an HTTP parser could read two ways (CR, LF, NUL, DEL,
 * non-ASCII, edge spaces) — so the headers are safe even where Envoy runs without
 * `validate_mutations`.
 */
function emittable(record: DecisionRecord, headers: readonly HeaderValueOption[]): boolean {
  const sids = record.minted?.sids ?? [];
  if (
    unsafeIdentity({ tenant: record.tenant, user: record.user, roles: record.roles, sids }) !==
    undefined
  )
    return false;
  return headers.every((h) => isHeaderValue(h.header.value));
}

function denyResponse(
  record: DecisionRecord,
  reason: DenyReason,
  settings: ResponseSettings,
): CheckResponseMessage {
  const http = httpStatusOf(reason);
  const headers = [set('content-type', 'application/json'), set('cache-control', 'no-store')];
  if (http === 401) headers.push(set('www-authenticate', 'Bearer error="invalid_token"'));
  if (settings.debugReasons) headers.push(set('x-authz-reason', reason));
  const body = JSON.stringify({ error: BODY_ERROR_BY_HTTP[http], request_id: record.requestId });
  return {
    status: { code: GRPC_CODE_BY_HTTP[http], message: '' },
    denied_response: { status: { code: http }, headers, body },
    dynamic_metadata: metadata(record),
  };
}

/** Turn a decision into Envoy's answer, in one place: status mapping, headers, metadata. */
export function buildCheckResponse(
  record: DecisionRecord,
  settings: ResponseSettings,
): CheckResponseMessage {
  if (record.allowed) return allowResponse(record, settings);
  return denyResponse(record, record.reason ?? 'unavailable', settings);
}
