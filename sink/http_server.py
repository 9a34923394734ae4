"""The sink's HTTP endpoint (``CDCSYNC_SINK_HTTP``): /metrics, /livez, /readyz.

A small threaded server on its own daemon thread. Handlers only read: a
scrape never blocks the consumer loop, and a stuck loop still gets its 503.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from cdcsync.sink.errors import SinkCannotContinue
from cdcsync.sink.health import Verdict
from cdcsync.sink.http_address import ListenAddress

logger = logging.getLogger(__name__)


class HttpAddressInUse(SinkCannotContinue, exit_code=2, fix="give CDCSYNC_SINK_HTTP (--http) a free host:port"):
    """The health and metrics port cannot be bound (taken, or not an address of this host)."""


class HealthServer:
    """Serves until ``close``. Binding happens in ``start``; a taken port is a ``SinkCannotContinue``."""

    def __init__(
        self,
        address: ListenAddress,
        registry: CollectorRegistry,
        live: Callable[[], Verdict],
        ready: Callable[[], Verdict],
    ) -> None:
        self.address = address
        self._registry = registry
        self._live = live
        self._ready = ready
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            server = ThreadingHTTPServer((self.address.host, self.address.port), self._handler())
        except OSError as exc:
            raise HttpAddressInUse(f"cannot listen on {self.address}: {exc.strerror or exc}") from exc
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="sink-http", daemon=True)
        self._thread.start()
        logger.info("serving /metrics, /livez and /readyz on %s", self.address.url)

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS picked, for port 0)."""
        return self.address.port if self._server is None else int(self._server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry, live, ready = self._registry, self._live, self._ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path in ("/livez", "/readyz"):
                    verdict = live() if path == "/livez" else ready()
                    status = HTTPStatus.OK if verdict.ok else HTTPStatus.SERVICE_UNAVAILABLE
                    self._send(status, f"{verdict.reason}\n".encode(), "text/plain; charset=utf-8")
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"/metrics, /livez, /readyz\n", "text/plain; charset=utf-8")

            def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                logger.debug("http: " + format, *args)

        return Handler
