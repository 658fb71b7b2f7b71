import { errnoOf } from '../errors.js';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ConfigError } from '../config/config.js';

type IdentityCertificateUpdate = grpc.experimental.IdentityCertificateUpdate;
type CaCertificateUpdate = grpc.experimental.CaCertificateUpdate;

export interface TlsFiles {
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
  readonly reloadMs: number;
}

function check<T>(name: string, path: string, parse: (pem: Buffer) => T): T {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    throw new ConfigError(name, `cannot read ${path} (${errnoOf(error) ?? 'error'})`);
  }
  try {
    return parse(pem);
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
 * refuses files that do not parse or a certificate that is not the key's, naming the variable.
 */
export function grpcServerCredentials(files: TlsFiles): GrpcTls {
  if (files.cert === undefined || files.key === undefined)
    return { credentials: grpc.ServerCredentials.createInsecure(), loaded: Promise.resolve() };
  checkFiles(files.cert, files.key, files.ca);
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
  const loaded = firstRead(provider, files.ca !== undefined);
  // The service awaits this only once its port is bound, and the read may fail before: handled
  // here so that failure reaches that await (exit 2, naming the variable) instead of ending the
  // process as an unhandled rejection.
  loaded.catch(() => {});
  return { credentials, loaded };
}

/** Every file parses, and the certificate is the key's: what a TLS context needs to be made. */
function checkFiles(cert: string, key: string, ca: string | undefined): void {
  const certificate = check('MATRYOSHKA_TLS_CERT', cert, (pem) => new X509Certificate(pem));
  const privateKey = check('MATRYOSHKA_TLS_KEY', key, (pem) => createPrivateKey(pem));
  if (ca !== undefined) check('MATRYOSHKA_TLS_CA', ca, (pem) => new X509Certificate(pem));
  if (!certificate.checkPrivateKey(privateKey))
    throw new ConfigError('MATRYOSHKA_TLS_KEY', `${key} is not the key of ${cert}`);
}

/**
 * What is wrong with a delivery of the files, if anything: grpc-js would fail to make a TLS
 * context of it and drop every connection, so it must not count as the port being ready.
 */
function unusableIdentity(update: IdentityCertificateUpdate): ConfigError | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(update.certificate);
  } catch {
    return new ConfigError(
      'MATRYOSHKA_TLS_CERT',
      'the file read by the server is not a PEM certificate',
    );
  }
  try {
    if (cert.checkPrivateKey(createPrivateKey(update.privateKey))) return undefined;
  } catch {
    return new ConfigError(
      'MATRYOSHKA_TLS_KEY',
      'the file read by the server is not a PEM private key',
    );
  }
  return new ConfigError(
    'MATRYOSHKA_TLS_KEY',
    'the file read by the server is not the key of the certificate',
  );
}

function unusableCa(update: CaCertificateUpdate): ConfigError | undefined {
  try {
    new X509Certificate(update.caCertificate);
    return undefined;
  } catch {
    return new ConfigError(
      'MATRYOSHKA_TLS_CA',
      'the file read by the server is not a PEM certificate',
    );
  }
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
    const settle = <U>(
      update: U | null,
      variable: string,
      unusable: (update: U) => ConfigError | undefined,
      mark: () => void,
    ): void => {
      const refused =
        update === null
          ? new ConfigError(variable, 'the certificate files could not be read')
          : unusable(update);
      if (refused !== undefined) {
        stop();
        reject(refused);
        return;
      }
      mark();
      if (identity && ca) {
        stop();
        resolve();
      }
    };
    const onIdentity = (update: IdentityCertificateUpdate | null): void =>
      settle(update, 'MATRYOSHKA_TLS_CERT', unusableIdentity, () => {
        identity = true;
      });
    const onCa = (update: CaCertificateUpdate | null): void =>
      settle(update, 'MATRYOSHKA_TLS_CA', unusableCa, () => {
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
  checkFiles(cert, key, ca);
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
