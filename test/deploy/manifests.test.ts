/**
 * deploy/kubernetes and deploy/istio against the service they deploy: ports, environment names,
 * health service names and CLI commands are read from the code (CONFIG_VARIABLES, HEALTH_SERVICES,
 * `--help`), not repeated here. Every check is a function returning a list of problems, so the same
 * check is also run on deliberately broken copies and must catch them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/config.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { AUTHZ_SERVICE, HEALTH_SERVICES } from '../../src/server/health.js';
import { MAIN, ROOT } from '../helpers/processes.js';
import { RedisServer } from '../helpers/redis-server.js';

/** A parsed manifest: YAML of arbitrary shape, navigated defensively by the checks. */
// biome-ignore lint/suspicious/noExplicitAny: manifests are YAML of arbitrary shape, checked field by field
type K8s = any;
type Problems = string[];

const KUBERNETES = join(ROOT, 'deploy/kubernetes');
const ISTIO = join(ROOT, 'deploy/istio');
const SCRIPT = join(ISTIO, 'register-principals.sh');

const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
const defaultOf = (name: string): string => {
  const value = CONFIG_VARIABLES.find((v) => v.name === name)?.default;
  assert.ok(value !== undefined, `${name} has a default in CONFIG_VARIABLES`);
  return value;
};
const GRPC_PORT = Number(defaultOf('MATRYOSHKA_GRPC_PORT'));
const HTTP_PORT = Number(defaultOf('MATRYOSHKA_HTTP_PORT'));
/** The HTTP paths of src/server/http-server.ts a probe may use (JWKS and metrics are no health signal). */
const HEALTH_PATHS = ['/healthz', '/readyz'];
/** Fields of istio.mesh.v1alpha1 MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationGrpcProvider. */
const EXT_AUTHZ_GRPC_FIELDS = [
  'service',
  'port',
  'timeout',
  'failOpen',
  'statusOnError',
  'includeRequestBodyInCheck',
];
/** Fields of istio.security.v1 AuthorizationPolicy spec. */
const AUTHZ_POLICY_FIELDS = ['selector', 'targetRef', 'targetRefs', 'rules', 'action', 'provider'];

// ---------------------------------------------------------------------------------------------
// Loading

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

/** Every document of a multi-document file; duplicate keys and YAML 1.1/1.2 ambiguities are errors. */
function parseManifestFile(file: string): K8s[] {
  const text = readFileSync(file, 'utf8');
  const parse = (version: '1.1' | '1.2'): K8s[] =>
    Array.from(parseAllDocuments(text, { uniqueKeys: true, version, prettyErrors: true })).map(
      (doc) => {
        if (doc.errors.length > 0)
          throw new Error(`${relative(ROOT, file)}: ${doc.errors[0]?.message}`);
        if (doc.warnings.length > 0)
          throw new Error(`${relative(ROOT, file)}: ${doc.warnings[0]?.message}`);
        return doc.toJS() as K8s;
      },
    );
  const docs = parse('1.2');
  // Kubernetes reads YAML with a 1.1-style parser (`yes`, `0440`, `on` mean other things there):
  // a file must mean the same under both.
  assert.deepEqual(
    parse('1.1'),
    docs,
    `${relative(ROOT, file)} reads differently as YAML 1.1 (quote the ambiguous value)`,
  );
  return docs.filter((doc) => doc !== null && doc !== undefined);
}

interface Loaded {
  file: string;
  doc: K8s;
}

function loadAll(dir: string): Loaded[] {
  return yamlFiles(dir).flatMap((file) => parseManifestFile(file).map((doc) => ({ file, doc })));
}

function only(loaded: Loaded[], kind: string, file?: string): K8s {
  const found = loaded.filter(
    (l) => l.doc?.kind === kind && (file === undefined || basename(l.file) === file),
  );
  assert.equal(found.length, 1, `exactly one ${kind}${file ? ` in ${file}` : ''}`);
  return found[0]?.doc;
}

// ---------------------------------------------------------------------------------------------
// Checks: each returns the problems it finds (empty = fine)

