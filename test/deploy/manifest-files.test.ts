/** Every deploy manifest parses, is a complete object, and builds with kustomize (checks: manifest-checks.ts). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/processes.js';
import {
  type K8s,
  KUBERNETES,
  ISTIO,
  yamlFiles,
  parseManifestFile,
  containerOf,
  documentProblems,
  kustomizationProblems,
  kustomization,
  namespace,
  deployment,
  container,
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
