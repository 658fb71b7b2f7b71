/**
 * The gRPC port's TLS files are read by grpc-js after the port is bound: the service waits for
 * that first read before it says it is serving, and a read that fails refuses the start.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ConfigError } from '../../src/config/config.js';
import {
  type CertificateSource,
  firstRead,
  grpcServerCredentials,
} from '../../src/tls/server-credentials.js';
import { devCerts, presented } from '../helpers/tls-client.js';

describe('gRPC TLS credentials', () => {
  let certs: string;
  before(async () => {
    certs = await devCerts();
  });
  after(() => rmSync(certs, { recursive: true, force: true }));

  const files = (dir: string) => ({
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server-key.pem'),
    ca: join(dir, 'ca.pem'),
    reloadMs: 60_000,
  });

  it('once `loaded` resolves, a client completes its mTLS handshake at the first attempt', async () => {
    const tls = grpcServerCredentials(files(certs));
    const server = new grpc.Server();
    try {
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', tls.credentials, (error, bound) =>
          error ? reject(error) : resolve(bound),
        ),
      );
      await tls.loaded;
      const expected = new X509Certificate(readFileSync(join(certs, 'server.pem'))).fingerprint256;
      assert.equal(await presented(port, certs, certs), expected);
    } finally {
      server.forceShutdown();
    }
  });

  it('rejects `loaded` naming the variable when that first read fails (the files went away)', async () => {
    // A provider that reports a failed read, as grpc-js's does (null), which a real file system
    // cannot be made to do reliably between the synchronous check and grpc-js's own read.
    for (const [withCa, failing, variable] of [
      [false, 'identity', 'MATRYOSHKA_TLS_CERT'],
      [true, 'ca', 'MATRYOSHKA_TLS_CA'],
    ] as const) {
      const listeners = {
        identity: new Set<(u: null) => void>(),
        ca: new Set<(u: null) => void>(),
      };
      const provider: CertificateSource = {
        addIdentityCertificateListener: (l) => listeners.identity.add(l),
        removeIdentityCertificateListener: (l) => listeners.identity.delete(l),
        addCaCertificateListener: (l) => listeners.ca.add(l),
        removeCaCertificateListener: (l) => listeners.ca.delete(l),
      };
      const loaded = firstRead(provider, withCa);
      for (const l of listeners[failing]) l(null);
      await assert.rejects(
        loaded,
        (error: unknown) => error instanceof ConfigError && error.message.includes(variable),
      );
      assert.equal(listeners.identity.size + listeners.ca.size, 0, 'its listeners are removed');
    }
  });

  it('refuses at the check a certificate and a key that each parse but do not pair', () => {
    assert.throws(
      () => grpcServerCredentials({ ...files(certs), key: join(certs, 'client-key.pem') }),
      (error: unknown) =>
        error instanceof ConfigError && error.message.includes('MATRYOSHKA_TLS_KEY'),
    );
  });

  it('rejects `loaded`, and only when awaited, when grpc-js reads garbage where the check read a certificate', async () => {
    // The certificate is a pipe: the check reads the real PEM from it, grpc-js's own read then
    // gets garbage, as from a file rewritten between the two reads.
    const pipe = join(certs, 'swapped.pem');
    execFileSync('mkfifo', [pipe]);
    const write = (command: string, ...args: string[]) =>
      spawn('sh', ['-c', `${command} > "$1"`, 'sh', pipe, ...args]);
    const writers = [write('cat "$2"', join(certs, 'server.pem'))];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const tls = grpcServerCredentials({ ...files(certs), cert: pipe });
      const garbage = write('printf "not a certificate"');
      writers.push(garbage);
      // The service binds its port before it awaits `loaded`: the failed read lands meanwhile
      // (grpc-js finishes reading a little after the writer is gone; this leaves it the time).
      await once(garbage, 'exit');
      await new Promise((r) => setTimeout(r, 500));
      await assert.rejects(
        tls.loaded,
        (error: unknown) =>
          error instanceof ConfigError && error.message.includes('MATRYOSHKA_TLS_CERT'),
      );
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      for (const writer of writers) writer.kill();
      rmSync(pipe, { force: true });
    }
  });

  it('resolves `loaded` at once for plaintext', async () => {
    const plain = grpcServerCredentials({
      cert: undefined,
      key: undefined,
      ca: undefined,
      reloadMs: 60_000,
    });
    await plain.loaded;
    assert.equal(plain.credentials._isSecure(), false);
  });
});
