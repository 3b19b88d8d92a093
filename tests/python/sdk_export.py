"""Exports one known trace to Rewind with the OpenTelemetry Python SDK and prints what it sent.

Used by the integration tests (tests/it/agents.rs): they start rewind, run this script with the
OTLP/gRPC, OTLP/HTTP protobuf or OTLP/HTTP JSON exporter pointed at it, and compare every printed span with what
the query API returns. Exits non-zero if the exporter reports anything but success.
"""

import argparse
import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

# Python's SpanKind starts at INTERNAL = 0; OTLP's at UNSPECIFIED = 0.
OTLP_KIND = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4, SpanKind.CONSUMER: 5}


class Recording(SpanExporter):
    """Forwards to the real exporter and remembers what it sent and how it went."""

    def __init__(self, inner):
        self.inner = inner
        self.sent = []
        self.results = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result)
        self.sent.extend(spans)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def plain(value):
    return list(value) if isinstance(value, tuple) else value


def describe(span):
    return {
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "kind": OTLP_KIND[span.kind],
        "start_unix_nano": str(span.start_time),
        "end_unix_nano": str(span.end_time),
        "status_code": span.status.status_code.value,
        "status_message": span.status.description or "",
        "attributes": {k: plain(v) for k, v in span.attributes.items()},
        "events": [
            {"name": e.name, "time_unix_nano": str(e.timestamp), "attributes": {k: plain(v) for k, v in e.attributes.items()}}
            for e in span.events
        ],
        "resource": {k: plain(v) for k, v in span.resource.attributes.items()},
        "scope": {"name": span.instrumentation_scope.name, "version": span.instrumentation_scope.version or ""},
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", choices=["grpc", "http", "http-json"], required=True)
    p.add_argument("--endpoint", required=True, help="host:port of rewind's OTLP listener")
    p.add_argument("--service", required=True)
    p.add_argument("--traces", type=int, default=1, help="how many copies of the trace to send")
    args = p.parse_args()

    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        inner = OTLPSpanExporter(endpoint=args.endpoint, insecure=True)
    elif args.protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        inner = OTLPSpanExporter(endpoint=f"http://{args.endpoint}/v1/traces")
    else:
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

        inner = OTLPSpanExporter(endpoint=f"http://{args.endpoint}/v1/traces")
    exporter = Recording(inner)
    resource = Resource.create({
        "service.name": args.service,
        "service.instance.id": f"{args.service}-1",
        "k8s.namespace.name": "shop",
        "k8s.pod.name": f"{args.service}-7d9f-abcde",
    })
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("rewind.sdk_check", "1.2.3")

    for _ in range(args.traces):
        with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.request.method", "GET")
            root.set_attribute("http.route", "/checkout")
            root.set_attribute("http.response.status_code", 200)
            root.set_attribute("client.address", "10.1.2.3")
            root.set_attribute("enduser.id", "user-42")
            root.set_attribute("rewind.ratio", 0.25)
            root.set_attribute("rewind.flag", True)
            root.set_attribute("rewind.tags", ["a", "b"])
            root.set_attribute("rewind.sizes", [1, 2, 3])
            with tracer.start_as_current_span("SELECT shop.orders", kind=SpanKind.CLIENT) as db:
                db.set_attribute("db.system", "mysql")
                db.set_attribute("db.statement", "SELECT * FROM orders WHERE id = ?")
                db.set_attribute("server.address", "mysql")
            with tracer.start_as_current_span("charge", kind=SpanKind.INTERNAL) as charge:
                try:
                    raise ValueError("card declined")
                except ValueError as e:
                    charge.record_exception(e)
                    charge.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.force_flush()
    provider.shutdown()

    if not exporter.results or any(r != SpanExportResult.SUCCESS for r in exporter.results):
        print(f"export failed: {exporter.results}", file=sys.stderr)
        sys.exit(1)
    json.dump([describe(s) for s in exporter.sent], sys.stdout)


if __name__ == "__main__":
    main()
