import { isHeaderValue, unsafeIdentity } from '../header-grammar.js';
import { type DenyReason, type HttpDenyStatus, httpStatusOf } from '../reasons.js';
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
// INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAVAILABLE
const GRPC_CODE_BY_HTTP = { 400: 3, 401: 16, 403: 7, 431: 8, 503: 14 } as const satisfies Record<
  HttpDenyStatus,
  number
>;
const BODY_ERROR_BY_HTTP = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  431: 'request_header_fields_too_large',
  503: 'unavailable',
} as const satisfies Record<HttpDenyStatus, string>;

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
    actors: record.actors,
    txnToken: record.txnToken,
  });
  for (const name of IDENTITY_HEADERS) {
    const value = identity[name];
    if (value !== undefined) values.set(name, value);
  }
  return values;
}

/**
 * What an answer does to the request on its way upstream, whatever the transport: set each header
 * in `set` (replacing any client copy), remove each in `remove`. The gRPC answer carries it as
 * `ok_response`, the HTTP answer as response headers the proxy copies (see src/server/authz-http.ts).
 */
export interface UpstreamHeaders {
  readonly set: ReadonlyArray<readonly [name: string, value: string]>;
  readonly remove: readonly string[];
}

/**
 * Every header we own, either set or removed; undefined when a value is not emittable (the caller
 * must then fail closed rather than hand a proxy a value it might forward without validating it).
 */
export function upstreamHeaders(
  record: DecisionRecord,
  settings: ResponseSettings,
): UpstreamHeaders | undefined {
  const values = upstreamValues(record, settings);
  const set: Array<readonly [string, string]> = [];
  const remove: string[] = [];
  for (const name of ownedHeaders(settings.forwardHeader)) {
    const value = values.get(name);
    if (value === undefined) remove.push(name);
    else set.push([name, value]);
  }
  return emittable(record, set) ? { set, remove } : undefined;
}

/** The record a refused emission becomes: nothing vouched for, `unavailable`. */
function failedClosed(record: DecisionRecord): DecisionRecord {
  return {
    ...record,
    allowed: false,
    reason: 'unavailable',
    tenant: undefined,
    user: undefined,
    roles: [],
    minted: undefined,
  };
}

function allowResponse(record: DecisionRecord, settings: ResponseSettings): CheckResponseMessage {
  const upstream = upstreamHeaders(record, settings);
  if (upstream === undefined) return denyResponse(failedClosed(record), 'unavailable', settings);
  return {
    status: { code: GRPC_OK, message: '' },
    ok_response: {
      headers: upstream.set.map(([name, value]) => set(name, value)),
      headers_to_remove: [...upstream.remove],
    },
    dynamic_metadata: metadata(record),
  };
}

/**
 * The last line before Envoy: list elements still one element each, and every value, whatever
 * header carries it, free of anything an HTTP parser could read two ways (CR, LF, NUL, DEL,
 * non-ASCII, edge spaces) — so the headers are safe even where Envoy runs without
 * `validate_mutations`.
 */
function emittable(
  record: DecisionRecord,
  headers: ReadonlyArray<readonly [string, string]>,
): boolean {
  const sids = record.minted?.sids ?? [];
  if (
    unsafeIdentity({ tenant: record.tenant, user: record.user, roles: record.roles, sids }) !==
    undefined
  )
    return false;
  return headers.every(([, value]) => isHeaderValue(value));
}

/** A denial as HTTP: the status, headers and body the client gets, whatever the transport. */
export interface DenialAnswer {
  readonly status: HttpDenyStatus;
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>;
  readonly body: string;
}

export function denialAnswer(
  record: DecisionRecord,
  reason: DenyReason,
  settings: ResponseSettings,
): DenialAnswer {
  const status = httpStatusOf(reason);
  const headers: Array<readonly [string, string]> = [
    ['content-type', 'application/json'],
    ['cache-control', 'no-store'],
  ];
  if (status === 401) headers.push(['www-authenticate', 'Bearer error="invalid_token"']);
  if (settings.debugReasons) headers.push(['x-authz-reason', reason]);
  const body = JSON.stringify({ error: BODY_ERROR_BY_HTTP[status], request_id: record.requestId });
  return { status, headers, body };
}

function denyResponse(
  record: DecisionRecord,
  reason: DenyReason,
  settings: ResponseSettings,
): CheckResponseMessage {
  const answer = denialAnswer(record, reason, settings);
  return {
    status: { code: GRPC_CODE_BY_HTTP[answer.status], message: '' },
    denied_response: {
      status: { code: answer.status },
      headers: answer.headers.map(([name, value]) => set(name, value)),
      body: answer.body,
    },
    dynamic_metadata: metadata(record),
  };
}

/** An HTTP authorizer's answer: let the request through with these upstream headers, or deny. */
export type HttpAuthzAnswer =
  | { readonly allowed: true; readonly upstream: UpstreamHeaders }
  | { readonly allowed: false; readonly denial: DenialAnswer };

/** The same decision as `buildCheckResponse`, for transports that speak HTTP instead of gRPC. */
export function buildHttpAnswer(
  record: DecisionRecord,
  settings: ResponseSettings,
): HttpAuthzAnswer {
  if (!record.allowed)
    return {
      allowed: false,
      denial: denialAnswer(record, record.reason ?? 'unavailable', settings),
    };
  const upstream = upstreamHeaders(record, settings);
  if (upstream === undefined)
    return { allowed: false, denial: denialAnswer(failedClosed(record), 'unavailable', settings) };
  return { allowed: true, upstream };
}

/** Turn a decision into Envoy's answer, in one place: status mapping, headers, metadata. */
export function buildCheckResponse(
  record: DecisionRecord,
  settings: ResponseSettings,
): CheckResponseMessage {
  if (record.allowed) return allowResponse(record, settings);
  return denyResponse(record, record.reason ?? 'unavailable', settings);
}