const matchLabels = (
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

const containerOf = (deployment: K8s): K8s =>
  deployment?.spec?.template?.spec?.containers?.[0] ?? {};
const podLabels = (deployment: K8s): Record<string, string> =>
  deployment?.spec?.template?.metadata?.labels ?? {};

function documentProblems(doc: K8s): Problems {
  const problems: Problems = [];
  if (typeof doc?.apiVersion !== 'string' || doc.apiVersion === '') problems.push('no apiVersion');
  if (typeof doc?.kind !== 'string' || doc.kind === '') problems.push('no kind');
  // A Kustomization is a build file, not an API object: it has no name.
  if (
    doc?.kind !== 'Kustomization' &&
    (typeof doc?.metadata?.name !== 'string' || doc.metadata.name === '')
  )
    problems.push('no metadata.name');
  return problems;
}

function kustomizationProblems(dir: string, kustomization: K8s): Problems {
  const problems: Problems = [];
  if (kustomization?.apiVersion !== 'kustomize.config.k8s.io/v1beta1')
    problems.push('kustomization apiVersion');
  if (typeof kustomization?.namespace !== 'string')
    problems.push('kustomization sets no namespace');
  const resources: unknown[] = kustomization?.resources ?? [];
  if (resources.length === 0) problems.push('kustomization lists no resources');
  for (const resource of resources) {
    const path = join(dir, String(resource));
    if (!existsSync(path)) problems.push(`resource ${String(resource)} does not exist`);
    else if (statSync(path).isDirectory() && !existsSync(join(path, 'kustomization.yaml')))
      problems.push(`resource ${String(resource)} is a directory without kustomization.yaml`);
  }
  // Every manifest here is either built or an example that is deliberately not built.
  for (const name of readdirSync(dir).filter(
    (n) => /\.ya?ml$/.test(n) && n !== 'kustomization.yaml',
  )) {
    if (!resources.includes(name) && !/\.example\.ya?ml$/.test(name))
      problems.push(`${name} is neither a resource nor a *.example.yaml`);
    if (resources.includes(name) && /\.example\.ya?ml$/.test(name))
      problems.push(`${name} is an example but is built`);
  }
  return problems;
}

function containerPortProblems(deployment: K8s): Problems {
  const ports: K8s[] = containerOf(deployment).ports ?? [];
  const problems: Problems = [];
  const want = [
    { name: 'grpc', containerPort: GRPC_PORT },
    { name: 'http', containerPort: HTTP_PORT },
  ];
  for (const { name, containerPort } of want) {
    const port = ports.find((p) => p.name === name);
    if (port === undefined) problems.push(`no container port named ${name}`);
    else if (port.containerPort !== containerPort)
      problems.push(
        `container port ${name} is ${port.containerPort}, the service listens on ${containerPort}`,
      );
  }
  if (ports.length !== want.length)
    problems.push(`container has ${ports.length} ports, the service opens ${want.length}`);
  return problems;
}

function resolvePort(deployment: K8s, ref: unknown): K8s | undefined {
  const ports: K8s[] = containerOf(deployment).ports ?? [];
  return ports.find((p) => (typeof ref === 'number' ? p.containerPort === ref : p.name === ref));
}

function servicePortProblems(service: K8s, deployment: K8s): Problems {
  const problems: Problems = [];
  if (!matchLabels(service?.spec?.selector, podLabels(deployment)))
    problems.push('Service selector does not select the Deployment pods');
  const expected: Record<string, { port: number; appProtocol: string }> = {
    grpc: { port: GRPC_PORT, appProtocol: 'grpc' },
    http: { port: HTTP_PORT, appProtocol: 'http' },
  };
  const ports: K8s[] = service?.spec?.ports ?? [];
  for (const [name, want] of Object.entries(expected)) {
    const port = ports.find((p) => p.name === name);
    if (port === undefined) {
      problems.push(`Service has no port ${name}`);
      continue;
    }
    const target = resolvePort(deployment, port.targetPort ?? port.port);
    if (target === undefined)
      problems.push(
        `Service port ${name} targets ${String(port.targetPort)}, which no container port is`,
      );
    else if (target.name !== name || target.containerPort !== want.port)
      problems.push(
        `Service port ${name} targets ${target.name}/${target.containerPort}, not ${name}/${want.port}`,
      );
    if (port.port !== want.port)
      problems.push(`Service port ${name} is ${port.port}, expected ${want.port}`);
    if (port.appProtocol !== want.appProtocol)
      problems.push(
        `Service port ${name} appProtocol is ${String(port.appProtocol)}, expected ${want.appProtocol}`,
      );
  }
  return problems;
}

/** Names of credentials: …SECRET…, …PASSWORD…, …_TOKEN (not MATRYOSHKA_TOKEN_TTL, a lifetime). */
const SECRET_KEY = /SECRET|PASSW(OR)?D|CREDENTIAL|PRIVATE_?KEY|API_?KEY|(^|_)TOKEN$/i;
/** A URL with a password in its userinfo (`redis://:pw@host`, `rediss://user:pw@host`). */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]+@/i;

