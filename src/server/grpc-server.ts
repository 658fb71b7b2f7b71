import * as grpc from '@grpc/grpc-js';
import type { CheckResponseMessage } from '../pipeline/respond.js';
import type { CheckRequestMessage } from './check-request.js';
import type { HealthState } from './health.js';
import { loadProtos } from './protos.js';

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly credentials: grpc.ServerCredentials;
  readonly health: HealthState;
  /**
   * Must never reject: every outcome, denial or error, is a CheckResponse. `deadline` is the
   * caller's (Envoy sends `grpc-timeout`), in epoch ms, or undefined when it set none.
   */
  readonly check: (request: CheckRequestMessage, deadline: number | undefined) => Promise<CheckResponseMessage>;
}

export interface RunningGrpcServer {
  readonly port: number;
  readonly server: grpc.Server;
  /** Stop accepting, let in-flight calls finish (up to `graceMs`), then force-close. */
  shutdown(graceMs: number): Promise<void>;
}

/**
 * The thin transport: Envoy's Check and grpc.health.v1 over one port. (grpc-js exposes no HTTP/2
 * window settings for servers; envoy/envoy.yaml raises Envoy's side and keeps several connections.)
 */
export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.keepalive_permit_without_calls': 1,
};

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const protos = loadProtos();
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(protos.authorization, {
    Check: (call: grpc.ServerUnaryCall<CheckRequestMessage, CheckResponseMessage>, callback: grpc.sendUnaryData<CheckResponseMessage>) => {
      const deadline = Number(call.getDeadline());
      options.check(call.request, Number.isFinite(deadline) ? deadline : undefined).then(
        (response) => callback(null, response),
        () => callback({ code: grpc.status.INTERNAL, details: 'internal error' }),
      );
    },
  });
  server.addService(protos.health, options.health.handlers());
  const port = await new Promise<number>((resolve, reject) => {
    const address = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
    server.bindAsync(address, options.credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  return {
    port,
    server,
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
