/**
 * A registry file that follows its file, laid out as Kubernetes mounts a ConfigMap: the file is a
 * symlink through `..data`, and an update swaps `..data` to a new timestamped folder. Real service
 * process, real gRPC client, real JWKS endpoints.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Served, eventually, spawnServe } from '../helpers/processes.js';

/** A ConfigMap volume: `registry.yaml → ..data/registry.yaml`, `..data → ..<version>`. */
class ConfigMapVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'matryoshka-configmap-'));
  private version = 0;

  get file(): string {
    return join(this.dir, 'registry.yaml');
  }

  /** Publish `content` the way the kubelet does: a new folder, then an atomic swap of `..data`. */
  publish(content: string): void {
    const folder = `..2026_11_30_${String(++this.version).padStart(3, '0')}`;
    mkdirSync(join(this.dir, folder));
    writeFileSync(join(this.dir, folder, 'registry.yaml'), content);
    symlinkSync(folder, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (this.version === 1) symlinkSync(join('..data', 'registry.yaml'), this.file);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const issuerYaml = (idp: LocalIssuer, tenant: string) =>
  `  - issuer: ${idp.issuer}\n    tenant: ${tenant}\n    jwks_uri: ${idp.jwksUri}\n`;

describe('a registry file that changes in place', () => {
  let acme: LocalIssuer;
  let globex: LocalIssuer;
  let volume: ConfigMapVolume;
  let served: Served;
  let client: EnvoyLikeClient;

  before(async () => {
    acme = await LocalIssuer.start();
    globex = await LocalIssuer.start();
    volume = new ConfigMapVolume();
    volume.publish(`issuers:\n${issuerYaml(acme, 'acme')}`);
    // A long poll: within this test a change can only arrive through the watch or SIGHUP.
    served = await spawnServe({
      MATRYOSHKA_REGISTRY_FILE: volume.file,
      MATRYOSHKA_REGISTRY_POLL_MS: '600000',
      MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
      LOG_LEVEL: 'info',
    });
    client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
  });
  after(async () => {
    client.close();
    await served.stop();
    await acme.stop();
    await globex.stop();
    volume.remove();
  });

  const status = async (idp: LocalIssuer, sub: string) =>
    (await client.check({ token: await idp.mint({ sub }), sid: 'A' })).httpStatus;
  const logged = (msg: string) => served.lines.filter((l) => l['msg'] === msg);

  it('follows a ConfigMap-style symlink swap: an added issuer is honoured, a removed one refused (memo or not)', async () => {
    assert.equal(await status(acme, 'alice'), 200);
    assert.equal(await status(globex, 'bob'), 401);

    volume.publish(`issuers:\n${issuerYaml(acme, 'acme')}${issuerYaml(globex, 'globex')}`);
    await eventually(
      async () => (await status(globex, 'bob')) === 200,
      3000,
      'the added issuer is honoured',
    );
    // The same token twice: the second is answered from the memo of verified chains.
    const remembered = await globex.mint({ sub: 'carol' });
    assert.equal((await client.check({ token: remembered, sid: 'A' })).httpStatus, 200);
    assert.equal((await client.check({ token: remembered, sid: 'A' })).httpStatus, 200);

    volume.publish(`issuers:\n${issuerYaml(acme, 'acme')}`);
    await eventually(
      async () => (await client.check({ token: remembered, sid: 'A' })).httpStatus === 401,
      3000,
      'the removed issuer is refused, memo included',
    );
    assert.equal(await status(acme, 'alice'), 200);
    assert.ok(logged('registry reloaded').length >= 2);
  });

  it('keeps the last good registry when the new file is invalid: one line naming the field, a metric, readiness up', async () => {
    volume.publish(
      `issuers:\n${issuerYaml(acme, 'acme')}${issuerYaml(globex, 'globex')}    roles_clam: roles\n`,
    );
    await eventually(
      async () => logged('registry file invalid; keeping the last good registry').length > 0,
      3000,
      'the invalid file is reported',
    );
    const line = logged('registry file invalid; keeping the last good registry').at(-1) as Record<
      string,
      unknown
    >;
    assert.match(String(line['problem']), /roles_clam/, 'the problem names the field');
    assert.equal(await status(acme, 'alice'), 200, 'the last good registry stays in force');
    assert.equal(await status(globex, 'bob'), 401, 'nothing of the invalid file is applied');
    assert.equal((await fetch(`http://127.0.0.1:${served.httpPort}/readyz`)).status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${served.httpPort}/metrics`)).text();
    assert.match(metrics, /authz_registry_reload_failures_total\{[^}]*source="file"[^}]*\} [1-9]/);
  });

  it('reads the file again on SIGHUP', async () => {
    const before = logged('registry file invalid; keeping the last good registry').length;
    served.child.kill('SIGHUP');
    await eventually(
      async () => logged('registry file invalid; keeping the last good registry').length > before,
      3000,
      'SIGHUP read the file',
    );
    const line = logged('registry file invalid; keeping the last good registry').at(-1) as Record<
      string,
      unknown
    >;
    assert.equal(line['why'], 'signal');
    volume.publish(`issuers:\n${issuerYaml(acme, 'acme')}${issuerYaml(globex, 'globex')}`);
    await eventually(
      async () => (await status(globex, 'bob')) === 200,
      3000,
      'a valid file applies again',
    );
    assert.equal(served.child.exitCode, null, 'the service kept running throughout');
  });
});
