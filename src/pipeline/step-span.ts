import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
/** A child span around one pipeline step; the no-op tracer makes this free when tracing is off. */
export async function inChildSpan<T>(
  tracer: Tracer,
  name: string,
  run: () => Promise<T>,
): Promise<T> {
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