function configMapSecretProblems(configMap: K8s): Problems {
  const problems: Problems = [];
  for (const [key, value] of Object.entries<unknown>({
    ...configMap?.data,
    ...configMap?.binaryData,
  })) {
    if (SECRET_KEY.test(key)) problems.push(`ConfigMap key ${key} looks like a secret`);
    if (URL_WITH_PASSWORD.test(String(value)))
      problems.push(`ConfigMap ${key} is a URL with a password`);
    if (key === 'REDIS_URL') problems.push('REDIS_URL belongs in a Secret, not the ConfigMap');
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----|"d"\s*:/.test(String(value)))
      problems.push(`ConfigMap ${key} holds private key material`);
  }
  return problems;
}

/** The environment a container ends up with: ConfigMaps from envFrom, then env (literals only). */
function containerEnvironment(deployment: K8s, configMaps: K8s[]): Record<string, string> {
  const container = containerOf(deployment);
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const configMap = configMaps.find((c) => c?.metadata?.name === source?.configMapRef?.name);
    Object.assign(env, configMap?.data ?? {});
  }
  for (const variable of container.env ?? [])
    if (typeof variable.value === 'string') env[variable.name] = variable.value;
  return env;
}

function envProblems(deployment: K8s, configMaps: K8s[]): Problems {
  const problems: Problems = [];
  const container = containerOf(deployment);
  const reads = (name: string): boolean => known.has(name) || name.startsWith('OTEL_');
  for (const source of container.envFrom ?? []) {
    if (source.secretRef !== undefined)
      problems.push('envFrom a Secret: its keys are unchecked; use env[].valueFrom.secretKeyRef');
    const name = source.configMapRef?.name;
    if (name === undefined) continue;
    const configMap = configMaps.find((c) => c?.metadata?.name === name);
    if (configMap === undefined) {
      problems.push(`envFrom ConfigMap ${name} is not in the kustomization`);
      continue;
    }
    if (source.prefix !== undefined) problems.push(`envFrom ${name} adds prefix ${source.prefix}`);
    for (const key of Object.keys(configMap.data ?? {}))
      if (!reads(key))
        problems.push(`ConfigMap ${name} sets ${key}, which the service does not read`);
  }
  const env: K8s[] = container.env ?? [];
  for (const variable of env)
    if (!reads(variable.name))
      problems.push(`Deployment sets ${variable.name}, which the service does not read`);
  const redis = env.find((v) => v.name === 'REDIS_URL');
  if (redis === undefined)
    problems.push('REDIS_URL is not set (the Deployment expects an external Redis)');
  else if (
    redis.value !== undefined ||
    redis.valueFrom?.secretKeyRef?.name === undefined ||
    redis.valueFrom.secretKeyRef.key === undefined
  ) {
    problems.push('REDIS_URL must come from a secretKeyRef, not a literal');
  }
  for (const variable of env) {
    if (
      variable.value !== undefined &&
      (SECRET_KEY.test(variable.name) || URL_WITH_PASSWORD.test(String(variable.value)))
    )
      problems.push(`${variable.name} is a literal secret`);
  }
  // Service links would add MATRYOSHKA_AUTHZ_PORT=tcp://… and friends: names the service does not read.
  if (deployment?.spec?.template?.spec?.enableServiceLinks !== false)
    problems.push('enableServiceLinks is not false');
  // The values themselves must pass the service's own config loader (secrets stand in as placeholders).
  const environment = containerEnvironment(deployment, configMaps);
  for (const [name, port] of [
    ['MATRYOSHKA_GRPC_PORT', GRPC_PORT],
    ['MATRYOSHKA_HTTP_PORT', HTTP_PORT],
  ] as const) {
    if (environment[name] !== undefined && Number(environment[name]) !== port)
      problems.push(`${name}=${environment[name]} disagrees with container port ${port}`);
  }
  if ((environment['MATRYOSHKA_MODE'] ?? 'enforce') !== 'enforce')
    problems.push('MATRYOSHKA_MODE is not enforce in the shipped manifests');
  if (['true', '1', 'yes'].includes((environment['MATRYOSHKA_DEBUG_REASONS'] ?? '').toLowerCase()))
    problems.push('MATRYOSHKA_DEBUG_REASONS is on');
  if (environment['MATRYOSHKA_REGISTRY_FILE'] !== undefined)
    problems.push('MATRYOSHKA_REGISTRY_FILE is for the embedded registry, not a Redis fleet');
  try {
    loadConfig({ ...environment, REDIS_URL: 'redis://redis.example:6379' });
  } catch (error) {
    problems.push(`the service refuses this environment: ${(error as Error).message}`);
  }
  return problems;
}

