import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_VARIABLES } from '../../src/config/config.js';
import { HEALTH_SERVICES } from '../../src/server/health.js';
import { DEFAULT_DEV_HOSTS, generateDevCertificates } from '../../src/tls/dev-certs.js';
import {
  EXT_AUTHZ_TYPE,
  HCM_TYPE,
  ROUTER_TYPE,
  type SchemaProblem,
  lintEnvoyYaml,
  loadEnvoySchema,
  parseDuration,
  parseEnvoyYaml,
  validateMessage,
} from '../../tools/envoy-lint/envoy-schema.js';
import { ROOT } from '../helpers/processes.js';

/**
 * envoy/envoy.yaml against Envoy's own v3 API (the protos bundled in @grpc/grpc-js-xds), and
 * against the service it fronts: ports, health service name, context extensions, failure mode.
 */

const ENVOY_YAML = join(ROOT, 'envoy/envoy.yaml');
const text = readFileSync(ENVOY_YAML, 'utf8');

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
function obj(v: unknown, what: string): Obj {
  assert.ok(isObj(v), `${what} is an object`);
  return v;
}
function list(v: unknown, what: string): unknown[] {
  assert.ok(Array.isArray(v), `${what} is a list`);
  return v;
}
const typeOf = (config: unknown): string | undefined => {
  const url = isObj(config) ? config['@type'] : undefined;
  return typeof url === 'string' ? url.slice(url.lastIndexOf('/') + 1) : undefined;
};

function defaultOf(name: string): string {
  const value = CONFIG_VARIABLES.find((v) => v.name === name)?.default;
  assert.ok(value !== undefined, `${name} has a default in CONFIG_VARIABLES`);
  return value;
}

function replaceOnce(source: string, search: string, replacement: string): string {
  const count = source.split(search).length - 1;
  assert.equal(count, 1, `${JSON.stringify(search)} occurs once in envoy.yaml`);
  return source.replace(search, replacement);
}

const paths = (problems: readonly SchemaProblem[]): string[] => problems.map((p) => p.path);
const show = (problems: readonly SchemaProblem[]): string =>
  problems.map((p) => `${p.path}: ${p.message}`).join('\n');

interface Located {
  readonly bootstrap: Obj;
  readonly hcm: Obj;
  readonly hcmPath: string;
  readonly extAuthzFilter: Obj;
  readonly extAuthzIndex: number;
  readonly routerIndex: number;
  readonly clusters: Obj[];
}

/** The (single) connection manager with ext_authz, and where it sits in the document. */
function locate(config: unknown): Located {
  const bootstrap = obj(config, 'bootstrap');
  const resources = obj(bootstrap['static_resources'], 'static_resources');
  const found: Array<Omit<Located, 'bootstrap' | 'clusters'>> = [];
  list(resources['listeners'], 'listeners').forEach((listener, li) => {
    list(obj(listener, 'listener')['filter_chains'], 'filter_chains').forEach((chain, ci) => {
      list(obj(chain, 'filter chain')['filters'], 'filters').forEach((filter, fi) => {
        const hcm = obj(filter, 'network filter')['typed_config'];
        if (typeOf(hcm) !== HCM_TYPE || !isObj(hcm)) return;
        const filters = list(hcm['http_filters'], 'http_filters').map((f) => obj(f, 'http filter'));
        const extAuthzIndex = filters.findIndex(
          (f) => typeOf(f['typed_config']) === EXT_AUTHZ_TYPE,
        );
        const routerIndex = filters.findIndex((f) => typeOf(f['typed_config']) === ROUTER_TYPE);
        const extAuthzFilter = filters[extAuthzIndex];
        if (extAuthzFilter === undefined) return;
        found.push({
          hcm,
          hcmPath: `$.static_resources.listeners[${li}].filter_chains[${ci}].filters[${fi}].typed_config`,
          extAuthzFilter,
          extAuthzIndex,
          routerIndex,
        });
      });
    });
  });
  assert.equal(found.length, 1, 'exactly one HTTP connection manager carries the ext_authz filter');
  const clusters = list(resources['clusters'], 'clusters').map((c) => obj(c, 'cluster'));
  return { bootstrap, clusters, ...(found[0] as Omit<Located, 'bootstrap' | 'clusters'>) };
}

