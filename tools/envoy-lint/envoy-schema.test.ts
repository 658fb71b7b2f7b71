/**
 * The linter's own rules: proto3 JSON forms as Envoy reads them (Durations, wrappers, maps, enums,
 * Structs), deprecated fields and yaml-cpp booleans, and the references between resources.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  type SchemaProblem,
  lintEnvoyYaml,
  parseDuration,
  parseEnvoyYaml,
  validateMessage,
} from './envoy-schema.js';

/** The repository's envoy.yaml, a valid base that each case breaks in one place. */
const text = readFileSync(new URL('../../../envoy/envoy.yaml', import.meta.url), 'utf8');

function replaceOnce(source: string, search: string, replacement: string): string {
  assert.equal(source.split(search).length - 1, 1, `${JSON.stringify(search)} occurs once`);
  return source.replace(search, replacement);
}

/** The first object in `value` with an `http_filters` list (the connection manager's config). */
function httpFilters(value: unknown): unknown[] {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = httpFilters(item);
      if (found.length > 0) return found;
    }
  } else if (typeof value === 'object' && value !== null) {
    const filters = (value as Record<string, unknown>)['http_filters'];
    if (Array.isArray(filters)) return filters;
    for (const item of Object.values(value)) {
      const found = httpFilters(item);
      if (found.length > 0) return found;
    }
  }
  return [];
}

const show = (problems: readonly SchemaProblem[]): string =>
  problems.map((p) => `${p.path}: ${p.message}`).join('\n');
const paths = (problems: readonly SchemaProblem[]): string[] => problems.map((p) => p.path);

