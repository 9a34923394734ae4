"""A small Kafka Connect REST client.

It owns the mapping from HTTP outcomes to exceptions (``error_for_response``):
unreachable -> ``ConnectUnreachable``, 404 -> ``ConnectorNotFound``, 409 ->
``RebalanceInProgress`` (retried with backoff), a timeout -> ``ConnectTimeout``,
any other error -> ``ConnectRequestFailed``. Callers never look at status codes.

Secrets: connector configs hold ``${env:...}`` placeholders only, and this
module logs methods and paths, never request or response bodies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from pipeline.errors import ConnectError

logger = logging.getLogger(__name__)


class ConnectUnreachable(ConnectError):
    def __init__(self, url: str) -> None:
        super().__init__(f"Kafka Connect not reachable at {url}: is it running? (cdcsync stack up)")
        self.url = url


class ConnectTimeout(ConnectError):
    def __init__(self, method: str, url: str, timeout: float) -> None:
        super().__init__(f"Kafka Connect did not answer {method} {url} within {timeout:g}s")


class ConnectorNotFound(ConnectError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found in Kafka Connect")
        self.what = what


class RebalanceInProgress(ConnectError):
    """409: the workers are rebalancing; the same request succeeds a little later.

    (POST /connectors also answers 409 for an existing name; this client only PUTs.)
    """

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Kafka Connect is rebalancing and refused {method} {path}; try again shortly")


class ConnectRequestFailed(ConnectError):
    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"Kafka Connect refused {method} {path} with HTTP {status}: {message}")
        self.status = status


def error_for_response(method: str, path: str, status: int, message: str) -> ConnectError | None:
    """The exception for an HTTP answer, or ``None`` when it is a success. Pure."""
    if 200 <= status < 300:
        return None
    if status == 404:
        return ConnectorNotFound(path)
    if status == 409:
        return RebalanceInProgress(method, path)
    return ConnectRequestFailed(method, path, status, message or "(no message)")


def validation_errors(body: Any) -> dict[str, tuple[str, ...]]:
    """The properties with errors in a validate answer (``configs[].value.{name, errors}``). Pure."""
    errors: dict[str, tuple[str, ...]] = {}
    for entry in (body or {}).get("configs") or ():
        value = entry.get("value") or {}
        messages = tuple(str(m) for m in value.get("errors") or ())
        if messages:
            errors[str(value.get("name"))] = messages
    return errors


def is_retryable(error: ConnectError) -> bool:
    """Only a rebalance is worth retrying: every other answer would repeat itself."""
    return isinstance(error, RebalanceInProgress)


def backoff_delays(attempts: int, first: float = 0.5, cap: float = 4.0) -> list[float]:
    """The waits between ``attempts`` tries: doubling from ``first``, at most ``cap``."""
    return [min(cap, first * 2**i) for i in range(max(0, attempts - 1))]


@dataclass(frozen=True)
class TaskState:
    id: int
    state: str
    worker_id: str
    trace: str | None = None


@dataclass(frozen=True)
class ConnectorState:
    """A connector's status as the REST API reports it (GET /connectors/{name}/status)."""

    name: str
    state: str
    worker_id: str
    tasks: tuple[TaskState, ...]
    trace: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "RUNNING" and bool(self.tasks) and all(t.state == "RUNNING" for t in self.tasks)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ConnectorState:
        connector = document.get("connector") or {}
        return cls(
            name=str(document.get("name", "")),
            state=str(connector.get("state", "UNKNOWN")),
            worker_id=str(connector.get("worker_id", "")),
            trace=connector.get("trace"),
            tasks=tuple(
                TaskState(
                    id=int(t.get("id", -1)),
                    state=str(t.get("state", "UNKNOWN")),
                    worker_id=str(t.get("worker_id", "")),
                    trace=t.get("trace"),
                )
                for t in document.get("tasks") or ()
            ),
        )


@dataclass(frozen=True)
class ConnectorPlugin:
    class_name: str
    type: str
    version: str


