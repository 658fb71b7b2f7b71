import type { CheckInput } from '../pipeline/check-input.js';

/** The parts of a decoded `envoy.service.auth.v3.CheckRequest` we read (proto-loader, keepCase). */
export interface CheckRequestMessage {
  attributes?: {
    source?: { principal?: string } | null;
    destination?: { principal?: string } | null;
    request?: {
      http?: {
        path?: string;
        method?: string;
        headers?: Record<string, string> | null;
        header_map?: {
          headers?: Array<{ key?: string; value?: string; raw_value?: Buffer | Uint8Array }> | null;
        } | null;
      } | null;
    } | null;
    context_extensions?: Record<string, string> | null;
  } | null;
}

const MAX_HEADERS = 512;

/**
 * Normalise the request into CheckInput. Envoy sends either `headers` (a map) or, with
 * `encode_raw_headers`, `header_map` whose values are bytes in `raw_value`; both are accepted.
 * Repeated headers are joined with "," as HTTP allows.
 */
export function toCheckInput(request: CheckRequestMessage | null | undefined): CheckInput {
  const attributes = request?.attributes ?? undefined;
  const http = attributes?.request?.http ?? undefined;
  const headers = new Map<string, string>();
  const add = (key: string, value: string): void => {
    const name = key.toLowerCase();
    if (headers.size >= MAX_HEADERS && !headers.has(name)) return;
    const existing = headers.get(name);
    headers.set(name, existing === undefined ? value : `${existing},${value}`);
  };
  for (const [key, value] of Object.entries(http?.headers ?? {})) {
    if (typeof value === 'string') add(key, value);
  }
  for (const entry of http?.header_map?.headers ?? []) {
    if (typeof entry.key !== 'string' || entry.key.length === 0) continue;
    const raw =
      entry.raw_value !== undefined && entry.raw_value.length > 0
        ? Buffer.from(entry.raw_value).toString('latin1')
        : entry.value;
    if (typeof raw === 'string') add(entry.key, raw);
  }
  const principal = (p: { principal?: string } | null | undefined): string | undefined =>
    typeof p?.principal === 'string' && p.principal.length > 0 ? p.principal : undefined;
  const contextExtensions: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes?.context_extensions ?? {})) {
    if (typeof value === 'string') contextExtensions[key] = value;
  }
  const path = nonEmpty(http?.path);
  const method = nonEmpty(http?.method);
  return {
    headers,
    contextExtensions,
    sourcePrincipal: principal(attributes?.source),
    destinationPrincipal: principal(attributes?.destination),
    path,
    method,
    viewConflict: conflict(headers, ':path', path) ?? conflict(headers, ':method', method),
  };
}

/**
 * Envoy builds `http.path`/`http.method` and the `:path`/`:method` pseudo-headers from the same
 * request, so they are equal; a message where they differ is read no further than that.
 */
function conflict(
  headers: ReadonlyMap<string, string>,
  name: string,
  attribute: string | undefined,
): string | undefined {
  const header = headers.get(name);
  return header !== undefined && header !== attribute
    ? `the CheckRequest's ${name} header and its http attribute disagree`
    : undefined;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
