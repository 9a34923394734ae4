"""A stand-in schema registry for unit tests: the Confluent-compatible ``GET /schemas/ids/<id>`` and
``GET /subjects`` over real HTTP on a loopback port, so the real ``SchemaRegistryClient`` talks to it.

``answer_with`` makes it fail every request with an HTTP status (a 401, a 503); ``user_info``
makes it demand HTTP Basic credentials. ``requests`` counts what it was asked.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandInRegistry:
    def __init__(self, user_info: str | None = None) -> None:
        self.schemas: dict[int, str] = {}
        self.answer_with: int | None = None
        self.requests: list[str] = []
        self._user_info = user_info
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def register(self, schema: dict[str, Any]) -> int:
        schema_id = len(self.schemas) + 1
        self.schemas[schema_id] = json.dumps(schema)
        return schema_id

    @contextmanager
    def running(self) -> Iterator[StandInRegistry]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.requests.append(self.path)
                if registry._user_info is not None:
                    expected = "Basic " + base64.b64encode(registry._user_info.encode()).decode()
                    if self.headers.get("Authorization") != expected:
                        return self._send(401, {"error_code": 40101, "message": "Unauthorized"})
                if registry.answer_with is not None:
                    return self._send(registry.answer_with, {"error_code": 50001, "message": "failing on purpose"})
                path = self.path.split("?", 1)[0]
                if path == "/subjects":
                    return self._send(200, [])
                prefix = "/schemas/ids/"
                if path.startswith(prefix) and int(path[len(prefix) :]) in registry.schemas:
                    return self._send(200, {"schema": registry.schemas[int(path[len(prefix) :])]})
                return self._send(404, {"error_code": 40403, "message": "Schema not found"})

            def _send(self, status: int, body: object) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
