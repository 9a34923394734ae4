"""Shopify's toxiproxy: the fault suite's network fault proxy, run as a stack process and driven over its HTTP API.

The binary is built from source by ``make toxiproxy`` (pinned in the Makefile), which
exports its path as ``CDCSYNC_TOXIPROXY``. A toxic applies to every connection of
its proxy, the open ones and the new ones, until it is removed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest
import requests

from cdcsync.pipeline.stack.processes import ManagedProcess, wait_until

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO / ".cdcsync" / "tools" / "toxiproxy" / "server"

Stream = Literal["upstream", "downstream"]


def binary() -> Path:
    """The toxiproxy server built by ``make toxiproxy``; the test fails, naming the fix, without it."""
    path = Path(os.environ.get("CDCSYNC_TOXIPROXY") or DEFAULT_BINARY)
    if not path.is_file():
        pytest.fail(f"no toxiproxy server at {path}: run `make toxiproxy` (or the suite through `make test`)")
    return path


class Toxiproxy:
    """The API of one toxiproxy server, whose process lives under ``home`` like the stack's parts."""

    def __init__(self, home: Path, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.process = ManagedProcess("toxiproxy", home)
        self._api = f"http://{host}:{port}"
        self._http = requests.Session()

    def start(self, timeout: float = 30.0) -> None:
        if self.process.running_pid() is None:
            self.process.start([str(binary()), "-host", self.host, "-port", str(self.port)])
        wait_until(self._answers, timeout, f"toxiproxy on {self._api}")

    def stop(self) -> None:
        self.process.stop(timeout=10)
        self._http.close()

    def create(self, name: str, listen_port: int, upstream_port: int) -> None:
        """A proxy from ``host:listen_port`` to ``host:upstream_port``, enabled."""
        body = {"name": name, "listen": f"{self.host}:{listen_port}", "upstream": f"{self.host}:{upstream_port}"}
        self._call("POST", "/proxies", body)

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """Disabling closes every connection of the proxy and refuses new ones until it is enabled again."""
        self._call("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def add_toxic(self, proxy: str, kind: str, stream: Stream, **attributes: int) -> str:
        name = f"{kind}-{stream}-{uuid.uuid4().hex[:8]}"
        body = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes}
        self._call("POST", f"/proxies/{proxy}/toxics", body)
        return name

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    @contextmanager
    def toxic(self, proxy: str, kind: str, streams: tuple[Stream, ...], **attributes: int) -> Iterator[None]:
        """The toxic on each of ``streams`` while the block runs."""
        names = [self.add_toxic(proxy, kind, stream, **attributes) for stream in streams]
        try:
            yield
        finally:
            for name in names:
                self.remove_toxic(proxy, name)

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        self._call("POST", "/reset")

    def _answers(self) -> bool:
        try:
            return self._http.get(f"{self._api}/version", timeout=2).ok
        except requests.ConnectionError:
            return False

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        response = self._http.request(method, f"{self._api}{path}", json=body, timeout=10)
        if not response.ok:
            raise RuntimeError(f"toxiproxy {method} {path}: HTTP {response.status_code} {response.text.strip()}")