interface RouteView {
  readonly route: Obj;
  readonly path: string;
  /** The ExtAuthzPerRoute in force (route level, else virtual host level), if any. */
  readonly perRoute: Obj | undefined;
}

function routesOf(located: Located): RouteView[] {
  const filterName = located.extAuthzFilter['name'];
  assert.equal(typeof filterName, 'string');
  const routeConfig = obj(located.hcm['route_config'], 'route_config');
  const views: RouteView[] = [];
  list(routeConfig['virtual_hosts'], 'virtual_hosts').forEach((vh, vi) => {
    const vhost = obj(vh, 'virtual host');
    const vhostPerRoute = isObj(vhost['typed_per_filter_config'])
      ? vhost['typed_per_filter_config'][filterName as string]
      : undefined;
    list(vhost['routes'], 'routes').forEach((r, ri) => {
      const route = obj(r, 'route');
      const perRoute = isObj(route['typed_per_filter_config'])
        ? route['typed_per_filter_config'][filterName as string]
        : undefined;
      const inForce = perRoute ?? vhostPerRoute;
      views.push({
        route,
        path: `${located.hcmPath}.route_config.virtual_hosts[${vi}].routes[${ri}]`,
        perRoute: isObj(inForce) ? inForce : undefined,
      });
    });
  });
  return views;
}

/** Envoy's StringMatcher, for the few forms a header allow-list uses. */
function matches(matcher: Obj, value: string): boolean {
  const ignoreCase = matcher['ignore_case'] === true;
  const v = ignoreCase ? value.toLowerCase() : value;
  const arg = (key: string): string | undefined => {
    const given = matcher[key];
    return typeof given === 'string' ? (ignoreCase ? given.toLowerCase() : given) : undefined;
  };
  if (arg('exact') !== undefined) return v === arg('exact');
  if (arg('prefix') !== undefined) return v.startsWith(arg('prefix') ?? '');
  if (arg('suffix') !== undefined) return v.endsWith(arg('suffix') ?? '');
  if (arg('contains') !== undefined) return v.includes(arg('contains') ?? '');
  const regex = isObj(matcher['safe_regex']) ? matcher['safe_regex']['regex'] : undefined;
  if (typeof regex === 'string') return new RegExp(`^(?:${regex})$`).test(value);
  return false;
}

const MTLS_START = '# --- mTLS to the service';
const MTLS_END = '# --- end mTLS ---';

