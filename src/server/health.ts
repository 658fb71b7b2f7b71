import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** The Check service's health name: SERVING only while Checks can be answered (registry ready). */
export const AUTHZ_SERVICE = 'envoy.service.auth.v3.Authorization';
/** The services grpc.health.v1 knows; "" is the process as a whole (liveness). */
export const HEALTH_SERVICES = ['', AUTHZ_SERVICE] as const;
export type HealthService = (typeof HEALTH_SERVICES)[number];

interface HealthRequest {
  service?: string;
}
interface HealthResponse {
  status: ServingStatus | 'SERVICE_UNKNOWN';
}
type WatchCall = grpc.ServerWritableStream<HealthRequest, HealthResponse>;

/**
 * Serving status per health service, shared by grpc.health.v1 Check/Watch and `/readyz`.
 * `""` answers "is the process up" (liveness); the Authorization service answers "can Checks be
 * decided" (readiness: the registry has answered, and we are not shutting down).
 */
export class HealthState {
  private readonly statuses = new Map<HealthService, ServingStatus>(
    HEALTH_SERVICES.map((s) => [s, 'NOT_SERVING']),
  );
  private readonly watchers = new Map<
    WatchCall,
    { service: HealthService; send: (status: ServingStatus) => void }
  >();

  /** Readiness: whether Checks can be decided now. */
  get current(): ServingStatus {
    return this.status(AUTHZ_SERVICE);
  }

  status(service: HealthService = AUTHZ_SERVICE): ServingStatus {
    return this.statuses.get(service) ?? 'NOT_SERVING';
  }

  set(service: HealthService, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const watcher of this.watchers.values())
      if (watcher.service === service) watcher.send(status);
  }

  setAll(status: ServingStatus): void {
    for (const service of HEALTH_SERVICES) this.set(service, status);
  }

  handlers(): grpc.UntypedServiceImplementation {
    const known = (service: string | undefined): service is HealthService =>
      (HEALTH_SERVICES as readonly string[]).includes(service ?? '');
    return {
      Check: (
        call: grpc.ServerUnaryCall<HealthRequest, HealthResponse>,
        callback: grpc.sendUnaryData<HealthResponse>,
      ) => {
        const service = call.request.service ?? '';
        if (!known(service)) {
          callback({ code: grpcStatus.NOT_FOUND, details: 'unknown service' });
          return;
        }
        callback(null, { status: this.status(service) });
      },
      Watch: (call: WatchCall) => {
        const service = call.request.service ?? '';
        if (!known(service)) {
          call.write({ status: 'SERVICE_UNKNOWN' });
          return;
        }
        const send = (status: ServingStatus): void => {
          call.write({ status });
        };
        send(this.status(service));
        this.watchers.set(call, { service, send });
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
