import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpAttribute {
  key: string;
  value: {
    stringValue?: string;
    intValue?: string | number;
    boolValue?: boolean;
    doubleValue?: number;
  };
}
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
  events?: Array<{ name: string; attributes?: OtlpAttribute[] }>;
}

/** An OTLP/HTTP receiver (JSON protocol) on loopback: what a collector would get, kept for assertions. */
export class OtlpReceiver {
  readonly spans: OtlpSpan[] = [];
  readonly resources: Array<Record<string, unknown>> = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<OtlpReceiver> {
    let self: OtlpReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/v1/traces' && self) {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            resourceSpans?: Array<{
              resource?: Record<string, unknown>;
              scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
            }>;
          };
          for (const rs of body.resourceSpans ?? []) {
            if (rs.resource) self.resources.push(rs.resource);
            for (const ss of rs.scopeSpans ?? []) self.spans.push(...(ss.spans ?? []));
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new OtlpReceiver(server);
    return self;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The variables that send a spawned service's spans here, each batch within 50 ms. */
  get env(): Record<string, string> {
    return {
      OTEL_EXPORTER_OTLP_ENDPOINT: this.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    };
  }

  /** The SERVER span (kind 2) of one trace, once exported; refused after `timeoutMs`. */
  async serverSpan(traceId: string, timeoutMs = 5000): Promise<OtlpSpan> {
    const started = Date.now();
    for (;;) {
      const span = this.spans.find((s) => s.traceId === traceId && s.kind === 2);
      if (span !== undefined) return span;
      if (Date.now() - started > timeoutMs)
        throw new Error(`span exported: not within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export function attribute(
  span: { attributes?: OtlpAttribute[] },
  key: string,
): string | number | boolean | undefined {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  if (value.intValue !== undefined) return Number(value.intValue);
  return value.stringValue ?? value.boolValue ?? value.doubleValue;
}