function signingKeyProblems(deployment: K8s): Problems {
  const container = containerOf(deployment);
  const path: unknown = (container.env ?? []).find(
    (v: K8s) => v.name === 'MATRYOSHKA_SIGNING_KEYS',
  )?.value;
  if (typeof path !== 'string') return ['MATRYOSHKA_SIGNING_KEYS is not set to a path'];
  const mount = (container.volumeMounts ?? []).find((m: K8s) =>
    path.startsWith(`${String(m.mountPath).replace(/\/$/, '')}/`),
  );
  if (mount === undefined) return [`MATRYOSHKA_SIGNING_KEYS ${path} is under no volume mount`];
  const problems: Problems = [];
  if (mount.readOnly !== true) problems.push('the signing key mount is not read-only');
  const volume = (deployment?.spec?.template?.spec?.volumes ?? []).find(
    (v: K8s) => v.name === mount.name,
  );
  if (volume?.secret?.secretName === undefined)
    problems.push(`the signing keys mount ${mount.name} is not a Secret volume`);
  const file = path.slice(String(mount.mountPath).replace(/\/$/, '').length + 1);
  const items: K8s[] | undefined = volume?.secret?.items;
  if (items !== undefined && !items.some((i) => i.path === file))
    problems.push(`the Secret volume projects no ${file}`);
  return problems;
}

/** Every Secret the Deployment needs is documented in the example, with the keys it reads. */
function secretReferenceProblems(deployment: K8s, exampleSecrets: K8s[]): Problems {
  const problems: Problems = [];
  const keysOf = (name: string): string[] | undefined => {
    const secret = exampleSecrets.find((s) => s?.kind === 'Secret' && s.metadata?.name === name);
    return secret === undefined ? undefined : Object.keys({ ...secret.data, ...secret.stringData });
  };
  for (const variable of containerOf(deployment).env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    if (ref === undefined) continue;
    const keys = keysOf(ref.name);
    if (keys === undefined)
      problems.push(`Secret ${ref.name} (for ${variable.name}) is not in secret.example.yaml`);
    else if (!keys.includes(ref.key))
      problems.push(`Secret ${ref.name} in secret.example.yaml has no key ${ref.key}`);
  }
  for (const volume of deployment?.spec?.template?.spec?.volumes ?? []) {
    if (volume.secret === undefined) continue;
    const keys = keysOf(volume.secret.secretName);
    if (keys === undefined)
      problems.push(
        `Secret ${volume.secret.secretName} (volume ${volume.name}) is not in secret.example.yaml`,
      );
    for (const item of volume.secret.items ?? [])
      if (keys !== undefined && !keys.includes(item.key))
        problems.push(`Secret ${volume.secret.secretName} has no key ${item.key}`);
  }
  return problems;
}

function probeProblems(deployment: K8s): Problems {
  const problems: Problems = [];
  const container = containerOf(deployment);
  let grpcProbes = 0;
  for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
    const probe = container[kind];
    if (probe === undefined) {
      if (kind !== 'startupProbe') problems.push(`no ${kind}`);
      continue;
    }
    if (probe.grpc !== undefined) {
      grpcProbes++;
      // kubelet's gRPC probe takes a number; it must be the port grpc.health.v1 is served on.
      if (typeof probe.grpc.port !== 'number')
        problems.push(`${kind}: a gRPC probe port must be a number`);
      else if (resolvePort(deployment, probe.grpc.port)?.name !== 'grpc')
        problems.push(`${kind}: gRPC probe on ${probe.grpc.port}, not the gRPC port ${GRPC_PORT}`);
      const service = probe.grpc.service ?? '';
      if (!(HEALTH_SERVICES as readonly string[]).includes(service))
        problems.push(
          `${kind}: health service "${service}" is not one of ${JSON.stringify(HEALTH_SERVICES)}`,
        );
      // Only the Authorization health service tracks registry readiness; "" is liveness.
      if (kind === 'readinessProbe' && service !== AUTHZ_SERVICE)
        problems.push(`readinessProbe: gRPC readiness must ask for ${AUTHZ_SERVICE}`);
    } else if (probe.httpGet !== undefined) {
      const target = resolvePort(deployment, probe.httpGet.port);
      if (target === undefined)
        problems.push(`${kind}: httpGet port ${String(probe.httpGet.port)} is no container port`);
      else if (target.name !== 'http')
        problems.push(`${kind}: httpGet on ${target.name}, not the HTTP port`);
      if (!HEALTH_PATHS.includes(probe.httpGet.path))
        problems.push(
          `${kind}: path ${String(probe.httpGet.path)} is not one of ${HEALTH_PATHS.join(', ')}`,
        );
      if (kind === 'readinessProbe' && probe.httpGet.path !== '/readyz')
        problems.push('readinessProbe: /healthz is liveness, readiness is /readyz');
    } else {
      problems.push(`${kind}: neither grpc nor httpGet`);
    }
  }
  if (grpcProbes === 0) problems.push('no probe uses grpc.health.v1');
  return problems;
}

