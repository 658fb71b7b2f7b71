/**
 * The `explain` command line: its flags and usage here, the pipeline it runs in explain.ts, loaded
 * only when explain runs (every other command and --help start without the Check pipeline).
 */
import type { Leaf } from './command.js';

/** `explain`: the Check pipeline offline, against the configured registry and keys; mints nothing. */
export const EXPLAIN: Leaf = {
  synopsis:
    '[--sid S] [--path P] [--method M] [--source PRINCIPAL] [--tenant T] [--json] [TOKEN|-]',
  details: [
    'run the same pipeline as Check against the configured registry (MATRYOSHKA_REGISTRY_FILE or',
    'REDIS_URL) and keys, and say why: each level (verified or not), the rule that decided',
    '(service, operation, tenant), the decision and its reason code. Mints nothing.',
    'Levels minted by this service verify with MATRYOSHKA_SIGNING_KEYS, or in Redis mode with the',
    "fleet's published keys.",
    '--sid S             the destination, as the route names it (else MATRYOSHKA_SERVICE_ID)',
    '--path P, --method M the original request, for per-operation rules',
    '--source PRINCIPAL  the peer workload (Istio), for source binding',
    '--tenant T          the tenant the route is bound to',
    '--json              the explanation as JSON',
    'TOKEN               the token; - or absent: standard input (a leading "Bearer " is ignored)',
    'exit 0 allow (dry-run included), 1 deny, 2 usage or configuration error',
  ],
  options: {
    sid: { type: 'string' },
    path: { type: 'string' },
    method: { type: 'string' },
    source: { type: 'string' },
    tenant: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
  positionals: { min: 0, max: 1 },
  async run(parsed, out) {
    const { explain } = await import('./explain.js');
    return explain(parsed, out);
  },
};
