/**
 * The followed registry file is applied whole or not at all: a file rewritten in place is read
 * while it is being written (the watch fires on the truncation), and what was read then must never
 * be applied — not the empty file `cp` leaves for a moment, not the first half of a chunked write.
 * A file that would remove every issuer is applied only when it says so (`issuers: []`). The
 * registry under test is the service's own FileRegistry, with its real watch and poll running;
 * each read the test makes the registry do mid-write is the read a watch event makes at that
 * moment, issued synchronously so the machine's load cannot move it.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { FileRegistry } from '../../src/registry/file-registry.js';
import { eventually } from '../helpers/processes.js';
import { perSuite } from '../helpers/suite-parts.js';

describe('a registry file rewritten in place', () => {
  const idp = perSuite(() => LocalIssuer.start());
  const other = perSuite(() => LocalIssuer.start());

  const issuers = (...list: LocalIssuer[]): string =>
    `issuers:\n${list.map((i) => `  - issuer: ${i.issuer}\n    tenant: acme\n    jwks_uri: ${i.jwksUri}\n`).join('')}`;
  /** The service record last in the file: a write cut before its roles leaves a valid, laxer file. */
  const ADMIN = 'services:\n  admin:\n    tenant: acme\n    required_roles:\n      - admin\n';

  /** A followed registry, and every registry it swapped in (issuer count, admin's roles). */
  function follow(text: string) {
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-settle-'));
    const path = join(dir, 'registry.yaml');
    writeFileSync(path, text);
    const applied: Array<{ issuers: number; adminRoles: readonly string[] | undefined }> = [];
    const problems: string[] = [];
    const registry: FileRegistry = new FileRegistry(path, {
      allowInsecureIssuers: true,
      pollMs: 100,
      onReloaded: () => {
        void registry.service('admin').then((admin) =>
          applied.push({
            issuers: registry.listIssuers().length,
            adminRoles: admin?.requiredRoles,
          }),
        );
      },
      onInvalid: (problem) => problems.push(problem),
    });
    registry.start();
    return { path, registry, applied, problems };
  }

  const adminRoles = async (registry: FileRegistry) =>
    (await registry.service('admin'))?.requiredRoles;

  it('an in-place cp: the empty file between the truncation and the write is never applied', async () => {
    const f = follow(`${issuers(idp())}${ADMIN}`);
    try {
      const next = `${issuers(idp(), other())}${ADMIN}`;
      // What `cp` does to an existing file: open it truncated, then write the new content.
      const fd = openSync(f.path, 'w');
      assert.notEqual(f.registry.reload('watch'), 'reloaded', 'the truncated file is not applied');
      assert.equal(f.registry.listIssuers().length, 1);
      writeSync(fd, next);
      closeSync(fd);
      await eventually(
        async () => f.registry.listIssuers().length === 2,
        5000,
        'the written file is applied',
      );
      // And the real `cp`, for good measure.
      const source = join(mkdtempSync(join(tmpdir(), 'matryoshka-cp-')), 'next.yaml');
      writeFileSync(source, `${issuers(other())}${ADMIN}`);
      assert.equal(spawnSync('cp', [source, f.path]).status, 0);
      await eventually(
        async () => (await f.registry.issuer(idp().issuer)) === undefined,
        5000,
        'the copied file is applied',
      );
      assert.ok(f.applied.length >= 2);
      assert.ok(
        f.applied.every((r) => r.issuers > 0 && r.adminRoles?.includes('admin') === true),
        `every registry applied was a whole file: ${JSON.stringify(f.applied)}`,
      );
    } finally {
      f.registry.stop();
    }
  });

  it('a truncating write in two halves: the first half, valid but without the roles, is never applied', async () => {
    const f = follow(`${issuers(idp())}${ADMIN}`);
    try {
      const next = `${issuers(idp(), other())}${ADMIN}`;
      const cut = next.indexOf('    required_roles');
      const fd = openSync(f.path, 'w');
      writeSync(fd, next.slice(0, cut));
      // A watch event mid-write reads the first half: a valid registry whose admin requires nothing.
      assert.notEqual(f.registry.reload('watch'), 'reloaded', 'the half file is not applied');
      assert.deepEqual(await adminRoles(f.registry), ['admin']);
      writeSync(fd, next.slice(cut));
      closeSync(fd);
      await eventually(
        async () => f.registry.listIssuers().length === 2,
        5000,
        'the whole file is applied once written',
      );
      assert.deepEqual(await adminRoles(f.registry), ['admin']);
      assert.ok(
        f.applied.every((r) => r.adminRoles?.includes('admin') === true),
        `admin kept its roles in every registry applied: ${JSON.stringify(f.applied)}`,
      );
    } finally {
      f.registry.stop();
    }
  });

  it('an empty file is never applied (it would remove every issuer); `issuers: []` says so and is', async () => {
    const f = follow(`${issuers(idp())}${ADMIN}`);
    try {
      writeFileSync(f.path, '');
      f.registry.reload('watch');
      await eventually(
        async () => f.problems.some((p) => /would remove every issuer/.test(p)),
        5000,
        'the empty file is reported once settled',
      );
      assert.equal(f.registry.listIssuers().length, 1, 'the last good registry stays');
      assert.equal(f.applied.length, 0);
      // Leaving a section out is no more explicit than an empty file.
      writeFileSync(f.path, ADMIN);
      f.registry.reload('watch');
      await new Promise((r) => setTimeout(r, 500));
      f.registry.reload('signal');
      assert.equal(f.registry.listIssuers().length, 1);
      assert.equal(f.applied.length, 0);

      writeFileSync(f.path, `issuers: []\n${ADMIN}`);
      await eventually(
        async () => f.registry.listIssuers().length === 0,
        5000,
        'the explicit empty list is applied',
      );
      assert.deepEqual(await adminRoles(f.registry), ['admin']);
    } finally {
      f.registry.stop();
    }
  });
});
