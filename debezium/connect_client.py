"""A small Kafka Connect REST client.

It owns the mapping from HTTP outcomes to exceptions (``connect_errors``):
unreachable -> ``ConnectUnreachable``, 401/403 -> ``ConnectUnauthorized``, 404 ->
``ConnectorNotFound``, 409 -> ``RebalanceInProgress`` (retried with backoff), a
timeout -> ``ConnectTimeout``, any other error -> ``ConnectRequestFailed``.
Callers never look at status codes.

Secrets: the basic-auth password lives in memory only (no repr); this module
logs methods and paths, never request or response bodies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from cdcsync.debezium.connect_errors import (
    ConnectError,
    ConnectorNotFound,
    ConnectRequestFailed,
    ConnectTimeout,
    ConnectUnauthorized,
    ConnectUnreachable,
    RebalanceInProgress,
    backoff_delays,
    error_for_response,
    is_retryable,
)
from cdcsync.debezium.connector_state import ConnectorInfo, ConnectorState, TaskState

__all__ = [
    "BasicAuth",
    "ConnectClient",
    "ConnectRequestFailed",
    "ConnectTimeout",
    "ConnectUnauthorized",
    "ConnectUnreachable",
    "ConnectorInfo",
    "ConnectorNotFound",
    "ConnectorPlugin",
    "ConnectorState",
    "RebalanceInProgress",
    "TaskState",
    "TlsOptions",
    "backoff_delays",
    "error_for_response",
    "is_retryable",
    "validation_errors",
]

logger = logging.getLogger(__name__)

_Params = Mapping[str, str] | list[tuple[str, str]] | None  # a list repeats a key: expand=info&expand=status


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str = field(repr=False)  # a secret: never in a repr, a message or a log line


@dataclass(frozen=True)
class TlsOptions:
    """How to trust the server (``ca_cert``, or not at all with ``insecure``) and who we are (client cert)."""

    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    insecure: bool = False

    @property
    def verify(self) -> bool | str:
        if self.insecure:
            return False
        return str(self.ca_cert) if self.ca_cert is not None else True

    @property
    def cert(self) -> tuple[str, str] | str | None:
        if self.client_cert is None:
            return None
        return str(self.client_cert) if self.client_key is None else (str(self.client_cert), str(self.client_key))


def validation_errors(body: Any) -> dict[str, tuple[str, ...]]:
    """The properties with errors in a validate answer (``configs[].value.{name, errors}``). Pure."""
    errors: dict[str, tuple[str, ...]] = {}
    for entry in (body or {}).get("configs") or ():
        value = entry.get("value") or {}
        messages = tuple(str(m) for m in value.get("errors") or ())
        if messages:
            errors[str(value.get("name"))] = messages
    return errors


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
        auth: BasicAuth | None = None,
        tls: TlsOptions | None = None,
        origin: str | None = None,
        timeout: float = 10.0,
        attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.tls = tls or TlsOptions()
        self.origin = origin  # where base_url came from (an option, a variable, a context), for messages
        self.timeout = timeout
        self.attempts = attempts
        self._sleep = sleep
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        return f"ConnectClient({self.base_url!r}, user={self.auth.username if self.auth else None!r})"

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> ConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Connectors: config

    def get_connector_config(self, name: str) -> dict[str, str]:
        """The stored config, placeholders unresolved. Raises ``ConnectorNotFound``."""
        body = self._request("GET", f"/connectors/{_segment(name)}/config")
        return {str(k): str(v) for k, v in dict(body).items()}

    def put_connector_config(self, name: str, config: Mapping[str, str]) -> bool:
        """Create or update (idempotent). True when the connector was created."""
        status, _ = self._request_with_status("PUT", f"/connectors/{_segment(name)}/config", dict(config))
        return status == 201

    def validate_connector_config(self, name: str, config: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
        """Ask the plugin to validate ``config`` without applying it: the errors per property.

        Debezium's validation also tries the database connection. Only error texts are
        returned, never values (the worker has resolved the placeholders in them).
        """
        plugin = _segment(config["connector.class"])
        body = self._request("PUT", f"/connector-plugins/{plugin}/config/validate", {**config, "name": name})
        return validation_errors(body)

    def delete_connector(self, name: str) -> None:
        """Stop and remove the connector. Its offsets and replication slot stay. Raises ``ConnectorNotFound``."""
        self._request("DELETE", f"/connectors/{_segment(name)}")

    # Connectors: state

    def connector_status(self, name: str) -> ConnectorState:
        return ConnectorState.from_json(self._request("GET", f"/connectors/{_segment(name)}/status"))

    def connector_info(self, name: str) -> ConnectorInfo:
        """Config, type and status of one connector (two requests); state UNKNOWN while none is reported."""
        info = self._request("GET", f"/connectors/{_segment(name)}")
        try:
            status = self._request("GET", f"/connectors/{_segment(name)}/status")
        except ConnectorNotFound:  # created a moment ago: no status yet
            status = {"name": name}
        return ConnectorInfo.from_json(info, status)

    def list_connectors(self) -> dict[str, ConnectorState]:
        """Every connector with its status, in one request (``?expand=status``)."""
        body = self._request("GET", "/connectors", params={"expand": "status"})
        return {name: ConnectorState.from_json(entry.get("status") or {"name": name}) for name, entry in body.items()}

    def list_connector_infos(self) -> dict[str, ConnectorInfo]:
        """Every connector with its config, type and status, in one request."""
        body = self._request("GET", "/connectors", params=[("expand", "info"), ("expand", "status")])
        return {
            name: ConnectorInfo.from_json(entry.get("info") or {"name": name}, entry.get("status") or {"name": name})
            for name, entry in body.items()
        }

    def connector_topics(self, name: str) -> tuple[str, ...]:
        """The topics the connector has written to since it was created or its topics were reset."""
        body = self._request("GET", f"/connectors/{_segment(name)}/topics")
        return tuple(sorted(str(t) for t in (body.get(name) or {}).get("topics") or ()))

    # Connectors: lifecycle (each asynchronous: poll ``connector_status``)

    def pause_connector(self, name: str) -> None:
        self._request("PUT", f"/connectors/{_segment(name)}/pause")

    def resume_connector(self, name: str) -> None:
        """Resume a PAUSED or STOPPED connector."""
        self._request("PUT", f"/connectors/{_segment(name)}/resume")

    def stop_connector(self, name: str) -> None:
        """Stop the connector and shut its tasks down, keeping its config (Kafka 3.5+)."""
        self._request("PUT", f"/connectors/{_segment(name)}/stop")

    def restart_connector(self, name: str, *, include_tasks: bool = False, only_failed: bool = False) -> None:
        """Restart the connector, and with ``include_tasks`` its tasks; ``only_failed`` restarts only FAILED ones."""
        params = {"includeTasks": str(include_tasks).lower(), "onlyFailed": str(only_failed).lower()}
        self._request("POST", f"/connectors/{_segment(name)}/restart", params=params)

    def restart_failed(self, name: str) -> None:
        """Restart the connector and its tasks that are FAILED (Kafka 3.0+ restart API)."""
        self.restart_connector(name, include_tasks=True, only_failed=True)

    # Offsets (Kafka 3.6+): read any time, reset only when STOPPED

    def get_offsets(self, name: str) -> list[dict[str, Any]]:
        """``[{"partition": {...}, "offset": {...}}]``: for Debezium PostgreSQL, the last LSN it recorded."""
        body = self._request("GET", f"/connectors/{_segment(name)}/offsets")
        return list(body.get("offsets") or ())

    def reset_offsets(self, name: str) -> str:
        """Delete the connector's offsets (it must be STOPPED); the server's message."""
        body = self._request("DELETE", f"/connectors/{_segment(name)}/offsets")
        return str((body or {}).get("message") or "")

    # Plugins

    def plugins(self) -> tuple[ConnectorPlugin, ...]:
        body = self._request("GET", "/connector-plugins")
        return tuple(
            ConnectorPlugin(class_name=str(p.get("class")), type=str(p.get("type")), version=str(p.get("version")))
            for p in body
        )

    # Transport

    def _request(self, method: str, path: str, json_body: object = None, params: _Params = None) -> Any:
        return self._request_with_status(method, path, json_body, params)[1]

    def _request_with_status(
        self, method: str, path: str, json_body: object = None, params: _Params = None
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

    def _send(self, method: str, path: str, json_body: object, params: _Params) -> tuple[int, Any]:
        url = self.base_url + path
        if self._session is None:
            self._session = requests.Session()
        logger.debug("%s %s", method, path)
        try:
            # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override session.verify.
            response = self._session.request(
                method,
                url,
                json=json_body,
                params=params,
                timeout=self.timeout,
                auth=(self.auth.username, self.auth.password) if self.auth else None,
                verify=self.tls.verify,
                cert=self.tls.cert,
            )
        except requests.exceptions.SSLError:
            reason = "TLS handshake failed: check --ca-cert or the client cert"
            raise ConnectUnreachable(self.base_url, reason, self.origin) from None
        except requests.exceptions.ConnectTimeout:
            raise ConnectTimeout.request(method, url, self.timeout) from None
        except requests.exceptions.ConnectionError:
            raise ConnectUnreachable(self.base_url, origin=self.origin) from None
        except requests.exceptions.Timeout:
            raise ConnectTimeout.request(method, url, self.timeout) from None
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
