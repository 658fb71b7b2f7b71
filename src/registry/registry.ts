import { MatryoshkaError } from '../errors.js';
import type { IssuerRecord, ServicePolicy, TenantPolicy } from './records.js';

/**
 * What the Check path reads from the registry. Implementations (in-memory, Redis) answer from
 * process memory once warm; a read that cannot be answered throws `RegistryUnavailableError`,
 * which the pipeline turns into 503 `unavailable` — never into a denial or an allow.
 */
export interface RegistryReader {
  issuer(iss: string): Promise<IssuerRecord | undefined>;
  tenant(tenant: string): Promise<TenantPolicy | undefined>;
  service(sid: string): Promise<ServicePolicy | undefined>;
  /** Istio SPIFFE id (or any peer principal) to the service id it stands for. */
  principal(principal: string): Promise<string | undefined>;
  /** True once the registry can answer (embedded: always; Redis: after the first reply). */
  ready(): boolean;
  /** Changes whenever anything in the registry changes; memoised verifications of another version are ignored. */
  version(): number;
}

export class RegistryUnavailableError extends MatryoshkaError {
  constructor(detail: string) {
    super('ERR_REGISTRY_UNAVAILABLE', detail);
  }
}

/**
 * A tenant or service record that exists but cannot be read as written (an unknown field, a wrong
 * type, not JSON). The requests it governs are refused (`record_unreadable`, 503): never decided by
 * the defaults of a tenant or service without a record, which would let its restrictions vanish.
 */
export class RecordUnreadableError extends MatryoshkaError {
  constructor(
    readonly record: string,
    problem: string,
  ) {
    super('ERR_RECORD_UNREADABLE', `${record} cannot be read (${problem})`);
  }
}
