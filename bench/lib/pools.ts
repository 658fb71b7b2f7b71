/**
 * Request pools: tokens minted through the server before a run (so every request's outermost level
 * is distinct), written as length-prefixed request frames for the load generator.
 */
import { writeFileSync } from 'node:fs';
import type { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { GrpcH2Pool } from './h2grpc.js';
import type { HttpDialect } from './knobs.js';
import { checkRequest, httpAuthzRequest, originClaims } from './requests.js';
import { decodeCheckResponse, encodeCheckFrame, unframe } from './wire.js';

function writePool(file: string, frames: readonly Buffer[]): void {
  const parts: Buffer[] = [];
  for (const frame of frames) {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(frame.length);
    parts.push(length, frame);
  }
  writeFileSync(file, Buffer.concat(parts));
}

/** Each token as a Check for `dest`, written to `file`. */
export function writeCheckPool(file: string, tokens: readonly string[], dest: string): void {
  writePool(
    file,
    tokens.map((t, i) => encodeCheckFrame(checkRequest(t, dest, i))),
  );
}

/**
 * Each token as a request to the HTTP authorization port for `dest` (length-prefixed JSON of
 * method, path and headers), written to `file`; `i` matches `writeCheckPool`, so the two files
 * describe the same original requests.
 */
export function writeHttpPool(
  file: string,
  tokens: readonly string[],
  dest: string,
  dialect: HttpDialect,
  budgetMs: number,
): void {
  writePool(
    file,
    tokens.map((t, i) =>
      Buffer.from(JSON.stringify(httpAuthzRequest(t, dest, i, dialect, budgetMs))),
    ),
  );
}

interface Forwarded {
  readonly token: string;
  readonly depth: string | undefined;
}

async function checkOnce(
  client: GrpcH2Pool,
  token: string,
  sid: string,
  i: number,
): Promise<Forwarded> {
  const result = await client.callAsync(encodeCheckFrame(checkRequest(token, sid, i)));
  if (result.error !== undefined || result.grpcStatus !== 0 || result.body === undefined) {
    throw new Error(
      `pool build: Check to ${sid} failed (${result.error ?? `grpc-status ${result.grpcStatus} ${result.grpcMessage ?? ''}`})`,
    );
  }
  const message = unframe(result.body);
  if (message === undefined) throw new Error('pool build: unreadable response');
  const response = decodeCheckResponse(message);
  const forward = response.headers['authorization'];
  if (!response.allowed || forward === undefined) {
    throw new Error(
      `pool build: Check to ${sid} was denied (${String(response.metadata['reason'] ?? response.statusCode)})`,
    );
  }
  return { token: forward.replace(/^Bearer /, ''), depth: response.headers['x-auth-depth'] };
}

/**
 * The depth-(d−1) chain a depth-d pool wraps: a fresh origin walked through Checks to `hop-1` … so
 * the server has verified (and remembered) every level of it.
 */
export async function innerChain(
  client: GrpcH2Pool,
  issuer: LocalIssuer,
  pad: string,
  depth: number,
): Promise<string> {
  let t = await issuer.mint(originClaims(7, pad), { ttl: 3600 });
  for (let hop = 1; hop < depth; hop++) t = (await checkOnce(client, t, `hop-${hop}`, hop)).token;
  return t;
}

/** Send `token` to `sid` until `target()` responses are in, `concurrency` at a time. */
export async function wrapMany(
  client: GrpcH2Pool,
  token: string,
  sid: string,
  concurrency: number,
  target: (done: number, elapsedMs: number) => number,
): Promise<{ tokens: string[]; rate: number }> {
  const frame = encodeCheckFrame(checkRequest(token, sid, 0)); // x-request-id repeats: harmless, ignored by the memo
  const tokens: string[] = [];
  const started = performance.now();
  let launched = 0;
  let failure: Error | undefined;
  await new Promise<void>((resolve) => {
    let active = 0;
    const launch = (): void => {
      while (
        failure === undefined &&
        active < concurrency &&
        launched < target(tokens.length, performance.now() - started)
      ) {
        active++;
        launched++;
        client.call(frame, (result) => {
          active--;
          try {
            if (result.error !== undefined || result.grpcStatus !== 0 || result.body === undefined)
              throw new Error(result.error ?? `grpc-status ${result.grpcStatus}`);
            const message = unframe(result.body);
            const response = message === undefined ? undefined : decodeCheckResponse(message);
            const forward = response?.headers['authorization'];
            if (response === undefined || !response.allowed || forward === undefined)
              throw new Error(`denied (${String(response?.metadata['reason'] ?? '?')})`);
            tokens.push(forward.slice('Bearer '.length));
          } catch (error) {
            failure ??= new Error(`pool build: wrapping for ${sid}: ${(error as Error).message}`);
          }
          launch();
          if (active === 0) resolve();
        });
      }
      if (active === 0) resolve();
    };
    launch();
  });
  if (failure !== undefined) throw failure;
  return { tokens, rate: tokens.length / ((performance.now() - started) / 1000) };
}
