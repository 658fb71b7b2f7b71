import { MatryoshkaError } from '../errors.js';
/**
 * GET a JSON document from an identity provider with every bound a hostile or broken IdP needs:
 * a deadline, a response size cap enforced while reading, https-only unless explicitly relaxed,
 * and no redirects (a redirect could point anywhere; the registry is the allow-list).
 */
export interface FetchLimits {
  timeoutMs: number;
  maxBytes: number;
  allowInsecure: boolean;
}

export const DEFAULT_FETCH_LIMITS: FetchLimits = Object.freeze({
  timeoutMs: 3000,
  maxBytes: 512 * 1024,
  allowInsecure: false,
});

export class FetchFailedError extends MatryoshkaError {
  constructor(url: string, problem: string) {
    super('ERR_FETCH_FAILED', `${url}: ${problem}`);
  }
}

export async function fetchJson(url: string, limits: FetchLimits): Promise<unknown> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new FetchFailedError(url, 'not a URL');
  }
  if (parsed.protocol !== 'https:' && !(limits.allowInsecure && parsed.protocol === 'http:')) {
    throw new FetchFailedError(url, 'only https URLs are fetched');
  }
  let response: Response;
  const signal = AbortSignal.timeout(limits.timeoutMs);
  try {
    response = await fetch(parsed, {
      redirect: 'error',
      signal,
      headers: { accept: 'application/json' },
    });
  } catch (error) {
    throw new FetchFailedError(
      url,
      error instanceof Error && error.name === 'TimeoutError' ? 'timed out' : 'unreachable',
    );
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new FetchFailedError(url, `HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > limits.maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new FetchFailedError(url, 'response too large');
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body ?? []) {
      total += chunk.byteLength;
      if (total > limits.maxBytes) {
        await response.body?.cancel().catch(() => undefined);
        throw new FetchFailedError(url, 'response too large');
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof FetchFailedError) throw error;
    throw new FetchFailedError(url, signal.aborted ? 'timed out' : 'read failed');
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new FetchFailedError(url, 'not JSON');
  }
}
