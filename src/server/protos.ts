import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** proto/ sits at the package root: two levels above dist/src/server. */
export const PROTO_ROOT = fileURLToPath(new URL('../../../proto/', import.meta.url));

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export interface LoadedProtos {
  authorization: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
  /** Client constructors, for tests, the demo and load generators. */
  AuthorizationClient: grpc.ServiceClientConstructor;
  HealthClient: grpc.ServiceClientConstructor;
}

let loaded: LoadedProtos | undefined;

export function loadProtos(): LoadedProtos {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync(
    ['envoy/service/auth/v3/external_auth.proto', 'grpc/health/v1/health.proto'],
    LOADER_OPTIONS,
  );
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const Authorization = pkg.envoy.service.auth.v3.Authorization;
  const Health = pkg.grpc.health.v1.Health;
  loaded = {
    authorization: Authorization.service,
    health: Health.service,
    AuthorizationClient: Authorization,
    HealthClient: Health,
  };
  return loaded;
}
