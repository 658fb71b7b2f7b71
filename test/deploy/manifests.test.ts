/**
 * deploy/kubernetes and deploy/istio against the service they deploy (the checks:
 * manifest-checks.ts): every file parses and builds; the Deployment matches what the service reads
 * and serves; deliberately wrong copies are caught by the same checks; the mesh points at the
 * Service the kustomization creates.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { relative } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/processes.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  authorizationPolicy,
  authorizationPolicyProblems,
  availabilityProblems,
  clone,
  configMaps,
  configMapSecretProblems,
  container,
  containerOf,
  containerPortProblems,
  deployment,
  documentProblems,
  envProblems,
  exampleSecrets,
  GRPC_PORT,
  headless,
  hpa,
  HTTP_PORT,
  ISTIO,
  istioProviderProblems,
  type K8s,
  KUBERNETES,
  kustomization,
  kustomizationProblems,
  meshConfig,
  namespace,
  networkPolicy,
  networkPolicyProblems,
  parseManifestFile,
  pdb,
  podLabels,
  probeProblems,
  secretReferenceProblems,
  securityProblems,
  service,
  servicePortProblems,
  shutdownProblems,
  signingKeyProblems,
  yamlFiles,
} from './manifest-checks.js';

describe('deploy manifests: every file parses and is a complete object', () => {
  it('parses every YAML file under deploy/kubernetes and deploy/istio (one meaning in YAML 1.1 and 1.2, no duplicate keys)', () => {
    const files = [...yamlFiles(KUBERNETES), ...yamlFiles(ISTIO)];
    assert.ok(files.length >= 10, `found ${files.length} manifest files`);
    for (const file of files) {
      const docs = parseManifestFile(file);
      assert.ok(docs.length > 0, `${relative(ROOT, file)} has a document`);
      for (const doc of docs)
        assert.deepEqual(
          documentProblems(doc),
          [],
          `${relative(ROOT, file)} ${doc?.kind}/${doc?.metadata?.name}`,
        );
    }
  });

  it('lists existing resources in each kustomization, and builds everything but the examples', () => {
    for (const dir of [KUBERNETES, join(KUBERNETES, 'redis-sample')]) {
      const k = parseManifestFile(join(dir, 'kustomization.yaml'))[0];
      assert.deepEqual(kustomizationProblems(dir, k), [], relative(ROOT, dir));
      assert.equal(k.namespace, namespace, 'the sample Redis lives beside the service');
    }
    assert.ok(
      kustomization.images.some(
        (i: K8s) =>
          i.name === containerOf(deployment).image &&
          typeof i.newTag === 'string' &&
          i.newTag !== 'latest',
      ),
      'the image gets a pinned tag',
    );
  });

  // kubectl (with its built-in kustomize) is part of this project's machine image.
  it('renders with kustomize into the namespace, with the image tag and common labels', () => {
    for (const dir of [KUBERNETES, join(KUBERNETES, 'redis-sample')]) {
      const rendered = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
      assert.equal(rendered.status, 0, rendered.stderr);
      const docs = Array.from(parseAllDocuments(rendered.stdout, { uniqueKeys: true })).map(
        (d) => d.toJS() as K8s,
      );
      for (const doc of docs) {
        if (doc.kind !== 'Namespace')
          assert.equal(doc.metadata.namespace, namespace, `${doc.kind}/${doc.metadata.name}`);
        assert.equal(
          doc.metadata.labels?.['app.kubernetes.io/part-of'],
          'matryoshka-authz',
          `${doc.kind}/${doc.metadata.name} is labelled`,
        );
      }
      if (dir === KUBERNETES) {
        const tag = kustomization.images.find((i: K8s) => i.name === 'matryoshka-authz').newTag;
        const rendered = docs.find((d) => d.kind === 'Deployment');
        assert.equal(container(rendered).image, `matryoshka-authz:${tag}`);
        assert.deepEqual(
          rendered.spec.selector,
          deployment.spec.selector,
          'selectors are left alone',
        );
        assert.equal(docs.filter((d) => d.kind === 'Secret').length, 0, 'the base ships no Secret');
      }
    }
  });
});

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
