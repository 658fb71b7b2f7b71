import { MatryoshkaError } from '../errors.js';
import { CompactEncrypt, compactDecrypt, errors as joseErrors } from 'jose';
import { type OwnKeys, SEAL_CONTENT_ENC, SEAL_KEY_ALG } from '../keys/own-keys.js';
import { CompactFormatError, parseJweHeader } from './compact.js';

export class SealError extends MatryoshkaError {
  constructor(message: string) {
    super('ERR_SEAL', message);
  }
}

/** Seal a container to our own key: only a holder of our sealing key can read the chain below. */
export async function sealContainer(token: string, keys: OwnKeys): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(token))
    .setProtectedHeader({
      alg: SEAL_KEY_ALG,
      enc: SEAL_CONTENT_ENC,
      kid: keys.seal.kid,
      cty: 'JWT',
    })
    .encrypt(keys.seal.publicKey);
}

/**
 * Open a JWE container if it was sealed to one of our keys. `undefined` means "not ours": the
 * chain is sealed at this point and policy decides. A JWE addressed to our key that does not
 * decrypt has been tampered with, which is an error, not a seal.
 */
export async function unsealContainer(
  jwe: string,
  keys: OwnKeys,
  maxBytes: number,
): Promise<string | undefined> {
  let header: Record<string, unknown>;
  try {
    header = parseJweHeader(jwe);
  } catch (error) {
    if (error instanceof CompactFormatError) throw new SealError(error.message);
    throw error;
  }
  const kid = typeof header['kid'] === 'string' ? header['kid'] : undefined;
  const key = keys.sealKey(kid);
  if (key === undefined) return undefined;
  let plaintext: Uint8Array;
  try {
    ({ plaintext } = await compactDecrypt(jwe, key.privateKey, {
      keyManagementAlgorithms: [SEAL_KEY_ALG],
      contentEncryptionAlgorithms: [SEAL_CONTENT_ENC],
    }));
  } catch (error) {
    if (error instanceof joseErrors.JOSEError)
      throw new SealError(`sealed container does not decrypt (${error.code})`);
    throw error;
  }
  if (plaintext.byteLength > maxBytes) throw new SealError('sealed container exceeds the size cap');
  const text = Buffer.from(plaintext).toString('latin1');
  if (!/^[\x21-\x7e]*$/.test(text)) throw new SealError('sealed container is not a compact token');
  return text;
}
