"""What can go wrong talking to Kafka Connect, as exceptions that carry their exit code.

``error_for_response`` is the one mapping from an HTTP answer to an exception;
the transport (``connect_client``) maps connection failures. The exit codes are
documented in one table, in ``pipeline.errors``.

Messages name the Connect URL (never with credentials: a URL holding them is
refused when the target is resolved) and the server's own message, never a
request body.
"""

from __future__ import annotations

from urllib.parse import unquote

from cdcsync.errors import CdcsyncError

LOCAL_STACK = "the local stack"  # the origin of a URL nobody gave


class ConnectError(CdcsyncError):
    """The Kafka Connect REST API refused a request; the subclasses below say how."""

    exit_code = 4


class ConnectUnreachable(ConnectError):
    """No TCP connection (refused, unknown host) or no TLS session."""

    exit_code = 5

    def __init__(self, url: str, reason: str = "", origin: str | None = None) -> None:
        detail = f" ({reason})" if reason else ""
        hint = "is it running? (cdcsync stack up)" if origin in (None, LOCAL_STACK) else f"is {origin} right?"
        super().__init__(f"Kafka Connect not reachable at {url}{detail}: {hint}")
        self.url = url


class ConnectUnauthorized(ConnectError):
    """401 or 403: the REST API wants other credentials."""

    exit_code = 6

    def __init__(self, method: str, path: str, status: int) -> None:
        verdict = "rejected the credentials" if status == 401 else "does not allow this user"
        super().__init__(
            f"Kafka Connect {verdict} for {method} {path} (HTTP {status}). "
            "Fix: --username / CONNECT_USERNAME, and the password in CONNECT_PASSWORD "
            "(or the variable the context's password-env names)"
        )
        self.status = status


class ConnectorNotFound(ConnectError):
    """404: no such connector (or plugin)."""

    exit_code = 7

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found in Kafka Connect")
        self.what = what


class RebalanceInProgress(ConnectError):
    """409: the workers are rebalancing; the same request succeeds a little later (retried).

    (POST /connectors also answers 409 for an existing name; this client only PUTs.)
    """

    exit_code = 8

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Kafka Connect is rebalancing and refused {method} {path}; try again shortly")


class ConnectorStateConflict(ConnectError):
    """The connector is not in the state a command needs (say, offsets of a running connector)."""

    exit_code = 8

    def __init__(self, name: str, state: str, needed: str, fix: str) -> None:
        super().__init__(f"connector {name!r} is {state}, not {needed}. Fix: {fix}")
        self.name = name
        self.state = state


class ConnectorConfigInvalid(ConnectError):
    """The plugin rejects a config: validation errors (dry-run) or 400 on PUT .../config."""

    exit_code = 9


class ConnectTimeout(ConnectError):
    """No answer within the request timeout, or a state not reached within --timeout."""

    exit_code = 10

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @classmethod
    def request(cls, method: str, url: str, timeout: float) -> ConnectTimeout:
        return cls(f"Kafka Connect did not answer {method} {url} within {timeout:g}s")


class ConnectorFailed(ConnectError):
    """A connector or one of its tasks is FAILED while a command waits for it to run."""

    exit_code = 11


class ConnectRequestFailed(ConnectError):
    """Any other refusal (HTTP 4xx/5xx): exit code 4, with the server's message."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"Kafka Connect refused {method} {path} with HTTP {status}: {message}")
        self.method = method
        self.status = status


def subject(path: str) -> str:
    """What a REST path is about, for messages: ``connector 'x'``, ``plugin 'y'`` or the path. Pure."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "connectors":
        return f"connector {unquote(parts[1])!r}"
    if len(parts) >= 2 and parts[0] == "connector-plugins":
        return f"plugin {unquote(parts[1])!r}"
    return path


def error_for_response(method: str, path: str, status: int, message: str) -> ConnectError | None:
    """The exception for an HTTP answer, or ``None`` when it is a success. Pure."""
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        return ConnectUnauthorized(method, path, status)
    if status == 404:
        return ConnectorNotFound(subject(path))
    if status == 409:
        return RebalanceInProgress(method, path)
    if status == 400 and method == "PUT" and path.endswith("/config"):
        return ConnectorConfigInvalid(f"Kafka Connect rejects the config of {subject(path)}: {message}")
    return ConnectRequestFailed(method, path, status, message or "(no message)")


def is_retryable(error: ConnectError) -> bool:
    """Only a rebalance is worth retrying: every other answer would repeat itself.

    Connect says "rebalancing" with 409 on writes, but with 500 on some reads:
    GET /connectors/{name} answers a pending rebalance (``RebalanceNeededException``)
    through a path that does not map it to 409. A GET is safe to repeat, so a 500
    on a GET is retried too, without reading the message.
    """
    if isinstance(error, RebalanceInProgress):
        return True
    return isinstance(error, ConnectRequestFailed) and error.method == "GET" and error.status == 500


def backoff_delays(attempts: int, first: float = 0.5, cap: float = 4.0) -> list[float]:
    """The waits between ``attempts`` tries: doubling from ``first``, at most ``cap``."""
    return [min(cap, first * 2**i) for i in range(max(0, attempts - 1))]
