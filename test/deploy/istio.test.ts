/** deploy/istio: the mesh points at the Service the kustomization creates (checks: manifest-checks.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HTTP_PORT,
  podLabels,
  istioProviderProblems,
  authorizationPolicyProblems,
  namespace,
  deployment,
  service,
  meshConfig,
  authorizationPolicy,
  clone,
} from './manifest-checks.js';

describe('deploy/istio: the mesh points at the Service the kustomization creates', () => {
  it('extension provider: the Service FQDN, the gRPC port, a short timeout, fail closed with 503', () => {
    assert.deepEqual(istioProviderProblems(meshConfig, service, namespace), []);
  });

  it('AuthorizationPolicy: CUSTOM with the provider of mesh-config.yaml, on labelled workloads only', () => {
    assert.deepEqual(authorizationPolicyProblems(authorizationPolicy, meshConfig, deployment), []);
  });

  it('catches a wrong port, namespace, misspelt field, default timeout or provider name', () => {
    const m = clone(meshConfig);
    const grpc = m.spec.meshConfig.extensionProviders[0].envoyExtAuthzGrpc;
    grpc.port = HTTP_PORT;
    grpc.service = 'matryoshka-authz.default.svc.cluster.local';
    grpc.failopen = false;
    grpc.timeout = '600s';
    const problems = istioProviderProblems(m, service, namespace).join('\n');
    assert.match(problems, /provider port 9192 is not the gRPC port 9191/);
    assert.match(
      problems,
      /is not the Service matryoshka-authz.matryoshka-authz.svc.cluster.local/,
    );
    assert.match(problems, /envoyExtAuthzGrpc has no field failopen/);
    assert.match(problems, /timeout 600s is unset or too long/);
    const p = clone(authorizationPolicy);
    p.spec.provider.name = 'matryoshka';
    p.spec.selector.matchLabels = { ...podLabels(deployment) };
    const policy = authorizationPolicyProblems(p, meshConfig, deployment).join('\n');
    assert.match(policy, /provider matryoshka is not an extension provider/);
    assert.match(policy, /selects the authz pods themselves/);
  });
});
