import type { Chain } from '../chain/types.js';
import type { DenyReason } from '../reasons.js';
import type { Minted } from './mint.js';

export type ShadowScope = 'global' | 'tenant' | 'service' | 'operation';

/**
 * What one Check decided and everything it learnt on the way. The response, the span, the audit
 * line and the metrics are all derived from this one record, so they cannot disagree.
 */
export interface DecisionRecord {
  readonly requestId: string;
  /** What Envoy is told. In shadow mode a denial is still allowed, and `reason` says why it would not be. */
  readonly allowed: boolean;
  readonly reason: DenyReason | undefined;
  /** Internal explanation for logs and spans; never sent to the client. */
  readonly detail: string | undefined;
  readonly shadow: boolean;
  /** Which dry-run let the denial through: the global mode, or the tenant's, service's or operation's. */
  readonly shadowScope: ShadowScope | undefined;
  /** The service operation whose rule decided (undefined: the service's own rule). */
  readonly operation: string | undefined;
  readonly tenant: string | undefined;
  readonly user: string | undefined;
  readonly roles: readonly string[];
  readonly destination: string | undefined;
  readonly chain: Chain | undefined;
  readonly minted: Minted | undefined;
  /** Bytes the answer adds upstream (minted token + identity headers, names + values), when minted. */
  readonly headerBytes?: number | undefined;
  readonly recursionAudited: boolean;
  /** The chain's transaction id (Txn-Token `txn`), when it has one. */
  readonly txn?: string | undefined;
  /** The Txn-Token answered upstream beside the minted level (verified and passed on, or ours). */
  readonly txnToken?: string | undefined;
  /** Whether `txnToken` was signed in this Check (`emitted`) or came with the chain (`carried`). */
  readonly txnTokenSource?: 'emitted' | 'carried' | undefined;
  /** The origin's RFC 8693 actors, oldest first (`x-auth-actors`). */
  readonly actors?: readonly string[] | undefined;
}
