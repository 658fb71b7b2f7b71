import { type Tracer, context, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { CheckInput } from '../pipeline/check-input.js';
import { type CheckDeps, checkWithin } from '../pipeline/check.js';
import type { DecisionRecord } from '../pipeline/decision.js';
import { logDecision } from '../telemetry/audit.js';
import { finishCheckSpan, startCheckSpan } from '../telemetry/check-span.js';
import type { AuthzMetrics } from '../telemetry/metrics.js';

export interface CheckHandlerDeps {
  readonly pipeline: CheckDeps;
  readonly tracer: Tracer;
  readonly metrics: AuthzMetrics;
  readonly audit: Logger;
}

/**
 * One Check as every transport runs it: the caller's deadline, the span, the pipeline, metrics and
 * the audit line — all from the one DecisionRecord. A transport converts its request into a
 * `CheckInput` and the record into its own answer; nothing else differs between them.
 */
export class CheckHandler {
  private running = 0;

  constructor(private readonly deps: CheckHandlerDeps) {}

  /** Checks under way (for the shutdown log). */
  get inFlight(): number {
    return this.running;
  }

  /** `deadline`: epoch ms by which the caller gives up, when it says. */
  async decide(input: CheckInput, deadline: number | undefined): Promise<DecisionRecord> {
    const started = performance.now();
    // Decide a fifth of the caller's budget early (5–50 ms): logging, encoding and the network hop
    // still have to fit before Envoy gives up and applies its own error policy.
    const remaining = deadline === undefined ? undefined : deadline - Date.now();
    const budgetMs =
      remaining === undefined ? undefined : remaining - Math.min(50, Math.max(5, remaining / 5));
    this.running++;
    try {
      const { span, ctx } = startCheckSpan(this.deps.tracer, input.headers);
      const record = await context.with(ctx, () =>
        checkWithin(input, this.deps.pipeline, budgetMs),
      );
      const duration = performance.now() - started;
      const keyCacheMiss = record.chain?.keyCacheMiss ?? false;
      finishCheckSpan(span, record, keyCacheMiss);
      this.deps.metrics.recordDecision(record, duration / 1000, keyCacheMiss);
      const spanContext = span.spanContext();
      logDecision(
        this.deps.audit,
        record,
        duration,
        trace.isSpanContextValid(spanContext) ? spanContext.traceId : undefined,
      );
      return record;
    } finally {
      this.running--;
    }
  }
}
