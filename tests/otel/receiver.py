"""An OTLP/HTTP trace receiver for Protogate's tests: what a collector would decode.

Each `POST` body is parsed with OpenTelemetry's own protobuf definitions (PyPI
`opentelemetry-proto`), as `ExportTraceServiceRequest`, and every span in it is appended
to `--out` as one JSON line: the request's path and headers, the resource's and the
scope's names, and the span's name, kind, ids, times, attributes, events and status. A
body that does not parse is written as `{"error": ...}` and answered 400, so a test sees it.

Prints `listening on http://127.0.0.1:PORT` once it serves.
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def value(any_value):
    """An AnyValue as plain JSON: strings, ints, doubles, bools and arrays of them."""
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind) if kind else None


def attributes(key_values):
    return {kv.key: value(kv.value) for kv in key_values}


def spans(request, path, headers):
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "path": path,
                    "headers": headers,
                    "resource": resource,
                    "scope": scope_spans.scope.name,
                    "name": span.name,
                    "kind": Span.SpanKind.Name(span.kind),
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "start_time_unix_nano": span.start_time_unix_nano,
                    "end_time_unix_nano": span.end_time_unix_nano,
                    "attributes": attributes(span.attributes),
                    "events": [
                        {"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": attributes(e.attributes)}
                        for e in span.events
                    ],
                    "status": {"code": Status.StatusCode.Name(span.status.code), "message": span.status.message},
                }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="JSON lines file, appended to")
    args = parser.parse_args()
    out = open(args.out, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = ExportTraceServiceRequest()
            try:
                request.ParseFromString(body)
            except DecodeError as e:
                self.write([{"path": self.path, "headers": headers, "error": str(e)}])
                self.send_response(400)
                self.end_headers()
                return
            self.write(spans(request, self.path, headers))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def write(self, lines):
            for line in lines:
                out.write(json.dumps(line) + "\n")
            out.flush()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
