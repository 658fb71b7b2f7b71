import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { runProgramHere } from './program.js';

/** A development CA with server and client certificates (`certs generate`), in a new folder. */
export async function devCerts(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'matryoshka-certs-'));
  const result = await runProgramHere(['certs', 'generate', '--dir', dir, '--days', '2']);
  if (result.code !== 0) throw new Error(`certs generate: ${result.stderr}`);
  return dir;
}

/** The certificate the server presents to a new mTLS connection (HTTP/2, as gRPC clients ask). */
export function presented(port: number, caDir: string, clientDir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: readFileSync(join(caDir, 'ca.pem')),
      cert: readFileSync(join(clientDir, 'client.pem')),
      key: readFileSync(join(clientDir, 'client-key.pem')),
      ALPNProtocols: ['h2'],
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.destroy();
    });
    socket.once('error', reject);
  });
}
