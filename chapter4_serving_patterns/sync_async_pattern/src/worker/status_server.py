"""The worker's own small HTTP server on WORKER_PORT: `GET /health` and `GET /metrics` (SPEC 0.11).

The worker has no API, only a liveness answer and its Prometheus metrics, so the standard
library's threading server is enough; it runs in a daemon thread beside the consumers' event loop.
Anything else is a 404 in the error envelope (SPEC 0.6).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from src.common.metrics import METRICS_PATH, metrics_exposition
from src.common.request_id import REQUEST_ID_HEADER, accept_or_generate

HEALTH_PATH = "/health"
JSON_TYPE = "application/json"


class StatusHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for scrapers and probes

    def do_GET(self) -> None:
        request_id = accept_or_generate(self.headers.get(REQUEST_ID_HEADER))
        path = urlsplit(self.path).path
        if path == HEALTH_PATH:
            self._send(200, json.dumps({"health": "ok"}).encode(), JSON_TYPE, request_id)
        elif path == METRICS_PATH:
            self._send(200, metrics_exposition(), CONTENT_TYPE_LATEST, request_id)
        else:
            body = {"error": f"no route for GET {path}", "code": "not_found",
                    "request_id": request_id}  # fmt: skip
            self._send(404, json.dumps(body).encode(), JSON_TYPE, request_id)

    def _send(self, status: int, body: bytes, content_type: str, request_id: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header(REQUEST_ID_HEADER, request_id)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes and scrapes every few seconds would drown the job log lines


def start_status_server(host: str, port: int) -> ThreadingHTTPServer:
    """Listening when it returns (a port in use raises OSError here, at start-up)."""
    server = ThreadingHTTPServer((host, port), StatusHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="status-server", daemon=True)
    thread.start()
    return server
