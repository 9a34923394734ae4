"""Typed, frozen settings read from the environment.

Every setting has one environment variable; a bad value raises ``ConfigError``
naming that variable and the fix. Secrets are read here and passed on in
memory only: nothing in cdcsync writes them to a file or a log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cdcsync.pipeline.errors import ConfigError
from cdcsync.sink.http_address import ListenAddress, parse_listen_address

LOOPBACK = "127.0.0.1"

# The local stack is a development stack bound to 127.0.0.1. Its roles share
# one password, taken from CDCSYNC_STACK_PASSWORD; without it this well-known
# development value is used, as docker images do with POSTGRES_PASSWORD.
LOCAL_STACK_DEFAULT_PASSWORD = "cdcsync-local-only"  # noqa: S105 - documented dev default


def _int(env: Mapping[str, str], key: str, default: int, *, low: int, high: int, fix: str) -> int:
    """An integer setting in [low, high]; the error names the key and the fix."""
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(key, f"{raw!r} is not an integer", fix) from None
    if not low <= value <= high:
        raise ConfigError(key, f"{value} is out of range", fix)
    return value


def _port(env: Mapping[str, str], key: str, default: int) -> int:
    return _int(
        env, key, default, low=1024, high=65535, fix="set it to an integer from 1024 to 65535 (an unprivileged port)"
    )


def _positive_int(env: Mapping[str, str], key: str, default: int) -> int:
    return _int(env, key, default, low=1, high=2**63 - 1, fix="set it to a positive integer")


def _choice(env: Mapping[str, str], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(key) or default
    if value not in choices:
        raise ConfigError(
            key, f"{value!r} is not one of {', '.join(choices)}", f"set it to one of {', '.join(choices)}"
        )
    return value


@dataclass(frozen=True)
class StackSettings:
    """Where the local stack lives and which loopback ports it binds."""

    home: Path
    postgres_port: int
    kafka_port: int
    kafka_controller_port: int
    connect_port: int
    password: str = field(repr=False)  # a secret: never in a repr or a log line
    postgres_binaries: str  # "auto" | "embedded" | "system"
    host: str = LOOPBACK
    sink_http_port_setting: int | None = None  # CDCSYNC_SINK_HTTP_PORT; see sink_http_port

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackSettings:
        env = os.environ if env is None else env
        home = Path(env.get("CDCSYNC_HOME") or Path.cwd() / ".cdcsync").resolve()
        settings = cls(
            home=home,
            postgres_port=_port(env, "CDCSYNC_PG_PORT", 15432),
            kafka_port=_port(env, "CDCSYNC_KAFKA_PORT", 19092),
            kafka_controller_port=_port(env, "CDCSYNC_KAFKA_CONTROLLER_PORT", 19093),
            connect_port=_port(env, "CDCSYNC_CONNECT_PORT", 18083),
            password=env.get("CDCSYNC_STACK_PASSWORD") or LOCAL_STACK_DEFAULT_PASSWORD,
            postgres_binaries=_choice(env, "CDCSYNC_POSTGRES", "auto", ("auto", "embedded", "system")),
            sink_http_port_setting=_port(env, "CDCSYNC_SINK_HTTP_PORT", 0) or None,
        )
        ports = {
            "CDCSYNC_PG_PORT": settings.postgres_port,
            "CDCSYNC_KAFKA_PORT": settings.kafka_port,
            "CDCSYNC_KAFKA_CONTROLLER_PORT": settings.kafka_controller_port,
            "CDCSYNC_CONNECT_PORT": settings.connect_port,
            "CDCSYNC_SINK_HTTP_PORT": settings.sink_http_port,
        }
        seen: dict[int, str] = {}
        for key, port in ports.items():
            if port in seen:
                raise ConfigError(key, f"port {port} is also {seen[port]}", "give each part of the stack its own port")
            seen[port] = key
        return settings

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def connect_url(self) -> str:
        return f"http://{self.host}:{self.connect_port}"

    @property
    def sink_http_port(self) -> int:
        """The background sink's /metrics port: CDCSYNC_SINK_HTTP_PORT, else Connect's port + 7
        (18090 for the demo stack), so a stack on other ports never collides with it."""
        return self.sink_http_port_setting or self.connect_port + 7

    @property
    def sink_http(self) -> ListenAddress:
        return ListenAddress(self.host, self.sink_http_port)


@dataclass(frozen=True)
class SinkSettings:
    """What the sink daemon consumes and where it writes."""

    bootstrap_servers: str
    calendar_db_url: str = field(repr=False)  # owns the calendar and cdcsync schemas; may hold a password
    group_id: str
    dead_letter_topic: str
    batch_max_messages: int
    batch_max_wait_ms: int
    http: ListenAddress | None = None  # CDCSYNC_SINK_HTTP: /metrics, /livez, /readyz
    ready_max_lag_s: float = 120.0  # CDCSYNC_SINK_READY_MAX_LAG_S: /readyz fails above this lag

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SinkSettings:
        env = os.environ if env is None else env
        bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            raise ConfigError(
                "KAFKA_BOOTSTRAP_SERVERS",
                "not set",
                'export KAFKA_BOOTSTRAP_SERVERS=host:port, or eval "$(cdcsync stack env)"',
            )
        url = env.get("CDCSYNC_SINK_DB_URL")
        if not url:
            raise ConfigError(
                "CDCSYNC_SINK_DB_URL",
                "not set",
                "export CDCSYNC_SINK_DB_URL=postgresql://ROLE@HOST/calendar, with a role owning the calendar schema",
            )
        return cls(
            bootstrap_servers=bootstrap,
            calendar_db_url=url,
            group_id=env.get("CDCSYNC_SINK_GROUP") or "cdcsync-calendar-sink",
            dead_letter_topic=env.get("CDCSYNC_DLQ_TOPIC") or "cdcsync.calendar.dlq",
            batch_max_messages=_positive_int(env, "CDCSYNC_SINK_BATCH_MAX", 5000),
            batch_max_wait_ms=_positive_int(env, "CDCSYNC_SINK_BATCH_WAIT_MS", 200),
            http=_listen_address(env, "CDCSYNC_SINK_HTTP"),
            ready_max_lag_s=_positive_int(env, "CDCSYNC_SINK_READY_MAX_LAG_S", 120),
        )


def _listen_address(env: Mapping[str, str], key: str) -> ListenAddress | None:
    raw = env.get(key)
    if not raw:
        return None
    try:
        return parse_listen_address(raw)
    except ValueError as exc:
        raise ConfigError(
            key, str(exc), "set it to host:port, e.g. 127.0.0.1:18090 (0.0.0.0:8090 in a container)"
        ) from None
