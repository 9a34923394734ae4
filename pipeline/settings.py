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

from cdcsync.debezium.change_format import FORMAT_ENV, ChangeFormat
from cdcsync.errors import ConfigError
from cdcsync.settings import choice_setting, port_setting
from cdcsync.sink.http_address import ListenAddress

LOOPBACK = "127.0.0.1"

# The local stack is a development stack bound to 127.0.0.1. Its roles share
# one password, taken from CDCSYNC_STACK_PASSWORD; without it this well-known
# development value is used, as docker images do with POSTGRES_PASSWORD.
LOCAL_STACK_DEFAULT_PASSWORD = "cdcsync-local-only"  # noqa: S105 - documented dev default

# The format Debezium writes change events in. JSON is the default; "avro" is the
# opt-in that adds the schema registry to the local stack (CDCSYNC_CHANGE_FORMAT).
CHANGE_FORMATS = tuple(f.value for f in ChangeFormat)
# The format the local stack was last brought up in (``<home>/change-format``): a later
# ``cdcsync up`` without --format or CDCSYNC_CHANGE_FORMAT keeps it rather than switching back.
CHANGE_FORMAT_FILE = "change-format"
DEFAULT_REGISTRY_PORT = 18081


def recorded_change_format(home: Path) -> str:
    """The format the stack under ``home`` was last brought up in; JSON for a new stack."""
    try:
        recorded = (home / CHANGE_FORMAT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ChangeFormat.JSON.value
    return recorded if recorded in CHANGE_FORMATS else ChangeFormat.JSON.value


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
    registry_port: int = DEFAULT_REGISTRY_PORT  # CDCSYNC_REGISTRY_PORT
    change_format: str = "json"  # CDCSYNC_CHANGE_FORMAT: "avro" wants the schema registry

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackSettings:
        env = os.environ if env is None else env
        home = Path(env.get("CDCSYNC_HOME") or Path.cwd() / ".cdcsync").resolve()
        settings = cls(
            home=home,
            postgres_port=port_setting(env, "CDCSYNC_PG_PORT", 15432),
            kafka_port=port_setting(env, "CDCSYNC_KAFKA_PORT", 19092),
            kafka_controller_port=port_setting(env, "CDCSYNC_KAFKA_CONTROLLER_PORT", 19093),
            connect_port=port_setting(env, "CDCSYNC_CONNECT_PORT", 18083),
            password=env.get("CDCSYNC_STACK_PASSWORD") or LOCAL_STACK_DEFAULT_PASSWORD,
            postgres_binaries=choice_setting(env, "CDCSYNC_POSTGRES", "auto", ("auto", "embedded", "system")),
            sink_http_port_setting=port_setting(env, "CDCSYNC_SINK_HTTP_PORT", 0) or None,
            registry_port=port_setting(env, "CDCSYNC_REGISTRY_PORT", DEFAULT_REGISTRY_PORT),
            change_format=choice_setting(env, FORMAT_ENV, recorded_change_format(home), CHANGE_FORMATS),
        )
        ports = {
            "CDCSYNC_PG_PORT": settings.postgres_port,
            "CDCSYNC_KAFKA_PORT": settings.kafka_port,
            "CDCSYNC_KAFKA_CONTROLLER_PORT": settings.kafka_controller_port,
            "CDCSYNC_CONNECT_PORT": settings.connect_port,
            "CDCSYNC_SINK_HTTP_PORT": settings.sink_http_port,
            "CDCSYNC_REGISTRY_PORT": settings.registry_port,
        }
        seen: dict[int, str] = {}
        for key, port in ports.items():
            if port in seen:
                raise ConfigError(key, f"port {port} is also {seen[port]}", "give each part of the stack its own port")
            seen[port] = key
        return settings

    @property
    def format(self) -> ChangeFormat:
        return ChangeFormat(self.change_format)

    def record_change_format(self) -> None:
        """Remember the format for the next ``up`` (see ``recorded_change_format``)."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / CHANGE_FORMAT_FILE).write_text(self.change_format + "\n", encoding="utf-8")

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def connect_url(self) -> str:
        return f"http://{self.host}:{self.connect_port}"

    @property
    def registry_data_dir(self) -> Path:
        """The registry's H2 database files: schemas and ids outlive the process (and ``stack down``)."""
        return self.home / "registry" / "data"

    @property
    def registry_wanted(self) -> bool:
        """Whether the stack runs the schema registry: for the Avro change format, and on a stack that
        ever ran it (its data exists), since its topics hold records framed with its ids, whatever
        the format connectors write now."""
        return self.change_format == ChangeFormat.AVRO or self.registry_data_dir.is_dir()

    @property
    def registry_url(self) -> str:
        """The registry's Confluent-compatible API, what Schema Registry clients take as their URL."""
        return f"http://{self.host}:{self.registry_port}/apis/ccompat/v7"

    @property
    def registry_api_url(self) -> str:
        """The registry's native API, what Apicurio's Connect converter takes (``${env:CDCSYNC_REGISTRY_URL}``)."""
        return f"http://{self.host}:{self.registry_port}/apis/registry/v2"

    @property
    def sink_http_port(self) -> int:
        """The background sink's /metrics port: CDCSYNC_SINK_HTTP_PORT, else Connect's port + 7
        (18090 for the demo stack), so a stack on other ports never collides with it."""
        return self.sink_http_port_setting or self.connect_port + 7

    @property
    def sink_http(self) -> ListenAddress:
        return ListenAddress(self.host, self.sink_http_port)
