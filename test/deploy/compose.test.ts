import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { CONFIG_VARIABLES } from '../../src/config/config.js';
import { ROOT } from '../helpers/processes.js';

interface ComposeService {
  build?: { context: string; dockerfile: string };
  image?: string;
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: string[];
}

const compose = parse(readFileSync(join(ROOT, 'deploy/compose/docker-compose.yaml'), 'utf8'), {
  uniqueKeys: true,
}) as { services: Record<string, ComposeService> };
const collector = parse(readFileSync(join(ROOT, 'deploy/compose/otel-collector.yaml'), 'utf8'), {
  uniqueKeys: true,
}) as {
  receivers: { otlp: { protocols: Record<string, { endpoint: string }> } };
  exporters: Record<string, { endpoint: string }>;
  service: { pipelines: Record<string, { receivers: string[]; exporters: string[] }> };
};
const known = new Set(CONFIG_VARIABLES.map((v) => v.name));

describe('deploy/compose: collector and Jaeger wired to the service', () => {
  it('sets only variables the service reads (or standard OTEL_* ones)', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const variable of Object.keys(service.environment ?? {})) {
        if (service.image !== undefined) continue; // third-party images have their own variables
        assert.ok(
          known.has(variable) || variable.startsWith('OTEL_'),
          `${name}: ${variable} is not read by the service`,
        );
      }
    }
  });

  it('points the OTLP endpoint at a collector receiver that feeds Jaeger', () => {
    const httpPort = collector.receivers.otlp.protocols['http']?.endpoint.split(':').pop();
    for (const name of ['authz', 'demo']) {
      const endpoint = new URL(
        compose.services[name]?.environment?.['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? '',
      );
      assert.ok(
        compose.services[endpoint.hostname],
        `${name}: ${endpoint.hostname} is a compose service`,
      );
      assert.equal(
        endpoint.port,
        httpPort,
        `${name}: OTLP/HTTP port matches the collector receiver`,
      );
      assert.equal(
        compose.services[name]?.environment?.['OTEL_EXPORTER_OTLP_PROTOCOL'],
        'http/protobuf',
      );
    }
    const traces = collector.service.pipelines['traces'];
    assert.deepEqual(traces?.receivers, ['otlp']);
    for (const exporter of traces?.exporters ?? []) {
      const host = collector.exporters[exporter]?.endpoint.split(':')[0] ?? '';
      assert.ok(
        compose.services[host],
        `collector exporter ${exporter} targets compose service ${host}`,
      );
    }
    assert.equal(compose.services['jaeger']?.environment?.['COLLECTOR_OTLP_ENABLED'], 'true');
  });

  it('builds the image the service and demo run from, with entrypoints that exist', () => {
    const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
    assert.match(dockerfile, /^USER node$/m, 'runs as the non-root node user');
    assert.match(dockerfile, /npm prune --omit=dev/, 'production dependencies only');
    assert.match(dockerfile, /ENTRYPOINT \["node", "dist\/src\/cli\/main\.js"\]/);
    assert.ok(existsSync(join(ROOT, 'dist/src/cli/main.js')));
    const demo = compose.services['demo']?.entrypoint ?? [];
    assert.ok(existsSync(join(ROOT, demo[1] ?? 'missing')), `demo entrypoint ${demo.join(' ')}`);
    for (const name of ['authz', 'demo'])
      assert.equal(compose.services[name]?.build?.dockerfile, 'deploy/Dockerfile');
  });
});