class ConnectClient:
    """Kafka Connect REST API at ``base_url``. Creating one makes no network call."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self._sleep = sleep
        self._session: requests.Session | None = None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> ConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_connector_config(self, name: str) -> dict[str, str]:
        """The stored config, placeholders unresolved. Raises ``ConnectorNotFound``."""
        body = self._request("GET", f"/connectors/{_segment(name)}/config")
        return {str(k): str(v) for k, v in dict(body).items()}

    def put_connector_config(self, name: str, config: Mapping[str, str]) -> bool:
        """Create or update (idempotent). True when the connector was created."""
        status, _ = self._request_with_status("PUT", f"/connectors/{_segment(name)}/config", dict(config))
        return status == 201

    def delete_connector(self, name: str) -> None:
        """Stop and remove the connector. Its offsets and replication slot stay. Raises ``ConnectorNotFound``."""
        self._request("DELETE", f"/connectors/{_segment(name)}")

    def validate_connector_config(self, name: str, config: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
        """Ask the plugin to validate ``config`` without applying it: the errors per property.

        Debezium's validation also tries the database connection. Only error texts are
        returned, never values (the worker has resolved the placeholders in them).
        """
        plugin = _segment(config["connector.class"])
        body = self._request("PUT", f"/connector-plugins/{plugin}/config/validate", {**config, "name": name})
        return validation_errors(body)

    def pause_connector(self, name: str) -> None:
        """Ask the connector and its tasks to pause (asynchronous: poll ``connector_status``)."""
        self._request("PUT", f"/connectors/{_segment(name)}/pause")

    def resume_connector(self, name: str) -> None:
        """Ask a paused connector to resume (asynchronous: poll ``connector_status``)."""
        self._request("PUT", f"/connectors/{_segment(name)}/resume")

    def restart_failed(self, name: str) -> None:
        """Restart the connector and its tasks that are FAILED (Kafka 3.0+ restart API)."""
        self._request(
            "POST", f"/connectors/{_segment(name)}/restart", params={"includeTasks": "true", "onlyFailed": "true"}
        )

    def connector_status(self, name: str) -> ConnectorState:
        return ConnectorState.from_json(self._request("GET", f"/connectors/{_segment(name)}/status"))

    def list_connectors(self) -> dict[str, ConnectorState]:
        """Every connector with its status, in one request (``?expand=status``)."""
        body = self._request("GET", "/connectors", params={"expand": "status"})
        return {name: ConnectorState.from_json(entry.get("status") or {"name": name}) for name, entry in body.items()}

    def plugins(self) -> tuple[ConnectorPlugin, ...]:
        body = self._request("GET", "/connector-plugins")
        return tuple(
            ConnectorPlugin(class_name=str(p.get("class")), type=str(p.get("type")), version=str(p.get("version")))
            for p in body
        )

    def _request(
        self, method: str, path: str, json_body: object = None, params: Mapping[str, str] | None = None
    ) -> Any:
        return self._request_with_status(method, path, json_body, params)[1]

    def _request_with_status(
        self, method: str, path: str, json_body: object = None, params: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        delays = iter(backoff_delays(self.attempts))
        while True:
            try:
                return self._send(method, path, json_body, params)
            except ConnectError as exc:
                delay = next(delays, None)
                if not is_retryable(exc) or delay is None:
                    raise
                logger.info("%s %s: %s; retrying in %.1fs", method, path, exc, delay)
                self._sleep(delay)

    def _send(self, method: str, path: str, json_body: object, params: Mapping[str, str] | None) -> tuple[int, Any]:
        url = self.base_url + path
        if self._session is None:
            self._session = requests.Session()
        logger.debug("%s %s", method, path)
        try:
            response = self._session.request(method, url, json=json_body, params=params, timeout=self.timeout)
        except requests.exceptions.ConnectionError as exc:
            if isinstance(exc, requests.exceptions.ConnectTimeout):
                raise ConnectTimeout(method, url, self.timeout) from None
            raise ConnectUnreachable(self.base_url) from None
        except requests.exceptions.Timeout:
            raise ConnectTimeout(method, url, self.timeout) from None
        body = _json_or_none(response)
        error = error_for_response(method, path, response.status_code, _error_message(body, response))
        if error is not None:
            raise error
        return response.status_code, body


def _segment(name: str) -> str:
    return quote(name, safe="")


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _error_message(body: Any, response: requests.Response) -> str:
    """Connect errors are ``{"error_code": n, "message": "..."}``; keep only the message."""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.reason or ""
