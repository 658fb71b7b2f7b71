/**
 * The transport ceiling: an ext_authz server on the same gRPC stack as the service (@grpc/grpc-js,
 * the same protos through src/server/protos.ts, the same server options) that decides nothing and
 * answers a fixed allow shaped like ours: a forwarded token (NOOP_FORWARD_TOKEN_LENGTH characters),
 * the identity headers, x-request-id (echoed, as ours does), headers_to_remove and dynamic_metadata.
 * Forked by the bench runner (bench/lib/servers.ts); prints its port as one JSON line and exits when its parent goes away.
 */
import * as grpc from '@grpc/grpc-js';
import { IDENTITY_HEADERS } from '../src/pipeline/owned-headers.js';
import type { CheckResponseMessage, HeaderValueOption } from '../src/pipeline/respond.js';
import type { CheckRequestMessage } from '../src/server/check-request.js';
import { loadConfig } from '../src/config/config.js';
import { serverOptions } from '../src/server/grpc-server.js';
import { loadProtos } from '../src/server/protos.js';

const tokenLength = Number(process.env['NOOP_FORWARD_TOKEN_LENGTH'] ?? 2048);
const depth = Number(process.env['NOOP_DEPTH'] ?? 1);
const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
let token = '';
for (let i = 0; i < tokenLength; i++) token += i % 200 === 199 ? '.' : alphabet[(i * 7) % 64];

const setHeader = (key: string, value: string): HeaderValueOption => ({
  header: { key, value },
  append: { value: false },
});
const fixed: HeaderValueOption[] = [
  setHeader('authorization', `Bearer ${token}`),
  setHeader('x-tenant-id', 'bench'),
  setHeader('x-user-id', 'user-0001@example.com'),
  setHeader('x-user-roles', 'orders:read,orders:write,cart:read,billing:read'),
  setHeader('x-auth-depth', String(depth)),
  setHeader(
    'x-auth-chain',
    Array.from({ length: depth }, (_, i) => (i === depth - 1 ? 'dest' : `hop-${i + 1}`)).join(','),
  ),
];
const setNames = new Set([...fixed.map((h) => h.header.key), 'x-request-id']);
const headersToRemove = IDENTITY_HEADERS.filter((name) => !setNames.has(name));

function answer(request: CheckRequestMessage): CheckResponseMessage {
  const requestId =
    request.attributes?.request?.http?.headers?.['x-request-id'] ?? '01JBENCHNOOP0000000000000';
  return {
    status: { code: 0, message: '' },
    ok_response: {
      headers: [...fixed, setHeader('x-request-id', requestId)],
      headers_to_remove: headersToRemove,
    },
    dynamic_metadata: {
      fields: {
        decision: { stringValue: 'allow' },
        tenant_id: { stringValue: 'bench' },
        depth: { numberValue: depth },
        request_id: { stringValue: requestId },
      },
    },
  };
}

const protos = loadProtos();
// The same stack and options as src/server/grpc-server.ts.
const defaults = loadConfig({});
const server = new grpc.Server(
  serverOptions({ maxTokenLength: defaults.maxTokenLength, idleTimeoutMs: defaults.idleTimeoutMs }),
);
server.addService(protos.authorization, {
  Check: (
    call: grpc.ServerUnaryCall<CheckRequestMessage, CheckResponseMessage>,
    callback: grpc.sendUnaryData<CheckResponseMessage>,
  ) => {
    callback(null, answer(call.request));
  },
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    process.stderr.write(`noop server: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(
    `${JSON.stringify({ msg: 'noop serving', grpc_port: port, pid: process.pid })}\n`,
  );
});
const stop = (): void => {
  server.forceShutdown();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
