"""The sink's HTTP listen address (``CDCSYNC_SINK_HTTP``): a small value settings can parse without the server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Where a client on this machine reaches it (a wildcard host means loopback)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104 - compared, not bound
        return f"http://{host}:{self.port}"


def parse_listen_address(raw: str) -> ListenAddress:
    """``host:port`` (``0.0.0.0:8090`` in a container, ``127.0.0.1:18090`` locally). ValueError says what is wrong."""
    host, separator, port = raw.strip().rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"{raw!r} is not host:port")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} is out of range")
    return ListenAddress(host.strip("[]"), number)
