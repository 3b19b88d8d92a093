"""Sends one trace to Rewind's Zipkin endpoint with py_zipkin (v2 JSON or v2 protobuf over HTTP)
and prints what it sent, for tests/it/zipkin.rs: a SERVER span with a tag and an annotation, a
CLIENT child calling MySQL (a remote endpoint), and an error tag on a second child.

usage: zipkin_export.py HOST PORT [json|proto]
"""

import json
import sys

from py_zipkin import Kind
from py_zipkin.encoding import Encoding
from py_zipkin.transport import SimpleHTTPTransport
from py_zipkin.zipkin import zipkin_span


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    encoding = {"json": Encoding.V2_JSON, "proto": Encoding.V2_PROTO3}[sys.argv[3] if len(sys.argv) > 3 else "json"]
    transport = SimpleHTTPTransport(host, port)
    with zipkin_span(
        service_name="zk-frontend",
        span_name="get /checkout",
        transport_handler=transport,
        sample_rate=100.0,
        encoding=encoding,
        kind=Kind.SERVER,
        use_128bit_trace_id=True,
        binary_annotations={"http.route": "/checkout"},
    ) as root:
        root.add_annotation("cache miss")
        with zipkin_span(service_name="zk-frontend", span_name="select cart", kind=Kind.CLIENT) as db:
            db.add_sa_binary_annotation(port=3306, service_name="mysql", host="10.1.2.3")
        with zipkin_span(service_name="zk-frontend", span_name="charge", kind=Kind.CLIENT) as pay:
            pay.update_binary_annotations({"error": "card declined"})
        attrs = root.zipkin_attrs
    print(json.dumps({"trace_id": attrs.trace_id, "root_span_id": attrs.span_id}))


if __name__ == "__main__":
    main()
