import { SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';

/**
 * A child span around one pipeline step, when the Check's own span is being recorded. Under a
 * span that is not (tracing off, or a trace the sampler left out) a child would not be recorded
 * either — the SDK's default sampler follows the parent — so the step just runs: making and ending
 * no-op spans and their contexts costs more than most steps.
 */
export async function inChildSpan<T>(
  tracer: Tracer,
  name: string,
  run: () => Promise<T>,
): Promise<T> {
  if (trace.getActiveSpan()?.isRecording() !== true) return run();
  return tracer.startActiveSpan(name, async (span) => {
    try {
      return await run();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}
