import type { OwnKeys } from '../keys/own-keys.js';
import { deny } from '../reasons.js';
import type { TenantPolicy } from '../registry/records.js';
import {
  type MintRequest,
  type MintSettings,
  type Minted,
  mintCompact,
  mintExtended,
} from './mint.js';
import { addedHeaderBytes } from './upstream-headers.js';

/**
 * A nested level's bytes beyond its container, a generous estimate: header, claims, signature
 * (ES256: 86 characters; RS256 with a 2048-bit key: 342) and the base64 of it all.
 */
const NESTED_OVERHEAD = 700;

export interface Budgeted {
  readonly minted: Minted;
  /** What the answer adds upstream: the token's header and the identity headers, names + values. */
  readonly headerBytes: number;
}

/**
 * Mint in the form the tenant (else the service) asks for, within the header budget, or refuse.
 * `auto` mints nested while the forwarded headers fit and compact once they would not (or once the
 * chain holds a compact level: see compactBelow): it
 * estimates the nested size first (the container is the incoming token, and base64 adds a third)
 * so a Check signs once, and measures what it actually minted before answering. Nothing over the
 * budget is ever answered: an oversized request would be refused upstream with a status that is
 * not ours to record. A chain that cannot take the compact form (sealing, see mintCompact) is
 * minted nested and held to the same budget.
 */
export async function mintWithinBudget(
  request: MintRequest,
  keys: OwnKeys,
  settings: MintSettings,
  tenant: TenantPolicy,
): Promise<Budgeted> {
  const format = tenant.chainFormat ?? settings.format;
  const budget = tenant.headerBudget ?? settings.headerBudget;
  const forwardHeader = settings.forwardHeader;
  const bytesOf = (minted: Minted): number =>
    addedHeaderBytes(forwardHeader, minted.token, {
      tenant: request.tenant,
      user: request.subject,
      roles: request.roles,
      depth: minted.level.depth,
      sids: minted.sids,
      actors: request.originActors,
      txnToken: request.txnToken,
    });
  const within = (minted: Minted): Budgeted => {
    const headerBytes = bytesOf(minted);
    if (headerBytes > budget)
      deny(
        'header_budget_exceeded',
        `the ${minted.form} token makes ${headerBytes} bytes of headers, over the budget of ${budget}`,
      );
    return { minted, headerBytes };
  };

  if (
    format === 'compact' ||
    (format === 'auto' && (compactBelow(request) || nestedWouldExceed(request, budget)))
  ) {
    const compact = mintCompact(request, keys, settings);
    if (compact !== undefined) return within(compact);
  }
  const nested = await mintExtended(request, keys, settings);
  if (format === 'auto' && bytesOf(nested) > budget) {
    // The estimate was short (a large identity, say): one more signature, rarely.
    const compact = mintCompact(request, keys, settings);
    if (compact !== undefined) return within(compact);
  }
  return within(nested);
}

/**
 * A compact level already in the chain: every reader downstream must read compact anyway, so a
 * nested level around it would only cost bytes and CPU (and the next compact level would collapse
 * it again). `auto` stays compact from the first switch on.
 */
function compactBelow(request: MintRequest): boolean {
  return request.chain.levels.some((l) => l.form === 'compact');
}

/** The nested level around `incoming`, estimated from above without minting it. */
function nestedWouldExceed(request: MintRequest, budget: number): boolean {
  const estimate = Math.ceil(((request.incoming.length + NESTED_OVERHEAD) * 4) / 3);
  // The Txn-Token beside the chain counts against the same budget.
  return estimate + (request.txnToken?.length ?? 0) > budget;
}