function securityProblems(deployment: K8s): Problems {
  const problems: Problems = [];
  const pod = deployment?.spec?.template?.spec ?? {};
  const container = containerOf(deployment);
  const runAsNonRoot = container.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
  const runAsUser = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
  if (runAsNonRoot !== true) problems.push('runAsNonRoot is not true');
  if (runAsUser !== 1000)
    problems.push(`runAsUser is ${String(runAsUser)}, the image's node user is 1000`);
  if (pod.securityContext?.fsGroup === undefined)
    problems.push('no fsGroup (the key Secret must be readable by the group)');
  const seccomp =
    container.securityContext?.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type;
  if (seccomp !== 'RuntimeDefault') problems.push('seccompProfile is not RuntimeDefault');
  if (container.securityContext?.readOnlyRootFilesystem !== true)
    problems.push('root filesystem is not read-only');
  if (container.securityContext?.allowPrivilegeEscalation !== false)
    problems.push('allowPrivilegeEscalation is not false');
  if (!(container.securityContext?.capabilities?.drop ?? []).includes('ALL'))
    problems.push('capabilities do not drop ALL');
  if ((container.securityContext?.capabilities?.add ?? []).length > 0)
    problems.push('capabilities are added');
  if (container.securityContext?.privileged === true) problems.push('privileged');
  if (pod.automountServiceAccountToken !== false)
    problems.push('the pod mounts a service account token');
  for (const kind of ['requests', 'limits']) {
    for (const resource of ['cpu', 'memory'])
      if (container.resources?.[kind]?.[resource] === undefined)
        problems.push(`no ${resource} ${kind}`);
  }
  return problems;
}

function availabilityProblems(deployment: K8s, hpa: K8s, pdb: K8s): Problems {
  const problems: Problems = [];
  if (!(deployment?.spec?.replicas >= 2))
    problems.push(`replicas is ${String(deployment?.spec?.replicas)}, fewer than 2`);
  if (!matchLabels(deployment?.spec?.selector?.matchLabels, podLabels(deployment)))
    problems.push('Deployment selector does not match its pod template');
  const target = hpa?.spec?.scaleTargetRef ?? {};
  if (
    target.kind !== 'Deployment' ||
    target.apiVersion !== 'apps/v1' ||
    target.name !== deployment?.metadata?.name
  )
    problems.push('HPA does not target the Deployment');
  if (hpa?.apiVersion !== 'autoscaling/v2') problems.push('HPA is not autoscaling/v2');
  if (!(hpa?.spec?.minReplicas >= 2)) problems.push('HPA minReplicas is below 2');
  if (!(hpa?.spec?.maxReplicas >= hpa?.spec?.minReplicas))
    problems.push('HPA maxReplicas below minReplicas');
  if (
    !(hpa?.spec?.metrics ?? []).some(
      (m: K8s) =>
        m.type === 'Resource' &&
        m.resource?.name === 'cpu' &&
        m.resource?.target?.type === 'Utilization',
    )
  )
    problems.push('HPA does not scale on CPU utilization');
  if (!matchLabels(pdb?.spec?.selector?.matchLabels, podLabels(deployment)))
    problems.push('PDB does not select the Deployment pods');
  if (pdb?.spec?.minAvailable === undefined && pdb?.spec?.maxUnavailable === undefined)
    problems.push('PDB sets neither minAvailable nor maxUnavailable');
  const pod = deployment?.spec?.template?.spec ?? {};
  const spread = (pod.topologySpreadConstraints ?? []).some(
    (c: K8s) =>
      c.topologyKey === 'kubernetes.io/hostname' &&
      c.whenUnsatisfiable === 'DoNotSchedule' &&
      matchLabels(c.labelSelector?.matchLabels, podLabels(deployment)),
  );
  const antiAffinity = (
    pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []
  ).some((t: K8s) => t.topologyKey === 'kubernetes.io/hostname');
  if (!spread && !antiAffinity) problems.push('replicas are not kept on different nodes');
  return problems;
}

function preStopSeconds(container: K8s): number | undefined {
  const preStop = container?.lifecycle?.preStop;
  if (typeof preStop?.sleep?.seconds === 'number') return preStop.sleep.seconds;
  const command: unknown[] = preStop?.exec?.command ?? [];
  if (/(^|\/)sleep$/.test(String(command[0])) && /^\d+$/.test(String(command[1])))
    return Number(command[1]);
  return undefined;
}

