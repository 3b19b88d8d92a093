// Exports one known trace to Rewind with the OpenTelemetry Node SDK over OTLP/HTTP JSON and prints
// what it sent. Used by the integration tests (tests/it/agents.rs), which compare every printed span
// with what the query API returns. Exits non-zero unless the exporter reports success.
'use strict';

const api = require('@opentelemetry/api');
const { TracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');

const [endpoint, service] = process.argv.slice(2);
if (!endpoint || !service) {
  console.error('usage: node export.js HOST:PORT SERVICE');
  process.exit(2);
}

const inner = new OTLPTraceExporter({ url: `http://${endpoint}/v1/traces` });
const sent = [];
const results = [];
const recording = {
  export(spans, done) {
    inner.export(spans, (result) => {
      results.push(result);
      sent.push(...spans);
      done(result);
    });
  },
  shutdown: () => inner.shutdown(),
  forceFlush: () => inner.forceFlush(),
};

const provider = new TracerProvider({
  resource: resourceFromAttributes({ 'service.name': service, 'host.name': `${service}-host` }),
  spanProcessors: [new SimpleSpanProcessor({ exporter: recording })],
});
const tracer = provider.getTracer('rewind.node_check', '0.9.0');

const ns = (hr) => (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();
// Node's SpanKind starts at INTERNAL = 0; OTLP's at UNSPECIFIED = 0.
const describe = (s) => ({
  trace_id: s.spanContext().traceId,
  span_id: s.spanContext().spanId,
  parent_span_id: s.parentSpanContext ? s.parentSpanContext.spanId : null,
  name: s.name,
  kind: s.kind + 1,
  start_unix_nano: ns(s.startTime),
  end_unix_nano: ns(s.endTime),
  status_code: s.status.code,
  status_message: s.status.message || '',
  attributes: s.attributes,
  events: s.events.map((e) => ({ name: e.name, time_unix_nano: ns(e.time), attributes: e.attributes || {} })),
  resource: s.resource.attributes,
  scope: { name: s.instrumentationScope.name, version: s.instrumentationScope.version || '' },
});

async function main() {
  tracer.startActiveSpan('POST /cart/items', { kind: api.SpanKind.SERVER }, (root) => {
    root.setAttributes({
      'http.request.method': 'POST',
      'http.route': '/cart/items',
      'http.response.status_code': 201,
      'rewind.ratio': 0.5,
      'rewind.flag': false,
      'rewind.tags': ['x', 'y'],
    });
    const redis = tracer.startSpan('HSET', { kind: api.SpanKind.CLIENT, attributes: { 'db.system': 'redis', 'server.address': 'redis' } });
    redis.addEvent('retry', { attempt: 2 });
    redis.setStatus({ code: api.SpanStatusCode.ERROR, message: 'connection reset' });
    redis.end();
    root.end();
  });
  await provider.forceFlush();
  await provider.shutdown();
  if (results.length === 0 || results.some((r) => r.code !== 0)) {
    console.error('export failed', JSON.stringify(results.map((r) => ({ code: r.code, error: String(r.error) }))));
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(sent.map(describe)));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