/** envoy.yaml with the commented mTLS block uncommented, as a platform team would do it. */
function withMtlsUncommented(source: string): { text: string; block: string } {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => l.trim().startsWith(MTLS_START));
  const end = lines.findIndex((l) => l.trim() === MTLS_END);
  assert.ok(start > 0 && end > start + 1, 'envoy.yaml has the commented mTLS block');
  const block = lines.slice(start + 1, end).map((l) => l.replace(/^(\s*)# ?/, '$1'));
  return {
    text: [...lines.slice(0, start + 1), ...block, ...lines.slice(end)].join('\n'),
    block: block.join('\n'),
  };
}

describe('envoy/envoy.yaml against Envoy v3 API protos (@grpc/grpc-js-xds)', () => {
  it('loads the real protos: Bootstrap, ext_authz, connection manager, router, upstream HTTP options', () => {
    const schema = loadEnvoySchema();
    const require = createRequire(import.meta.url);
    const installed = (
      JSON.parse(readFileSync(require.resolve('@grpc/grpc-js-xds/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    assert.equal(schema.packageVersion, installed);
    for (const file of [
      'envoy/config/bootstrap/v3/bootstrap.proto',
      'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
      'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
      'envoy/extensions/filters/http/router/v3/router.proto',
      'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
      'envoy/extensions/access_loggers/stream/v3/stream.proto',
      'envoy/extensions/transport_sockets/tls/v3/tls.proto',
    ]) {
      assert.ok(schema.entryFiles.includes(file), `${file} is loaded`);
    }
    const extAuthz = schema.root.lookupType(EXT_AUTHZ_TYPE);
    assert.ok(
      extAuthz.fields['failure_mode_allow'] !== undefined &&
        extAuthz.fields['status_on_error'] !== undefined,
    );
  });

  it('passes the lint with zero problems, walking into every typed_config', () => {
    const result = lintEnvoyYaml(text);
    assert.deepEqual(result.problems, [], show(result.problems));
    for (const type of [
      'envoy.config.bootstrap.v3.Bootstrap',
      HCM_TYPE,
      EXT_AUTHZ_TYPE,
      ROUTER_TYPE,
      'envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
      'envoy.extensions.filters.http.ext_authz.v3.CheckSettings',
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      'envoy.config.core.v3.Http2ProtocolOptions',
      'envoy.config.core.v3.HealthCheck.GrpcHealthCheck',
      'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
    ]) {
      assert.ok(result.typesSeen.has(type), `the walk validated ${type}`);
    }
  });

  it('rejects a misspelt field inside the ExtAuthz typed_config, naming its path', () => {
    const located = locate(parseEnvoyYaml(text).value);
    const broken = replaceOnce(text, 'failure_mode_allow: false', 'failure_mode_alow: false');
    const { problems } = lintEnvoyYaml(broken);
    assert.deepEqual(
      paths(problems),
      [`${located.hcmPath}.http_filters[${located.extAuthzIndex}].typed_config.failure_mode_alow`],
      show(problems),
    );
    assert.match(
      problems[0]?.message ?? '',
      /unknown field "failure_mode_alow" in envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuthz \(did you mean "failure_mode_allow"\?\)/,
    );
  });

  it("rejects a misspelt key inside a route's per-filter config, naming its path", () => {
    const located = locate(parseEnvoyYaml(text).value);
    const billing = routesOf(located).find(
      (r) => isObj(r.route['route']) && r.route['route']['cluster'] === 'billing',
    );
    assert.ok(billing !== undefined, 'a billing route');
    const broken = replaceOnce(
      text,
      'context_extensions:\n                                  sid: billing',
      'context_extentions:\n                                  sid: billing',
    );
    const { problems } = lintEnvoyYaml(broken);
    assert.deepEqual(
      paths(problems),
      [
        `${billing.path}.typed_per_filter_config["envoy.filters.http.ext_authz"].check_settings.context_extentions`,
      ],
      show(problems),
    );
    assert.match(
      problems[0]?.message ?? '',
      /unknown field "context_extentions" in envoy\.extensions\.filters\.http\.ext_authz\.v3\.CheckSettings/,
    );

    // `disabled` misspelt: the key is unknown AND the required oneof (disabled | check_settings) is empty.
    const healthz = routesOf(located).find(
      (r) => isObj(r.route['match']) && r.route['match']['path'] === '/healthz',
    );
    assert.ok(healthz !== undefined, 'a /healthz route');
    const lines = text.split('\n');
    const at = lines.findIndex(
      (l, i) =>
        l.trim() === 'disabled: true' &&
        lines.slice(0, i).some((p) => p.includes('path: /healthz')),
    );
    lines[at] = (lines[at] ?? '').replace('disabled: true', 'disable: true');
    const second = lintEnvoyYaml(lines.join('\n')).problems;
    const perRoutePath = `${healthz.path}.typed_per_filter_config["envoy.filters.http.ext_authz"]`;
    assert.deepEqual(
      paths(second).sort(),
      [perRoutePath, `${perRoutePath}.disable`].sort(),
      show(second),
    );
  });

  it('rejects a typed_config whose @type is unknown, and one from the removed v2 API', () => {
    const located = locate(parseEnvoyYaml(text).value);
    const routerTypePath = `${located.hcmPath}.http_filters[${located.routerIndex}].typed_config["@type"]`;
    const unknown = lintEnvoyYaml(
      replaceOnce(text, `${ROUTER_TYPE}\n`, `${ROUTER_TYPE}s\n`),
    ).problems;
    assert.ok(
      unknown.some(
        (p) =>
          p.path === routerTypePath &&
          /unknown type "envoy\.extensions\.filters\.http\.router\.v3\.Routers"/.test(p.message),
      ),
      show(unknown),
    );

    const v2 = lintEnvoyYaml(
      replaceOnce(
        text,
        `type.googleapis.com/${EXT_AUTHZ_TYPE}\n`,
        'type.googleapis.com/envoy.config.filter.http.ext_authz.v2.ExtAuthz\n',
      ),
    ).problems;
    assert.ok(
      v2.some(
        (p) =>
          p.path ===
          `${located.hcmPath}.http_filters[${located.extAuthzIndex}].typed_config["@type"]`,
      ),
      show(v2),
    );

    // Any payloads are validated where they sit: a route's per-filter config with an unknown type…
    const config = structuredClone(parseEnvoyYaml(text).value);
    const orders = routesOf(locate(config)).find(
      (r) => isObj(r.route['route']) && r.route['route']['cluster'] === 'orders',
    );
    assert.ok(orders?.perRoute !== undefined);
    orders.perRoute['@type'] =
      'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRout';
    const perRoute = validateMessage(config, 'envoy.config.bootstrap.v3.Bootstrap').problems;
    assert.deepEqual(
      paths(perRoute),
      [`${orders.path}.typed_per_filter_config["envoy.filters.http.ext_authz"]["@type"]`],
      show(perRoute),
    );
    // …or none at all.
    delete orders.perRoute['@type'];
    const missing = validateMessage(config, 'envoy.config.bootstrap.v3.Bootstrap').problems;
    assert.deepEqual(
      paths(missing),
      [`${orders.path}.typed_per_filter_config["envoy.filters.http.ext_authz"]`],
      show(missing),
    );
    assert.match(missing[0]?.message ?? '', /needs "@type"/);
  });

  it('resolves a TypedStruct by its type_url and validates its value', () => {
    const typed = (value: unknown, typeUrl = `type.googleapis.com/${ROUTER_TYPE}`): unknown => ({
      name: 'envoy.filters.http.router',
      typed_config: {
        '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
        type_url: typeUrl,
        value,
      },
    });
    const type = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter';
    assert.deepEqual(validateMessage(typed({ suppress_envoy_headers: true }), type).problems, []);
    assert.deepEqual(
      paths(validateMessage(typed({ suppress_envoy_header: true }), type).problems),
      ['$.typed_config.value.suppress_envoy_header'],
    );
    assert.deepEqual(
      paths(validateMessage(typed({}, 'type.googleapis.com/nope.v3.Nothing'), type).problems),
      ['$.typed_config.type_url'],
    );
  });

  it('validates the commented mTLS block once uncommented, with the files `certs generate` writes', async () => {
    const { text: uncommented, block } = withMtlsUncommented(text);
    const result = lintEnvoyYaml(uncommented);
    assert.deepEqual(result.problems, [], show(result.problems));
    assert.ok(
      result.typesSeen.has('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'),
      'the TLS context was validated',
    );
    const located = locate(result.config);
    const authz = located.clusters.find((c) => c['name'] === 'matryoshka_authz');
    const socket = obj(
      obj(authz?.['transport_socket'], 'transport_socket')['typed_config'],
      'tls context',
    );
    const common = obj(socket['common_tls_context'], 'common_tls_context');
    // The service is a Node HTTP/2 server: it negotiates h2 by ALPN.
    assert.ok(list(common['alpn_protocols'], 'alpn_protocols').includes('h2'));
    // The SNI and the SAN Envoy checks are names the dev server certificate carries.
    assert.ok(
      DEFAULT_DEV_HOSTS.includes(socket['sni'] as string),
      `sni ${String(socket['sni'])} is in the dev certificate`,
    );
    const sans = list(
      obj(common['validation_context'], 'validation_context')['match_typed_subject_alt_names'],
      'SAN matchers',
    );
    for (const san of sans)
      assert.ok(
        DEFAULT_DEV_HOSTS.includes(obj(obj(san, 'san')['matcher'], 'matcher')['exact'] as string),
      );
    // The file names are those `matryoshka-authz certs generate --dir D` writes.
    const dir = mkdtempSync(join(tmpdir(), 'envoy-certs-'));
    try {
      const written = new Set(
        (await generateDevCertificates(dir, { hosts: DEFAULT_DEV_HOSTS, days: 1 })).map((f) =>
          basename(f),
        ),
      );
      const named = [...block.matchAll(/filename: ([^\s}]+)/g)].map((m) => basename(m[1] ?? ''));
      assert.equal(named.length, 3);
      for (const file of named)
        assert.ok(
          written.has(file),
          `${file} is written by certs generate (${[...written].join(', ')})`,
        );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('envoy/envoy.yaml matches the service', () => {
  const located = locate(parseEnvoyYaml(text).value);
  const extAuthz = obj(located.extAuthzFilter['typed_config'], 'ExtAuthz');
  const grpcService = obj(extAuthz['grpc_service'], 'grpc_service');
  const authzClusterName = obj(grpcService['envoy_grpc'], 'envoy_grpc')['cluster_name'];
  const authzCluster = located.clusters.find((c) => c['name'] === authzClusterName);

  it('runs ext_authz in gRPC v3 mode before the router, failing closed with 503 within a short deadline', () => {
    assert.ok(
      located.extAuthzIndex >= 0 && located.extAuthzIndex < located.routerIndex,
      'ext_authz runs before the router',
    );
    assert.equal(located.extAuthzFilter['name'], 'envoy.filters.http.ext_authz');
    assert.equal(extAuthz['transport_api_version'], 'V3');
    assert.equal(extAuthz['http_service'], undefined);
    assert.equal(extAuthz['failure_mode_allow'], false, 'failure_mode_allow is explicitly false');
    assert.notEqual(extAuthz['failure_mode_allow_header_add'], true);
    const code = obj(extAuthz['status_on_error'], 'status_on_error')['code'];
    const statusCodes = loadEnvoySchema().root.lookupEnum('envoy.type.v3.StatusCode');
    assert.equal(
      typeof code === 'number' ? code : statusCodes.values[code as string],
      503,
      `status_on_error ${String(code)} is 503`,
    );
    const timeout = parseDuration(grpcService['timeout']);
    assert.ok(
      timeout !== undefined && timeout > 0 && timeout <= 1,
      `a Check deadline in (0, 1s], got ${String(grpcService['timeout'])}`,
    );
    assert.equal(extAuthz['with_request_body'], undefined, 'no request body buffering');
  });

  it('sends the service the headers it reads', () => {
    const allowed = extAuthz['allowed_headers'];
    if (allowed === undefined) return; // no allow-list: every header is sent
    const patterns = list(obj(allowed, 'allowed_headers')['patterns'], 'patterns').map((p) =>
      obj(p, 'pattern'),
    );
    // the bearer token (src/pipeline/extract.ts), Envoy's request id (src/pipeline/check.ts), W3C and B3 trace context
    for (const header of [
      'authorization',
      'x-request-id',
      'traceparent',
      'tracestate',
      'b3',
      'x-b3-traceid',
      'x-b3-spanid',
      'x-b3-sampled',
    ]) {
      assert.ok(
        patterns.some((p) => matches(p, header)),
        `${header} reaches the service`,
      );
    }
    assert.ok(!patterns.some((p) => matches(p, 'cookie')), 'cookies stay in the proxy');
  });

  it('points the authz cluster at MATRYOSHKA_GRPC_PORT over HTTP/2 with raised flow-control windows', () => {
    assert.ok(authzCluster !== undefined, `cluster ${String(authzClusterName)} is defined`);
    const grpcPort = Number(defaultOf('MATRYOSHKA_GRPC_PORT'));
    assert.equal(grpcPort, 9191);
    const ports: unknown[] = [];
    for (const group of list(
      obj(authzCluster['load_assignment'], 'load_assignment')['endpoints'],
      'endpoints',
    )) {
      for (const lb of list(obj(group, 'locality')['lb_endpoints'], 'lb_endpoints')) {
        const endpoint = obj(obj(lb, 'lb endpoint')['endpoint'], 'endpoint');
        ports.push(
          obj(obj(endpoint['address'], 'address')['socket_address'], 'socket_address')[
            'port_value'
          ],
        );
      }
    }
    assert.ok(ports.length > 0);
    for (const port of ports) assert.equal(port, grpcPort);
    assert.notEqual(
      Number(defaultOf('MATRYOSHKA_HTTP_PORT')),
      grpcPort,
      'not the HTTP (JWKS/metrics) port',
    );

    const options = obj(
      authzCluster['typed_extension_protocol_options'],
      'typed_extension_protocol_options',
    );
    const http = obj(
      options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'],
      'HttpProtocolOptions',
    );
    assert.equal(typeOf(http), 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
    const h2 = obj(
      obj(http['explicit_http_config'], 'explicit_http_config')['http2_protocol_options'],
      'http2_protocol_options',
    );
    const connectionWindow = h2['initial_connection_window_size'];
    const streamWindow = h2['initial_stream_window_size'];
    assert.ok(
      typeof connectionWindow === 'number' && connectionWindow >= 1024 * 1024,
      `connection window ≥ 1 MiB, got ${String(connectionWindow)}`,
    );
    assert.ok(
      typeof streamWindow === 'number' && streamWindow > 65535,
      `stream window above the 64 KiB default, got ${String(streamWindow)}`,
    );
  });

  it("health-checks the cluster over grpc.health.v1 with the service's own name", () => {
    assert.ok(authzCluster !== undefined);
    const checks = list(authzCluster['health_checks'], 'health_checks').map((c) =>
      obj(c, 'health check'),
    );
    assert.equal(checks.length, 1);
    const serviceName = obj(checks[0]?.['grpc_health_check'], 'grpc_health_check')['service_name'];
    assert.equal(serviceName, 'envoy.service.auth.v3.Authorization');
    assert.ok(
      (HEALTH_SERVICES as readonly string[]).includes(serviceName as string),
      'the service answers for that name (src/server/health.ts)',
    );
  });

  it('names the destination service on every route that runs ext_authz, and no upstream is reached without it', () => {
    const routes = routesOf(located);
    const checked = routes.filter((r) => r.perRoute?.['disabled'] !== true);
    assert.ok(checked.length >= 3, `at least three routes run ext_authz, got ${checked.length}`);
    const sids = new Set<string>();
    for (const view of checked) {
      assert.equal(
        typeOf(view.perRoute),
        'envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
        `${view.path} has an ExtAuthzPerRoute`,
      );
      const extensions = obj(
        obj(view.perRoute?.['check_settings'], `${view.path} check_settings`)['context_extensions'],
        `${view.path} context_extensions`,
      );
      const sid = extensions['sid'];
      assert.ok(
        typeof sid === 'string' && sid.length > 0,
        `${view.path} sets context_extensions.sid`,
      );
      assert.ok(!sids.has(sid), `sid ${sid} names one route's service`);
      sids.add(sid);
      const cluster = obj(view.route['route'], `${view.path} route`)['cluster'];
      assert.notEqual(cluster, authzClusterName, 'no route sends client traffic to the authorizer');
    }
    for (const view of routes.filter((r) => r.perRoute?.['disabled'] === true)) {
      assert.ok(
        view.route['direct_response'] !== undefined && view.route['route'] === undefined,
        `${view.path} skips ext_authz, so Envoy must answer it itself`,
      );
    }
  });

  it('binds one route to a tenant and a lower max_depth the service can read', () => {
    const bound = routesOf(located).filter((r) => {
      const extensions = isObj(r.perRoute?.['check_settings'])
        ? (r.perRoute['check_settings'] as Obj)['context_extensions']
        : undefined;
      return isObj(extensions) && extensions['tenant'] !== undefined;
    });
    assert.ok(bound.length >= 1, 'a route with context_extensions.tenant');
    for (const view of bound) {
      const extensions = obj(
        obj(view.perRoute?.['check_settings'], 'check_settings')['context_extensions'],
        'context_extensions',
      );
      assert.ok(typeof extensions['tenant'] === 'string' && extensions['tenant'].length > 0);
      const maxDepth = extensions['max_depth'];
      // src/pipeline/destination.ts reads it as /^\d{1,2}$/; anything else denies every request.
      assert.ok(
        typeof maxDepth === 'string' && /^\d{1,2}$/.test(maxDepth),
        `max_depth ${String(maxDepth)} is a decimal string`,
      );
      assert.ok(
        Number(maxDepth) >= 1 && Number(maxDepth) <= Number(defaultOf('MATRYOSHKA_MAX_DEPTH')),
        'it lowers the default depth limit',
      );
    }
  });
});