function shutdownProblems(deployment: K8s, configMaps: K8s[]): Problems {
  const problems: Problems = [];
  const sleep = preStopSeconds(containerOf(deployment));
  if (sleep === undefined || sleep < 1)
    return ['no preStop sleep: endpoints would still route to a pod that refuses new calls'];
  const env = containerEnvironment(deployment, configMaps);
  const graceMs = Number(
    env['MATRYOSHKA_SHUTDOWN_GRACE_MS'] ?? defaultOf('MATRYOSHKA_SHUTDOWN_GRACE_MS'),
  );
  const termination = deployment?.spec?.template?.spec?.terminationGracePeriodSeconds ?? 30;
  if (!(termination > sleep + graceMs / 1000))
    problems.push(
      `terminationGracePeriodSeconds ${termination} does not exceed preStop ${sleep} s + drain ${graceMs / 1000} s`,
    );
  return problems;
}

const portNumbers = (
  ports: K8s[] | undefined,
  deployment: K8s,
): Array<{ port: number | undefined; protocol: string }> =>
  (ports ?? []).map((p) => ({
    port: typeof p.port === 'number' ? p.port : resolvePort(deployment, p.port)?.containerPort,
    protocol: p.protocol ?? 'TCP',
  }));

function networkPolicyProblems(policy: K8s, deployment: K8s): Problems {
  const problems: Problems = [];
  if (!matchLabels(policy?.spec?.podSelector?.matchLabels, podLabels(deployment)))
    problems.push('NetworkPolicy does not select the Deployment pods');
  const types: string[] = policy?.spec?.policyTypes ?? [];
  if (!types.includes('Ingress') || !types.includes('Egress'))
    problems.push('NetworkPolicy does not restrict both Ingress and Egress');
  const ingress = (policy?.spec?.ingress ?? []).flatMap((rule: K8s) =>
    portNumbers(rule.ports, deployment),
  );
  for (const port of [GRPC_PORT, HTTP_PORT])
    if (!ingress.some((p: K8s) => p.port === port))
      problems.push(`no ingress rule for port ${port}`);
  for (const rule of policy?.spec?.ingress ?? [])
    if ((rule.from ?? []).length === 0) problems.push('an ingress rule admits every source');
  for (const port of portNumbers(
    (policy?.spec?.ingress ?? []).flatMap((r: K8s) => r.ports ?? []),
    deployment,
  )) {
    if (port.port !== GRPC_PORT && port.port !== HTTP_PORT)
      problems.push(`ingress port ${String(port.port)} is not a port the service listens on`);
  }
  const egress = (policy?.spec?.egress ?? []).flatMap((rule: K8s) =>
    portNumbers(rule.ports, deployment),
  );
  for (const [port, protocol, what] of [
    [53, 'UDP', 'DNS'],
    [6379, 'TCP', 'Redis'],
    [443, 'TCP', 'IdP JWKS over HTTPS'],
  ] as const) {
    if (!egress.some((p: K8s) => p.port === port && p.protocol === protocol))
      problems.push(`no egress to ${port}/${protocol} (${what})`);
  }
  return problems;
}

const durationSeconds = (value: unknown): number => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(String(value));
  if (match === null) return Number.NaN;
  return Number(match[1]) * ({ ms: 0.001, s: 1, m: 60 } as const)[match[2] as 'ms' | 's' | 'm'];
};

function istioProviderProblems(meshConfig: K8s, service: K8s, namespace: string): Problems {
  const problems: Problems = [];
  const providers: K8s[] = meshConfig?.spec?.meshConfig?.extensionProviders ?? [];
  const provider = providers.find((p) => p.envoyExtAuthzGrpc !== undefined);
  if (provider === undefined) return ['no envoyExtAuthzGrpc extension provider'];
  const grpc = provider.envoyExtAuthzGrpc;
  for (const field of Object.keys(grpc))
    if (!EXT_AUTHZ_GRPC_FIELDS.includes(field))
      problems.push(`envoyExtAuthzGrpc has no field ${field}`);
  for (const field of Object.keys(provider))
    if (!['name', 'envoyExtAuthzGrpc'].includes(field))
      problems.push(`extension provider field ${field}`);
  const fqdn = `${service?.metadata?.name}.${namespace}.svc.cluster.local`;
  if (grpc.service !== fqdn)
    problems.push(`provider service ${String(grpc.service)} is not the Service ${fqdn}`);
  const servicePort = (service?.spec?.ports ?? []).find((p: K8s) => p.port === grpc.port);
  if (grpc.port !== GRPC_PORT)
    problems.push(`provider port ${String(grpc.port)} is not the gRPC port ${GRPC_PORT}`);
  else if (servicePort?.appProtocol !== 'grpc')
    problems.push('provider port is not the Service grpc port');
  const timeout = durationSeconds(grpc.timeout);
  if (!(timeout > 0 && timeout <= 2))
    problems.push(
      `timeout ${String(grpc.timeout)} is unset or too long (Istio's default is 600 s)`,
    );
  if (grpc.failOpen !== false) problems.push('failOpen is not false');
  if (grpc.statusOnError !== '503')
    problems.push(`statusOnError is ${JSON.stringify(grpc.statusOnError)}, not "503"`);
  return problems;
}

