/** deploy/kubernetes: deliberately wrong copies of the manifests are caught by the same checks. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import {
  type K8s,
  KUBERNETES,
  HTTP_PORT,
  documentProblems,
  kustomizationProblems,
  containerPortProblems,
  servicePortProblems,
  configMapSecretProblems,
  envProblems,
  secretReferenceProblems,
  probeProblems,
  securityProblems,
  availabilityProblems,
  shutdownProblems,
  networkPolicyProblems,
  kustomization,
  deployment,
  service,
  hpa,
  pdb,
  networkPolicy,
  configMaps,
  exampleSecrets,
  clone,
  container,
} from './manifest-checks.js';

describe('deploy/kubernetes: deliberately wrong copies are caught', () => {
  it('an environment variable the service does not read (Deployment or ConfigMap)', () => {
    const d = clone(deployment);
    container(d).env.push({ name: 'MATRYOSHKA_GRPC_PROT', value: '9191' });
    assert.match(
      envProblems(d, configMaps).join('\n'),
      /MATRYOSHKA_GRPC_PROT, which the service does not read/,
    );
    const c = clone(configMaps);
    c[0].data.REDIS_HOST = 'redis';
    assert.match(
      envProblems(deployment, c).join('\n'),
      /sets REDIS_HOST, which the service does not read/,
    );
  });

  it('a value the service refuses, or a port variable that disagrees with the container port', () => {
    const c = clone(configMaps);
    c[0].data.MATRYOSHKA_MAX_DEPTH = 'eight';
    assert.match(
      envProblems(deployment, c).join('\n'),
      /refuses this environment: MATRYOSHKA_MAX_DEPTH/,
    );
    c[0].data.MATRYOSHKA_MAX_DEPTH = '8';
    c[0].data.MATRYOSHKA_GRPC_PORT = '9000';
    assert.match(envProblems(deployment, c).join('\n'), /MATRYOSHKA_GRPC_PORT=9000 disagrees/);
  });

  it('REDIS_URL as a literal, a secret in the ConfigMap, an undocumented Secret', () => {
    const d = clone(deployment);
    container(d).env = container(d).env.map((v: K8s) =>
      v.name === 'REDIS_URL' ? { name: 'REDIS_URL', value: 'redis://:hunter2@redis:6379' } : v,
    );
    const problems = envProblems(d, configMaps).join('\n');
    assert.match(problems, /REDIS_URL must come from a secretKeyRef/);
    assert.match(problems, /REDIS_URL is a literal secret/);
    const c = clone(configMaps[0]);
    c.data.OTEL_EXPORTER_OTLP_HEADERS_TOKEN = 'abc';
    c.data.OTEL_EXPORTER_OTLP_ENDPOINT = 'https://user:pw@collector:4318';
    const cm = configMapSecretProblems(c).join('\n');
    assert.match(cm, /OTEL_EXPORTER_OTLP_HEADERS_TOKEN looks like a secret/);
    assert.match(cm, /OTEL_EXPORTER_OTLP_ENDPOINT is a URL with a password/);
    const s = clone(deployment);
    container(s).env.find((v: K8s) => v.name === 'REDIS_URL').valueFrom.secretKeyRef.name =
      'redis-credentials';
    assert.match(
      secretReferenceProblems(s, exampleSecrets).join('\n'),
      /Secret redis-credentials \(for REDIS_URL\) is not in secret.example.yaml/,
    );
  });

  it("ports that are not the service's, and a Service that targets the wrong one", () => {
    const d = clone(deployment);
    container(d).ports[0].containerPort = 9190;
    assert.match(
      containerPortProblems(d).join('\n'),
      /container port grpc is 9190, the service listens on 9191/,
    );
    const s = clone(service);
    s.spec.ports[0].targetPort = 'http';
    assert.match(
      servicePortProblems(s, deployment).join('\n'),
      /Service port grpc targets http\/9192/,
    );
    s.spec.ports[0].targetPort = 'grpcc';
    assert.match(
      servicePortProblems(s, deployment).join('\n'),
      /targets grpcc, which no container port is/,
    );
  });

  it('a probe on a port or health service that does not exist', () => {
    const d = clone(deployment);
    container(d).livenessProbe.grpc.service = 'envoy.service.auth.v3.Authorisation';
    assert.match(
      probeProblems(d).join('\n'),
      /health service "envoy.service.auth.v3.Authorisation" is not one of/,
    );
    const h = clone(deployment);
    container(h).readinessProbe = { httpGet: { path: '/ready', port: 'metrics' } };
    const problems = probeProblems(h).join('\n');
    assert.match(problems, /httpGet port metrics is no container port/);
    assert.match(problems, /path \/ready is not one of/);
    const g = clone(deployment);
    container(g).startupProbe.grpc.port = HTTP_PORT;
    assert.match(probeProblems(g).join('\n'), /gRPC probe on 9192, not the gRPC port/);
  });

  it('root, a writable root filesystem, one replica, HPA/PDB aimed elsewhere, a short grace period', () => {
    const d = clone(deployment);
    container(d).securityContext.runAsNonRoot = false;
    container(d).securityContext.readOnlyRootFilesystem = false;
    const security = securityProblems(d).join('\n');
    assert.match(security, /runAsNonRoot is not true/);
    assert.match(security, /root filesystem is not read-only/);
    d.spec.replicas = 1;
    const h = clone(hpa);
    h.spec.scaleTargetRef.name = 'matryoshka';
    const p = clone(pdb);
    p.spec.selector.matchLabels = { app: 'matryoshka-authz' };
    const availability = availabilityProblems(d, h, p).join('\n');
    assert.match(availability, /replicas is 1, fewer than 2/);
    assert.match(availability, /HPA does not target the Deployment/);
    assert.match(availability, /PDB does not select the Deployment pods/);
    d.spec.template.spec.terminationGracePeriodSeconds = 15;
    assert.match(
      shutdownProblems(d, configMaps).join('\n'),
      /terminationGracePeriodSeconds 15 does not exceed preStop 10 s \+ drain 10 s/,
    );
    delete container(d).lifecycle;
    assert.match(shutdownProblems(d, configMaps).join('\n'), /no preStop sleep/);
  });

  it('a NetworkPolicy that forgets DNS or the gRPC port', () => {
    const n = clone(networkPolicy);
    n.spec.egress = n.spec.egress.filter(
      (r: K8s) => !(r.ports ?? []).some((p: K8s) => p.port === 53),
    );
    n.spec.ingress[0].ports[0].port = 9999;
    const problems = networkPolicyProblems(n, deployment).join('\n');
    assert.match(problems, /no egress to 53\/UDP \(DNS\)/);
    assert.match(problems, /no ingress rule for port 9191/);
  });

  it('a resource the kustomization lists but that does not exist', () => {
    const k = clone(kustomization);
    k.resources.push('ingress.yaml');
    assert.match(
      kustomizationProblems(KUBERNETES, k).join('\n'),
      /resource ingress.yaml does not exist/,
    );
    k.resources = k.resources.filter((r: string) => r !== 'hpa.yaml' && r !== 'ingress.yaml');
    assert.match(
      kustomizationProblems(KUBERNETES, k).join('\n'),
      /hpa.yaml is neither a resource nor a \*.example.yaml/,
    );
  });

  it("a document without a name, and a file that means something else to Kubernetes' YAML 1.1", () => {
    assert.deepEqual(documentProblems({ apiVersion: 'v1', kind: 'Service', metadata: {} }), [
      'no metadata.name',
    ]);
    const docs = (version: '1.1' | '1.2'): unknown =>
      Array.from(parseAllDocuments('mode: 0440\n', { version })).map((d) => d.toJS());
    assert.notDeepEqual(
      docs('1.1'),
      docs('1.2'),
      'the 1.1/1.2 comparison in parseManifestFile can catch a difference',
    );
  });
});