describe('the schema lint itself: proto3 JSON forms, as Envoy reads them', () => {
  const grpc = 'envoy.config.core.v3.GrpcService';

  it('takes a Duration only as "<n>s"', () => {
    assert.deepEqual(
      validateMessage({ envoy_grpc: { cluster_name: 'a' }, timeout: '0.25s' }, grpc).problems,
      [],
    );
    for (const bad of ['250ms', '0.25', 0.25, { seconds: 0, nanos: 250000000 }]) {
      assert.deepEqual(
        paths(validateMessage({ envoy_grpc: { cluster_name: 'a' }, timeout: bad }, grpc).problems),
        ['$.timeout'],
        `timeout ${JSON.stringify(bad)}`,
      );
    }
    assert.equal(parseDuration('0.25s'), 0.25);
    assert.equal(parseDuration('5s'), 5);
    assert.equal(parseDuration('5m'), undefined);
  });

  it('takes wrapper types as bare scalars of the right type', () => {
    const h2 = 'envoy.config.core.v3.Http2ProtocolOptions';
    assert.deepEqual(
      validateMessage({ initial_stream_window_size: 262144, allow_connect: true }, h2).problems,
      [],
    );
    assert.deepEqual(
      paths(validateMessage({ initial_stream_window_size: { value: 262144 } }, h2).problems),
      ['$.initial_stream_window_size'],
    );
    assert.deepEqual(paths(validateMessage({ initial_stream_window_size: 1.5 }, h2).problems), [
      '$.initial_stream_window_size',
    ]);
    // protoc-gen-validate bounds apply inside the wrapper: at least the 65535 of the HTTP/2 spec.
    assert.deepEqual(paths(validateMessage({ initial_stream_window_size: 1024 }, h2).problems), [
      '$.initial_stream_window_size',
    ]);
    const hcm = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
    const base = { stat_prefix: 'x', rds: { route_config_name: 'r', config_source: { ads: {} } } };
    assert.deepEqual(validateMessage({ ...base, use_remote_address: true }, hcm).problems, []);
    assert.deepEqual(
      paths(validateMessage({ ...base, use_remote_address: 'true' }, hcm).problems),
      ['$.use_remote_address'],
    );
  });

  it('checks maps, lists, enums and strings, and accepts JSON names', () => {
    const settings = 'envoy.extensions.filters.http.ext_authz.v3.CheckSettings';
    assert.deepEqual(
      validateMessage({ context_extensions: { sid: 'orders', max_depth: '4' } }, settings).problems,
      [],
    );
    assert.deepEqual(
      paths(
        validateMessage({ context_extensions: { sid: 'orders', max_depth: 4 } }, settings).problems,
      ),
      ['$.context_extensions.max_depth'],
    );
    assert.deepEqual(paths(validateMessage({ context_extensions: ['sid'] }, settings).problems), [
      '$.context_extensions',
    ]);
    assert.deepEqual(
      paths(
        validateMessage(
          { static_resources: { clusters: { name: 'a' } } },
          'envoy.config.bootstrap.v3.Bootstrap',
        ).problems,
      ),
      ['$.static_resources.clusters'],
    );
    const cluster = { name: 'a', connect_timeout: '1s' };
    assert.deepEqual(
      validateMessage({ ...cluster, lb_policy: 'LEAST_REQUEST' }, 'envoy.config.cluster.v3.Cluster')
        .problems,
      [],
    );
    const badEnum = validateMessage(
      { ...cluster, lb_policy: 'LEAST_REQUESTS' },
      'envoy.config.cluster.v3.Cluster',
    ).problems;
    assert.deepEqual(paths(badEnum), ['$.lb_policy']);
    assert.match(badEnum[0]?.message ?? '', /did you mean "LEAST_REQUEST"/);
    assert.deepEqual(
      paths(
        validateMessage({ name: '', connect_timeout: '1s' }, 'envoy.config.cluster.v3.Cluster')
          .problems,
      ),
      ['$.name'],
      'PGV min_len on an unset-looking string',
    );
    assert.deepEqual(validateMessage({ envoyGrpc: { clusterName: 'a' } }, grpc).problems, []);
    assert.deepEqual(
      paths(
        validateMessage({ envoy_grpc: { cluster_name: 'a', clusterName: 'a' } }, grpc).problems,
      ),
      ['$.envoy_grpc.clusterName'],
    );
    // A YAML key left empty is null: reported, and (as for Envoy) it leaves the required oneof unset.
    const empty = validateMessage({ envoy_grpc: null }, grpc).problems;
    assert.deepEqual(paths(empty), ['$.envoy_grpc', '$'], show(empty));
    assert.match(empty[0]?.message ?? '', /null/);
    assert.match(empty[1]?.message ?? '', /oneof "target_specifier" is required/);
  });

  it('takes Struct and Value free-form, but a Struct must be an object', () => {
    const metadata = 'envoy.config.core.v3.Metadata';
    assert.deepEqual(
      validateMessage(
        {
          filter_metadata: {
            'envoy.lb': { anything: [1, 'two', { three: null }], nested: { deep: true } },
          },
        },
        metadata,
      ).problems,
      [],
    );
    assert.deepEqual(
      paths(validateMessage({ filter_metadata: { 'envoy.lb': [1, 2] } }, metadata).problems),
      ['$.filter_metadata["envoy.lb"]'],
    );
  });

  it('flags deprecated fields and yaml-cpp booleans', () => {
    const deprecated = lintEnvoyYaml(
      replaceOnce(
        text,
        '      lb_policy: ROUND_ROBIN\n',
        '      lb_policy: ROUND_ROBIN\n      http2_protocol_options: {}\n',
      ),
    ).problems;
    assert.equal(deprecated.length, 1, show(deprecated));
    assert.match(
      deprecated[0]?.path ?? '',
      /^\$\.static_resources\.clusters\[\d+\]\.http2_protocol_options$/,
    );
    assert.match(deprecated[0]?.message ?? '', /deprecated/);
    const yes = lintEnvoyYaml(
      replaceOnce(text, 'use_remote_address: true', 'use_remote_address: yes'),
    ).problems;
    assert.ok(
      yes.some((p) => p.path.endsWith('.use_remote_address') && /yaml-cpp/.test(p.message)),
      show(yes),
    );
  });

  it('checks references: clusters exist, names are unique, the router comes last', () => {
    const dangling = lintEnvoyYaml(
      replaceOnce(
        text,
        'cluster_name: matryoshka_authz\n                        # Deadline',
        'cluster_name: matryoshka_authz_typo\n                        # Deadline',
      ),
    ).problems;
    assert.ok(
      dangling.some(
        (p) =>
          p.path.endsWith('.grpc_service.envoy_grpc.cluster_name') &&
          /matryoshka_authz_typo/.test(p.message),
      ),
      show(dangling),
    );
    const config = structuredClone(parseEnvoyYaml(text).value);
    const filters = httpFilters(config);
    assert.ok(filters.length > 1, 'envoy.yaml has HTTP filters');
    filters.reverse();
    const reordered = lintEnvoyYaml(JSON.stringify(config)).problems;
    assert.ok(
      reordered.some((p) => /last HTTP filter must be the router/.test(p.message)),
      show(reordered),
    );
  });
});