function authorizationPolicyProblems(policy: K8s, meshConfig: K8s, deployment: K8s): Problems {
  const problems: Problems = [];
  for (const field of Object.keys(policy?.spec ?? {}))
    if (!AUTHZ_POLICY_FIELDS.includes(field))
      problems.push(`AuthorizationPolicy has no field ${field}`);
  if (!/^security\.istio\.io\/v1(beta1)?$/.test(String(policy?.apiVersion)))
    problems.push('AuthorizationPolicy apiVersion');
  if (policy?.spec?.action !== 'CUSTOM') problems.push('action is not CUSTOM');
  const names = (meshConfig?.spec?.meshConfig?.extensionProviders ?? []).map((p: K8s) => p.name);
  if (!names.includes(policy?.spec?.provider?.name))
    problems.push(
      `provider ${String(policy?.spec?.provider?.name)} is not an extension provider (${names.join(', ')})`,
    );
  const selector = policy?.spec?.selector?.matchLabels;
  if (selector === undefined || Object.keys(selector).length === 0)
    problems.push(
      'no workload selector (a selector-less CUSTOM policy in the root namespace covers the whole mesh)',
    );
  else if (matchLabels(selector, podLabels(deployment)))
    problems.push('the policy selects the authz pods themselves');
  if ((policy?.spec?.rules ?? []).length === 0)
    problems.push('no rules: a CUSTOM policy without rules never calls the provider');
  return problems;
}

/** `cmd verb` → the flags its usage line allows, from the CLI's own `--help`. */
function usageCommands(usage: string): Map<string, Set<string>> {
  const commands = new Map<string, Set<string>>();
  let last: Set<string> | undefined;
  for (const line of usage.split('\n').slice(1)) {
    for (const segment of line.trim().split(/\s{3,}/)) {
      const flags = [...segment.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]);
      const command = /^([a-z]+)(?: ([a-z]+))?(?=\s|$)/.exec(segment);
      if (command !== null) {
        last = new Set(flags);
        commands.set(
          command[2] === undefined ? (command[1] ?? '') : `${command[1]} ${command[2]}`,
          last,
        );
      } else if (/^\[?--/.test(segment) && last !== undefined) {
        for (const flag of flags) last.add(flag); // a continuation line of the previous command
      }
    }
  }
  return commands;
}

/** Calls of the CLI in the script (`$cli sub verb --flag …`) that `--help` does not list. */
function scriptProblems(script: string, usage: string): Problems {
  const problems: Problems = [];
  const syntax = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
  if (syntax.status !== 0) problems.push(`sh -n: ${syntax.stderr.trim()}`);
  if (!/^set -eu$/m.test(script)) problems.push('no `set -eu`');
  if (!script.startsWith('#!/bin/sh\n')) problems.push('not a #!/bin/sh script');
  const commands = usageCommands(usage);
  const code = script
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n');
  const calls = [...code.matchAll(/\$\{?cli\}?\s+([a-z]+)\s+([a-z]+)([^\n]*)/g)];
  if (calls.length === 0) problems.push('the script calls no CLI command');
  for (const call of calls)
    problems.push(...cliCallProblems(`${call[1]} ${call[2]}`, call[3] ?? '', commands));
  return problems;
}

function cliCallProblems(
  command: string,
  rest: string,
  commands: Map<string, Set<string>>,
): Problems {
  const allowed = commands.get(command);
  if (allowed === undefined) return [`the CLI has no command \`${command}\``];
  return [...rest.matchAll(/--[a-z][a-z-]*/g)]
    .filter((m) => !allowed.has(m[0]))
    .map((m) => `\`${command}\` has no flag ${m[0]}`);
}

// ---------------------------------------------------------------------------------------------
// The shipped files

