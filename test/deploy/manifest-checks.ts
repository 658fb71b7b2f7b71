/**
 * The checks of deploy/kubernetes and deploy/istio against the service they deploy: ports,
 * environment names, health service names and CLI commands are read from the code
 * (CONFIG_VARIABLES, HEALTH_SERVICES, `--help`), not repeated here. Every check is a function
 * returning a list of problems, so the same check is also run on deliberately broken copies
 * (deployment-mistakes.test.ts) and must catch them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/config.js';
import { AUTHZ_SERVICE, HEALTH_SERVICES } from '../../src/server/health.js';
import { MAIN, ROOT } from '../helpers/processes.js';

/** A parsed manifest: YAML of arbitrary shape, navigated defensively by the checks. */
// biome-ignore lint/suspicious/noExplicitAny: manifests are YAML of arbitrary shape, checked field by field
export type K8s = any;
export type Problems = string[];

export const KUBERNETES = join(ROOT, 'deploy/kubernetes');
export const ISTIO = join(ROOT, 'deploy/istio');
export const SCRIPT = join(ISTIO, 'register-principals.sh');

export const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
export const defaultOf = (name: string): string => {
  const value = CONFIG_VARIABLES.find((v) => v.name === name)?.default;
  assert.ok(value !== undefined, `${name} has a default in CONFIG_VARIABLES`);
  return value;
};
export const GRPC_PORT = Number(defaultOf('MATRYOSHKA_GRPC_PORT'));
export const HTTP_PORT = Number(defaultOf('MATRYOSHKA_HTTP_PORT'));
/** The HTTP paths of src/server/http-server.ts a probe may use (JWKS and metrics are no health signal). */
export const HEALTH_PATHS = ['/healthz', '/readyz'];
/** Fields of istio.mesh.v1alpha1 MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationGrpcProvider. */
export const EXT_AUTHZ_GRPC_FIELDS = [
  'service',
  'port',
  'timeout',
  'failOpen',
  'statusOnError',
  'includeRequestBodyInCheck',
];
/** Fields of istio.security.v1 AuthorizationPolicy spec. */
export const AUTHZ_POLICY_FIELDS = [
  'selector',
  'targetRef',
  'targetRefs',
  'rules',
  'action',
  'provider',
];

// ---------------------------------------------------------------------------------------------
// Loading

export function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

