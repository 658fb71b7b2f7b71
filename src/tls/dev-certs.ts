import { webcrypto } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { MatryoshkaError, errnoOf } from '../errors.js';
import * as x509 from '@peculiar/x509';

type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface DevCertOptions {
  /** DNS names and IP addresses the server certificate is valid for. */
  hosts: readonly string[];
  days: number;
}

export const DEFAULT_DEV_HOSTS = [
  'localhost',
  '127.0.0.1',
  '::1',
  'matryoshka-authz',
  'matryoshka-authz.matryoshka-authz.svc',
  'matryoshka-authz.matryoshka-authz.svc.cluster.local',
];

function pemKey(der: ArrayBuffer): string {
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

const isIp = (host: string): boolean => /^[\d.]+$/.test(host) || host.includes(':');

async function leaf(
  ca: { cert: x509.X509Certificate; keys: CryptoKeyPair },
  subject: string,
  usage: x509.ExtendedKeyUsage,
  names: Array<{ type: 'dns' | 'ip'; value: string }>,
  days: number,
): Promise<{ cert: string; key: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    subject,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + days * 86_400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([usage]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return {
    cert: cert.toString('pem'),
    key: pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

/**
 * `mkdir -p`, one component at a time. Node's own recursive mkdir loops forever under /proc
 * (`/proc/1/nope` spins a core), so each step is a plain mkdir whose failure is reported.
 */
export function makeDirectories(dir: string): void {
  const absolute = resolve(dir);
  const parts = absolute.split(sep).filter((p) => p.length > 0);
  let path = absolute.startsWith(sep) ? sep : '';
  for (const part of parts) {
    path = join(path, part);
    try {
      mkdirSync(path);
    } catch (error) {
      if (errnoOf(error) !== 'EEXIST') throw error;
      if (!statSync(path).isDirectory())
        throw new MatryoshkaError('ERR_USAGE', `--dir ${dir}: ${path} is not a directory`);
    }
  }
}

/**
 * A development CA and, signed by it, a server certificate for the gRPC port and a client
 * certificate for Envoy — enough to run mTLS locally. Keys are P-256; files are written 0600.
 */
export async function generateDevCertificates(
  dir: string,
  options: DevCertOptions,
): Promise<string[]> {
  const caKeys = (await webcrypto.subtle.generateKey(ALG, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=matryoshka-authz development CA',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + options.days * 86_400_000),
    signingAlgorithm: ALG,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const ca = { cert: caCert, keys: caKeys };
  const server = await leaf(
    ca,
    'CN=matryoshka-authz',
    x509.ExtendedKeyUsage.serverAuth,
    options.hosts.map((h) => ({ type: isIp(h) ? 'ip' : 'dns', value: h })),
    options.days,
  );
  const client = await leaf(
    ca,
    'CN=envoy',
    x509.ExtendedKeyUsage.clientAuth,
    [{ type: 'dns', value: 'envoy' }],
    options.days,
  );
  makeDirectories(dir);
  const files: Array<[string, string, number]> = [
    ['ca.pem', caCert.toString('pem'), 0o644],
    ['ca-key.pem', pemKey(await webcrypto.subtle.exportKey('pkcs8', caKeys.privateKey)), 0o600],
    ['server.pem', server.cert, 0o644],
    ['server-key.pem', server.key, 0o600],
    ['client.pem', client.cert, 0o644],
    ['client-key.pem', client.key, 0o600],
  ];
  for (const [name, content, mode] of files)
    writeFileSync(join(dir, name), `${content.trim()}\n`, { mode });
  return files.map(([name]) => join(dir, name));
}
