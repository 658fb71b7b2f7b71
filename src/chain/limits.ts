/** Hard caps on what opening a chain may cost. Exceeding any of them is `stack_too_large`. */
export interface ChainLimits {
  /** Most levels (tokens) a chain may have, origin included. */
  maxLevels: number;
  /** Largest decompressed container, enforced while inflating. */
  maxContainerBytes: number;
  /** Longest incoming token, in characters. */
  maxTokenLength: number;
  /** Tolerance, in seconds, for exp/nbf/iat comparisons. */
  clockSkewSeconds: number;
}

export const DEFAULT_LIMITS: ChainLimits = Object.freeze({
  maxLevels: 32,
  maxContainerBytes: 256 * 1024,
  maxTokenLength: 64 * 1024,
  clockSkewSeconds: 30,
});
