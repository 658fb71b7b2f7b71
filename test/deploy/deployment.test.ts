/** deploy/kubernetes: the Deployment matches what the service reads and serves (checks: manifest-checks.ts). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/processes.js';
import {
  GRPC_PORT,
  containerPortProblems,
  servicePortProblems,
  configMapSecretProblems,
  envProblems,
  signingKeyProblems,
  secretReferenceProblems,
  probeProblems,
  securityProblems,
  availabilityProblems,
  shutdownProblems,
  networkPolicyProblems,
  namespace,
  deployment,
  service,
  headless,
  hpa,
  pdb,
  networkPolicy,
  configMaps,
  exampleSecrets,
} from './manifest-checks.js';

describe('deploy/kubernetes: the Deployment matches what the service reads and serves', () => {
  it('opens the ports of CONFIG_VARIABLES, and the Service targets them by name and number', () => {
    assert.deepEqual(containerPortProblems(deployment), []);
    assert.deepEqual(servicePortProblems(service, deployment), []);
  });

  it("gives Envoy a headless Service on the gRPC port, the one envoy/envoy.yaml's authz cluster resolves", () => {
    assert.equal(headless.spec.clusterIP, 'None');
    assert.deepEqual(
      headless.spec.ports.map((p: { name: string; port: number; targetPort: string }) => [
        p.name,
        p.port,
        p.targetPort,
      ]),
      [['grpc', GRPC_PORT, 'grpc']],
    );
    assert.deepEqual(headless.spec.selector, service.spec.selector, 'selects the same pods');
    const envoy = readFileSync(join(ROOT, 'envoy/envoy.yaml'), 'utf8');
    assert.match(
      envoy,
      new RegExp(`address: ${headless.metadata.name}\\.${namespace}\\.svc\\.cluster\\.local`),
    );
  });

  it('sets only variables the service reads; REDIS_URL from a Secret; values the config loader accepts', () => {
    assert.deepEqual(envProblems(deployment, configMaps), []);
    for (const configMap of configMaps)
      assert.deepEqual(configMapSecretProblems(configMap), [], configMap.metadata.name);
    assert.deepEqual(signingKeyProblems(deployment), []);
    assert.deepEqual(secretReferenceProblems(deployment, exampleSecrets), []);
    for (const secret of exampleSecrets) {
      for (const value of Object.values<string>({ ...secret.stringData }))
        assert.match(
          value,
          /PLACEHOLDER/,
          `${secret.metadata.name}: example values are placeholders`,
        );
    }
  });

  it('probes the ports that exist, with health service names the server knows', () => {
    assert.deepEqual(probeProblems(deployment), []);
  });

  it('runs non-root with a read-only root filesystem, bounded resources and no API token', () => {
    assert.deepEqual(securityProblems(deployment), []);
  });

  it('keeps at least two replicas on different nodes; HPA and PDB act on the Deployment', () => {
    assert.deepEqual(availabilityProblems(deployment, hpa, pdb), []);
  });

  it('sleeps in preStop and gives the drain time before the kill', () => {
    assert.deepEqual(shutdownProblems(deployment, configMaps), []);
  });

  it('admits ext_authz and monitoring traffic, and lets out DNS, Redis and HTTPS', () => {
    assert.deepEqual(networkPolicyProblems(networkPolicy, deployment), []);
  });
});
