import { errnoOf } from '../errors.js';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
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
    throw new ConfigError(name, `cannot read ${path} (${errnoOf(error) ?? 'error'})`);
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

/** gRPC server credentials, and when the port can first complete a TLS handshake. */
export interface GrpcTls {
  readonly credentials: grpc.ServerCredentials;
  /**
   * Resolves once the certificate files have been read into the server (at once for plaintext);
   * until then a TLS client is disconnected mid-handshake, so the service is not ready before it.
   * Rejects when that first read fails (the files went away after they were checked).
   */
  readonly loaded: Promise<void>;
}

/**
 * gRPC server credentials: plaintext, TLS, or mTLS when a CA is given (client certificates then
 * required). The files are re-read every `reloadMs`, so a certificate rotated on disk (a renewed
 * Kubernetes Secret, cert-manager) is served to new connections without a restart. Startup
 * refuses files that do not parse, naming the variable.
 */
export function grpcServerCredentials(files: TlsFiles): GrpcTls {
  if (files.cert === undefined || files.key === undefined)
    return { credentials: grpc.ServerCredentials.createInsecure(), loaded: Promise.resolve() };
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
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(
    provider,
    files.ca !== undefined ? provider : null,
    files.ca !== undefined,
  );
  return { credentials, loaded: firstRead(provider, files.ca !== undefined) };
}

/** What `firstRead` needs of a grpc-js certificate provider. */
export type CertificateSource = Pick<
  grpc.experimental.CertificateProvider,
  | 'addIdentityCertificateListener'
  | 'removeIdentityCertificateListener'
  | 'addCaCertificateListener'
  | 'removeCaCertificateListener'
>;

/** The provider's first delivery of the files (grpc-js reads them asynchronously). */
export function firstRead(provider: CertificateSource, withCa: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let identity = false;
    let ca = !withCa;
    const settle = (update: unknown, variable: string, mark: () => void): void => {
      if (update === null) {
        stop();
        reject(new ConfigError(variable, 'the certificate files could not be read'));
        return;
      }
      mark();
      if (identity && ca) {
        stop();
        resolve();
      }
    };
    const onIdentity = (update: unknown): void =>
      settle(update, 'MATRYOSHKA_TLS_CERT', () => {
        identity = true;
      });
    const onCa = (update: unknown): void =>
      settle(update, 'MATRYOSHKA_TLS_CA', () => {
        ca = true;
      });
    const stop = (): void => {
      provider.removeIdentityCertificateListener(onIdentity);
      if (withCa) provider.removeCaCertificateListener(onCa);
    };
    provider.addIdentityCertificateListener(onIdentity);
    if (withCa) provider.addCaCertificateListener(onCa);
  });
}

/** The same files as `grpcServerCredentials`, for a node:https server. */
export interface HttpsTls {
  readonly options: TlsOptions;
  /** Re-read the files (for `server.setSecureContext`); undefined while a rotation is half-written. */
  reload(): SecureContextOptions | undefined;
}

/**
 * TLS for an HTTPS listener from the same variables and with the same rules as the gRPC port:
 * plaintext without a certificate, mTLS (client certificate required) with a CA, files checked at
 * start and re-read every `reloadMs` by the caller. Undefined: plaintext.
 */
export function httpsTls(files: TlsFiles): HttpsTls | undefined {
  const { cert, key, ca } = files;
  if (cert === undefined || key === undefined) return undefined;
  check('MATRYOSHKA_TLS_CERT', cert, (pem) => new X509Certificate(pem));
  check('MATRYOSHKA_TLS_KEY', key, (pem) => createPrivateKey(pem));
  if (ca !== undefined) check('MATRYOSHKA_TLS_CA', ca, (pem) => new X509Certificate(pem));
  const read = (): SecureContextOptions => ({
    cert: readFileSync(cert),
    key: readFileSync(key),
    ...(ca !== undefined ? { ca: readFileSync(ca) } : {}),
  });
  return {
    options: { ...read(), requestCert: ca !== undefined, rejectUnauthorized: ca !== undefined },
    reload: () => {
      try {
        const next = read();
        // A certificate written before its key (or the reverse) does not pair: keep serving the old.
        createPrivateKey(next.key as Buffer);
        new X509Certificate(next.cert as Buffer);
        return next;
      } catch {
        return undefined;
      }
    },
  };
}
