import * as grpc from '@grpc/grpc-js';
import type { CheckResponseMessage } from '../pipeline/respond.js';
import { loadProtos } from '../server/protos.js';

export interface CheckCall {
  token?: string;
  /** `context_extensions["sid"]`, as an Envoy route sets it. */
  sid?: string;
  contextExtensions?: Record<string, string>;
  headers?: Record<string, string>;
  sourcePrincipal?: string;
  destinationPrincipal?: string;
  deadlineMs?: number;
  /** The original request's method and path (default GET /). */
  method?: string;
  path?: string;
}

export interface CheckResult {
  readonly allowed: boolean;
  readonly grpcCode: number;
  readonly httpStatus: number;
  /** Headers Envoy would set upstream (allow) or send to the client (deny). */
  readonly headers: Record<string, string>;
  readonly headersToRemove: readonly string[];
  readonly body: string;
  readonly metadata: Record<string, string | number | boolean>;
  /** The token Envoy would forward upstream, when allowed. */
  readonly forwardedToken: string | undefined;
  readonly raw: CheckResponseMessage;
}

type StructIn = {
  fields?: Record<string, { stringValue?: string; numberValue?: number; boolValue?: boolean }>;
};
type RawResponse = CheckResponseMessage & { http_response?: string; dynamic_metadata?: StructIn };

/** What Envoy's ext_authz filter does, reduced to one call: build a CheckRequest, send it, read the answer. */
export class EnvoyLikeClient {
  private readonly client: grpc.Client & Record<string, unknown>;

  constructor(
    address: string,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    options: grpc.ChannelOptions = {},
  ) {
    const { AuthorizationClient } = loadProtos();
    this.client = new AuthorizationClient(address, credentials, options) as grpc.Client &
      Record<string, unknown>;
  }

  static request(call: CheckCall): Record<string, unknown> {
    const method = call.method ?? 'GET';
    const path = call.path ?? '/';
    const headers: Record<string, string> = {
      ':method': method,
      ':path': path,
      ':authority': 'upstream',
      ...(call.headers ?? {}),
    };
    if (call.token !== undefined) headers['authorization'] = `Bearer ${call.token}`;
    const contextExtensions = { ...(call.contextExtensions ?? {}) };
    if (call.sid !== undefined) contextExtensions['sid'] = call.sid;
    return {
      attributes: {
        source: {
          address: { socket_address: { address: '127.0.0.1', port_value: 40000 } },
          principal: call.sourcePrincipal ?? '',
        },
        destination: {
          address: { socket_address: { address: '127.0.0.1', port_value: 8080 } },
          principal: call.destinationPrincipal ?? '',
        },
        request: {
          http: {
            id: '1',
            method,
            path,
            host: 'upstream',
            protocol: 'HTTP/1.1',
            headers,
          },
        },
        context_extensions: contextExtensions,
      },
    };
  }

  check(call: CheckCall): Promise<CheckResult> {
    return this.send(EnvoyLikeClient.request(call), call.deadlineMs ?? 5000);
  }

  /** Send an already-built CheckRequest object (proto-loader shape). */
  send(request: Record<string, unknown>, deadlineMs = 5000): Promise<CheckResult> {
    return new Promise((resolve, reject) => {
      const method = this.client['Check'] as (
        req: unknown,
        meta: grpc.Metadata,
        opts: grpc.CallOptions,
        cb: (e: grpc.ServiceError | null, r: RawResponse) => void,
      ) => void;
      method.call(
        this.client,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (error, response) => {
          if (error) return reject(error);
          resolve(EnvoyLikeClient.read(response));
        },
      );
    });
  }

  static read(response: RawResponse): CheckResult {
    const allowed = response.http_response === 'ok_response' || response.ok_response != null;
    const headers: Record<string, string> = {};
    const list = allowed ? response.ok_response?.headers : response.denied_response?.headers;
    for (const option of list ?? []) headers[option.header.key] = option.header.value;
    const metadata: Record<string, string | number | boolean> = {};
    for (const [key, value] of Object.entries(
      (response.dynamic_metadata as StructIn | undefined)?.fields ?? {},
    )) {
      const v = value.stringValue ?? value.numberValue ?? value.boolValue;
      if (v !== undefined) metadata[key] = v;
    }
    const authz = headers['authorization'];
    const deniedStatus = response.denied_response?.status?.code as number | string | undefined;
    return {
      allowed,
      grpcCode: response.status?.code ?? 0,
      httpStatus: allowed ? 200 : httpCode(deniedStatus),
      headers,
      headersToRemove: response.ok_response?.headers_to_remove ?? [],
      body: response.denied_response?.body ?? '',
      metadata,
      forwardedToken: authz?.startsWith('Bearer ') ? authz.slice(7) : undefined,
      raw: response,
    };
  }

  close(): void {
    this.client.close();
  }
}

const STATUS_NAMES: Record<string, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  RequestHeaderFieldsTooLarge: 431,
  ServiceUnavailable: 503,
};
function httpCode(code: number | string | undefined): number {
  if (typeof code === 'number') return code;
  return code === undefined ? 0 : (STATUS_NAMES[code] ?? -1);
}
