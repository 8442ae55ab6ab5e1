"""A trace collector that accepts everything, for `scripts/bench.sh --features-on`.

Protogate's traces cost what they cost only when a collector takes them: with none
listening, every export fails at once and the spans are dropped. This one answers 200
(an empty body: full success in OTLP/HTTP) to each POST /v1/traces, throws the body
away, and counts what it got. It runs on a thread of the benchmark's own process.
"""

import http.server
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real collector: one connection

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        left = length
        while left:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)
        if self.path.rstrip("/").endswith("/v1/traces"):
            self.server.count(length)
            self._answer(200, b"", "application/x-protobuf")
        else:
            self._answer(404, b"not a trace export", "text/plain")

    def _answer(self, status, body, kind):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass  # one line per export would drown the benchmark's own output


class Collector(http.server.ThreadingHTTPServer):
    """Listening on a free loopback port from construction; `start()` serves."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.exports = 0
        self.bytes = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, length):
        with self.lock:
            self.exports += 1
            self.bytes += length

    def counts(self):
        with self.lock:
            return self.exports, self.bytes

    def start(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