const base = loadAll(KUBERNETES).filter((l) => dirname(l.file) === KUBERNETES);
const built = base.filter(
  (l) => !/\.example\.ya?ml$/.test(l.file) && l.doc.kind !== 'Kustomization',
);
const kustomization = only(base, 'Kustomization');
const namespace: string = kustomization.namespace;
const deployment = only(built, 'Deployment');
const service = only(built, 'Service', 'service.yaml');
const headless = only(built, 'Service', 'service-headless.yaml');
const hpa = only(built, 'HorizontalPodAutoscaler');
const pdb = only(built, 'PodDisruptionBudget');
const networkPolicy = only(built, 'NetworkPolicy');
const configMaps = built.filter((l) => l.doc.kind === 'ConfigMap').map((l) => l.doc);
const exampleSecrets = base.filter((l) => /\.example\.ya?ml$/.test(l.file)).map((l) => l.doc);
const istio = loadAll(ISTIO);
const meshConfig = only(istio, 'IstioOperator', 'mesh-config.yaml');
const authorizationPolicy = only(istio, 'AuthorizationPolicy', 'authorization-policy.yaml');
const usage = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' }).stdout;
const script = readFileSync(SCRIPT, 'utf8');

const clone = <T>(value: T): T => structuredClone(value);
const container = (d: K8s): K8s => d.spec.template.spec.containers[0];

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

describe('deploy/istio/register-principals.sh', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis.dispose();
  });

  const run = (input: string, env: Record<string, string>) =>
    spawnSync('sh', [SCRIPT], {
      input,
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '', ...env },
      timeout: 60_000,
    });
  const cli = `${process.execPath} ${MAIN}`;

  it('passes sh -n and calls only CLI commands and flags that `--help` lists', () => {
    assert.ok(usageCommands(usage).get('principal map')?.has('--sid'), 'the usage text was read');
    assert.deepEqual(scriptProblems(script, usage), []);
    assert.ok((statSync(SCRIPT).mode & 0o111) !== 0, 'executable');
  });

  it('catches a command the CLI does not have, a wrong flag, and a syntax error', () => {
    assert.match(
      scriptProblems(script.replace('$cli principal map', '$cli principal add'), usage).join('\n'),
      /the CLI has no command `principal add`/,
    );
    assert.match(
      scriptProblems(script.replace('--sid "$sid"', '--service "$sid"'), usage).join('\n'),
      /`principal map` has no flag --service/,
    );
    assert.match(scriptProblems(script.replace(/\ndone\n?$/, '\n'), usage).join('\n'), /sh -n/);
  });

  it('maps namespace/serviceaccount and SPIFFE ids to sids in Redis, through the real CLI', async () => {
    const list =
      '# principals\nshop/orders   orders\n\nspiffe://cluster.local/ns/edge/sa/gateway gateway # the entry\nshop/cart cart';
    const dry = run(list, { DRY_RUN: '1', MATRYOSHKA_CLI: cli, TRUST_DOMAIN: 'mesh.example' });
    assert.equal(dry.status, 0, dry.stderr);
    const printed = dry.stdout.trim().split('\n');
    assert.equal(printed.length, 3);
    for (const line of printed) {
      assert.ok(line.startsWith(`${cli} `), line);
      const [command, verb, ...rest] = line.slice(cli.length + 1).split(' ');
      assert.deepEqual(
        cliCallProblems(`${command} ${verb}`, rest.join(' '), usageCommands(usage)),
        [],
        line,
      );
    }
    assert.match(
      dry.stdout,
      /--principal spiffe:\/\/mesh\.example\/ns\/shop\/sa\/orders --sid orders/,
    );

    const result = run(list, { REDIS_URL: redis.url, MATRYOSHKA_CLI: cli });
    assert.equal(result.status, 0, result.stderr);
    const client = redis.client();
    try {
      assert.deepEqual(await client.hgetall(new RedisLayout().principals), {
        'spiffe://cluster.local/ns/shop/sa/orders': 'orders',
        'spiffe://cluster.local/ns/edge/sa/gateway': 'gateway',
        'spiffe://cluster.local/ns/shop/sa/cart': 'cart',
      });
      // A bad line anywhere: exit 2, one line naming it, and nothing written.
      const bad = run('shop/payments payments\nshop orders-v2\n', {
        REDIS_URL: redis.url,
        MATRYOSHKA_CLI: cli,
      });
      assert.equal(bad.status, 2);
      assert.match(
        bad.stderr,
        /^register-principals: stdin:2: 'shop' is not <namespace>\/<serviceaccount>/,
      );
      const badSid = run('shop/payments -x\n', { REDIS_URL: redis.url, MATRYOSHKA_CLI: cli });
      assert.equal(badSid.status, 2);
      assert.equal(
        await client.hget(
          new RedisLayout().principals,
          'spiffe://cluster.local/ns/shop/sa/payments',
        ),
        null,
      );
      // The CLI's own failure (no Redis) stops the script with its exit code.
      const noRedis = run('shop/payments payments\n', { MATRYOSHKA_CLI: cli });
      assert.equal(noRedis.status, 2);
      assert.match(noRedis.stderr, /REDIS_URL/);
    } finally {
      client.disconnect();
    }
  });
});
