"""A two-service Flask shop instrumented with the OpenTelemetry Python SDK, for the XLog tests.

`shop-a` serves GET /checkout/<n> and calls `shop-b` GET /stock/<n> with `requests`; `shop-b`
runs n % 3 + 1 SQLite queries, sleeps 0, 10, 20 or 100 ms by n % 4 (the slow quarter far from the
rest, so that a loaded machine does not blur them), and raises for n % 5 == 0 (then shop-a
raises too). Each role runs in its own process with its own TracerProvider and exports over
OTLP/gRPC with a BatchSpanProcessor, as a deployed service would. GET /flush forces an export.

With `--extras`, shop-a also calls, on every checkout, an HTTP service that has no
instrumentation (GET /price/<n>, served from a thread of its own process with plain `http.server`)
and a Redis server (GET stock:<n>, through redis-py and its OpenTelemetry instrumentation; the
server is a few lines of RESP in another thread, as no Redis runs here): the server map shows
them as virtual nodes.

Usage: flask_shop.py b --otlp URL        prints "listening PORT" once serving
       flask_shop.py a --otlp URL --b URL [--extras]
"""

import argparse
import http.server
import logging
import socketserver
import sqlite3
import sys
import threading
import time

import requests
from flask import Flask
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from werkzeug.serving import make_server


def provider(service, otlp):
    p = TracerProvider(resource=Resource.create({"service.name": service, "service.instance.id": f"{service}-1"}))
    p.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp, insecure=True), schedule_delay_millis=200))
    return p


def shop_b(tp):
    SQLite3Instrumentor().instrument(tracer_provider=tp)
    app = Flask("shop-b")

    @app.get("/stock/<int:n>")
    def stock(n):
        db = sqlite3.connect(":memory:")
        # Through a cursor: the instrumentation traces cursors, not Connection.execute.
        cur = db.cursor()
        for i in range(n % 3 + 1):
            cur.execute("SELECT ? + 1", (i,)).fetchall()
        db.close()
        time.sleep(0.1 if n % 4 == 3 else (n % 4) * 0.01)
        if n % 5 == 0:
            raise ValueError(f"item {n} is out of stock")
        return {"n": n, "in_stock": True}

    return app


class Price(http.server.BaseHTTPRequestHandler):
    """The uninstrumented HTTP service."""

    def do_GET(self):
        body = b'{"price": 7}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Resp(socketserver.StreamRequestHandler):
    """Enough of Redis's protocol for GET: every command is answered with a bulk string."""

    def handle(self):
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if not line.startswith(b"*"):
                continue
            for _ in range(int(line[1:])):
                self.rfile.readline()  # $len
                self.rfile.readline()  # the argument
            self.wfile.write(b"$1\r\n7\r\n")


def serve_in_thread(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def shop_a(tp, b_url, extras):
    RequestsInstrumentor().instrument(tracer_provider=tp)
    app = Flask("shop-a")
    if extras:
        import redis
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument(tracer_provider=tp)
        price_port = serve_in_thread(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Price))
        redis_port = serve_in_thread(socketserver.ThreadingTCPServer(("127.0.0.1", 0), Resp))
        cache = redis.Redis(host="127.0.0.1", port=redis_port, protocol=2)

    @app.get("/checkout/<int:n>")
    def checkout(n):
        r = requests.get(f"{b_url}/stock/{n}", timeout=10)
        if r.status_code != 200:
            raise RuntimeError(f"stock check failed with {r.status_code}")
        if extras:
            cache.get(f"stock:{n}")
            requests.get(f"http://127.0.0.1:{price_port}/price/{n}", timeout=10).raise_for_status()
        return {"n": n, "ok": True}

    return app


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["a", "b"])
    ap.add_argument("--otlp", required=True)
    ap.add_argument("--b")
    ap.add_argument("--extras", action="store_true")
    args = ap.parse_args()
    tp = provider(f"shop-{args.role}", args.otlp)
    app = shop_a(tp, args.b, args.extras) if args.role == "a" else shop_b(tp)
    FlaskInstrumentor().instrument_app(app, tracer_provider=tp)

    @app.get("/flush")
    def flush():
        return {"flushed": tp.force_flush(10_000)}

    # One line per request on stderr would bury the test's own output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # The raised errors are the point of some requests; their tracebacks are noise here.
    app.logger.setLevel(logging.CRITICAL)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"listening {server.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        tp.shutdown()


if __name__ == "__main__":
    sys.exit(main())