/** Every document of a multi-document file; duplicate keys and YAML 1.1/1.2 ambiguities are errors. */
export function parseManifestFile(file: string): K8s[] {
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

export interface Loaded {
  file: string;
  doc: K8s;
}

export function loadAll(dir: string): Loaded[] {
  return yamlFiles(dir).flatMap((file) => parseManifestFile(file).map((doc) => ({ file, doc })));
}

export function only(loaded: Loaded[], kind: string, file?: string): K8s {
  const found = loaded.filter(
    (l) => l.doc?.kind === kind && (file === undefined || basename(l.file) === file),
  );
  assert.equal(found.length, 1, `exactly one ${kind}${file ? ` in ${file}` : ''}`);
  return found[0]?.doc;
}

// ---------------------------------------------------------------------------------------------
// Checks: each returns the problems it finds (empty = fine)

export const matchLabels = (
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

export const containerOf = (deployment: K8s): K8s =>
  deployment?.spec?.template?.spec?.containers?.[0] ?? {};
export const podLabels = (deployment: K8s): Record<string, string> =>
  deployment?.spec?.template?.metadata?.labels ?? {};

export function documentProblems(doc: K8s): Problems {
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

export function kustomizationProblems(dir: string, kustomization: K8s): Problems {
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

export function containerPortProblems(deployment: K8s): Problems {
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

export function resolvePort(deployment: K8s, ref: unknown): K8s | undefined {
  const ports: K8s[] = containerOf(deployment).ports ?? [];
  return ports.find((p) => (typeof ref === 'number' ? p.containerPort === ref : p.name === ref));
}

export function servicePortProblems(service: K8s, deployment: K8s): Problems {
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
export const SECRET_KEY = /SECRET|PASSW(OR)?D|CREDENTIAL|PRIVATE_?KEY|API_?KEY|(^|_)TOKEN$/i;
/** A URL with a password in its userinfo (`redis://:pw@host`, `rediss://user:pw@host`). */
export const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]+@/i;

export function configMapSecretProblems(configMap: K8s): Problems {
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
export function containerEnvironment(deployment: K8s, configMaps: K8s[]): Record<string, string> {
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

export function envProblems(deployment: K8s, configMaps: K8s[]): Problems {
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

export function signingKeyProblems(deployment: K8s): Problems {
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
export function secretReferenceProblems(deployment: K8s, exampleSecrets: K8s[]): Problems {
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

export function probeProblems(deployment: K8s): Problems {
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

export function securityProblems(deployment: K8s): Problems {
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

export function availabilityProblems(deployment: K8s, hpa: K8s, pdb: K8s): Problems {
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

export function preStopSeconds(container: K8s): number | undefined {
  const preStop = container?.lifecycle?.preStop;
  if (typeof preStop?.sleep?.seconds === 'number') return preStop.sleep.seconds;
  const command: unknown[] = preStop?.exec?.command ?? [];
  if (/(^|\/)sleep$/.test(String(command[0])) && /^\d+$/.test(String(command[1])))
    return Number(command[1]);
  return undefined;
}

export function shutdownProblems(deployment: K8s, configMaps: K8s[]): Problems {
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

export const portNumbers = (
  ports: K8s[] | undefined,
  deployment: K8s,
): Array<{ port: number | undefined; protocol: string }> =>
  (ports ?? []).map((p) => ({
    port: typeof p.port === 'number' ? p.port : resolvePort(deployment, p.port)?.containerPort,
    protocol: p.protocol ?? 'TCP',
  }));

export function networkPolicyProblems(policy: K8s, deployment: K8s): Problems {
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

export const durationSeconds = (value: unknown): number => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(String(value));
  if (match === null) return Number.NaN;
  return Number(match[1]) * ({ ms: 0.001, s: 1, m: 60 } as const)[match[2] as 'ms' | 's' | 'm'];
};

export function istioProviderProblems(meshConfig: K8s, service: K8s, namespace: string): Problems {
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

export function authorizationPolicyProblems(
  policy: K8s,
  meshConfig: K8s,
  deployment: K8s,
): Problems {
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
export function usageCommands(usage: string): Map<string, Set<string>> {
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
export function scriptProblems(script: string, usage: string): Problems {
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

export function cliCallProblems(
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

export const base = loadAll(KUBERNETES).filter((l) => dirname(l.file) === KUBERNETES);
export const built = base.filter(
  (l) => !/\.example\.ya?ml$/.test(l.file) && l.doc.kind !== 'Kustomization',
);
export const kustomization = only(base, 'Kustomization');
export const namespace: string = kustomization.namespace;
export const deployment = only(built, 'Deployment');
export const service = only(built, 'Service', 'service.yaml');
export const headless = only(built, 'Service', 'service-headless.yaml');
export const hpa = only(built, 'HorizontalPodAutoscaler');
export const pdb = only(built, 'PodDisruptionBudget');
export const networkPolicy = only(built, 'NetworkPolicy');
export const configMaps = built.filter((l) => l.doc.kind === 'ConfigMap').map((l) => l.doc);
export const exampleSecrets = base
  .filter((l) => /\.example\.ya?ml$/.test(l.file))
  .map((l) => l.doc);
export const istio = loadAll(ISTIO);
export const meshConfig = only(istio, 'IstioOperator', 'mesh-config.yaml');
export const authorizationPolicy = only(istio, 'AuthorizationPolicy', 'authorization-policy.yaml');
export const usage = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' }).stdout;
export const script = readFileSync(SCRIPT, 'utf8');

export const clone = <T>(value: T): T => structuredClone(value);
export const container = (d: K8s): K8s => d.spec.template.spec.containers[0];
