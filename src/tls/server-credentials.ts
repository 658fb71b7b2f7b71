import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ConfigError } from '../config/config.js';

export interface TlsFiles {
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
  readonly reloadMs: number;
}

function check(name: string, path: string, parse: (pem: Buffer) => unknown): void {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    throw new ConfigError(
      name,
      `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    parse(pem);
  } catch {
    throw new ConfigError(
      name,
      `${path} is not a PEM ${name.endsWith('_KEY') ? 'private key' : 'certificate'}`,
    );
  }
}

/**
 * gRPC server credentials: plaintext, TLS, or mTLS when a CA is given (client certificates then
 * required). The files are re-read every `reloadMs`, so a certificate rotated on disk (a renewed
 * Kubernetes Secret, cert-manager) is served to new connections without a restart. Startup
 * refuses files that do not parse, naming the variable.
 */
export function grpcServerCredentials(files: TlsFiles): grpc.ServerCredentials {
  if (files.cert === undefined || files.key === undefined)
    return grpc.ServerCredentials.createInsecure();
  check('MATRYOSHKA_TLS_CERT', files.cert, (pem) => new X509Certificate(pem));
  check('MATRYOSHKA_TLS_KEY', files.key, (pem) => createPrivateKey(pem));
  if (files.ca !== undefined)
    check('MATRYOSHKA_TLS_CA', files.ca, (pem) => new X509Certificate(pem));
  const provider = new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: files.cert,
    privateKeyFile: files.key,
    ...(files.ca !== undefined ? { caCertificateFile: files.ca } : {}),
    refreshIntervalMs: files.reloadMs,
  });
  // One provider serves both roles: grpc-js's factory names its first two parameters in the
  // opposite order to the constructor it calls, and passing the same provider makes that moot.
  return grpc.experimental.createCertificateProviderServerCredentials(
    provider,
    files.ca !== undefined ? provider : null,
    files.ca !== undefined,
  );
}
