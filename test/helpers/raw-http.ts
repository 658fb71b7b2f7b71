import { connect } from 'node:net';

export interface RawReply {
  readonly status: number;
  /** Everything after the status line, headers included, as latin1. */
  readonly rest: string;
}

/**
 * One HTTP/1.1 request with exactly these bytes in its request line and headers (a client library
 * would refuse or re-encode some of the spellings under test). `host` defaults to 127.0.0.1:<port>.
 */
export function rawRequest(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string>,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const lines = [`${method} ${target} HTTP/1.1`, 'connection: close'];
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'host'))
      lines.push(`host: 127.0.0.1:${port}`);
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    let data = '';
    socket.setEncoding('latin1');
    socket.setTimeout(15_000, () => socket.destroy(new Error('no answer within 15 s')));
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(data)?.[1];
      if (status === undefined) reject(new Error(`no status line in ${JSON.stringify(data)}`));
      else resolve({ status: Number(status), rest: data.slice(data.indexOf('\r\n') + 2) });
    });
    socket.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  });
}

/** The status of `rawRequest`. */
export async function rawHttp(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string>,
): Promise<number> {
  return (await rawRequest(port, method, target, headers)).status;
}
