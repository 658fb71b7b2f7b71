import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** The services grpc.health.v1 knows; "" is the server as a whole. */
export const HEALTH_SERVICES = ['', 'envoy.service.auth.v3.Authorization'] as const;

interface HealthRequest {
  service?: string;
}
interface HealthResponse {
  status: ServingStatus | 'SERVICE_UNKNOWN';
}

/** Serving status shared by grpc.health.v1 Check/Watch and `/readyz`; watchers hear every change. */
export class HealthState {
  private status: ServingStatus = 'NOT_SERVING';
  private readonly watchers = new Map<grpc.ServerWritableStream<HealthRequest, HealthResponse>, (status: ServingStatus) => void>();

  get current(): ServingStatus {
    return this.status;
  }

  set(status: ServingStatus): void {
    if (status === this.status) return;
    this.status = status;
    for (const watcher of this.watchers.values()) watcher(status);
  }

  handlers(): grpc.UntypedServiceImplementation {
    const known = (service: string | undefined): boolean => (HEALTH_SERVICES as readonly string[]).includes(service ?? '');
    return {
      Check: (call: grpc.ServerUnaryCall<HealthRequest, HealthResponse>, callback: grpc.sendUnaryData<HealthResponse>) => {
        if (!known(call.request.service)) {
          callback({ code: grpcStatus.NOT_FOUND, details: 'unknown service' });
          return;
        }
        callback(null, { status: this.status });
      },
      Watch: (call: grpc.ServerWritableStream<HealthRequest, HealthResponse>) => {
        if (!known(call.request.service)) {
          call.write({ status: 'SERVICE_UNKNOWN' });
          return;
        }
        const send = (status: ServingStatus): void => {
          call.write({ status });
        };
        send(this.status);
        this.watchers.set(call, send);
        const stop = (): void => {
          this.watchers.delete(call);
        };
        call.on('cancelled', stop);
        call.on('close', stop);
        call.on('error', stop);
      },
    };
  }

  /** End every Watch stream (at shutdown), so clients see the stream close rather than hang. */
  endWatches(): void {
    for (const call of this.watchers.keys()) call.end();
    this.watchers.clear();
  }
}
