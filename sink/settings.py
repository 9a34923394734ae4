"""The sink daemon's settings: typed, frozen, read from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from cdcsync.errors import ConfigError
from cdcsync.settings import int_setting, positive_int_setting
from cdcsync.sink.http_address import ListenAddress, parse_listen_address
from cdcsync.sink.source_tables import SERVICES, SourceTable, routing

# Kafka topic name characters (a connector's topic.prefix begins every change topic's name).
_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9._-]{1,200}")


@dataclass(frozen=True)
class SchemaRegistrySettings:
    """Where the sink reads the schemas of Avro change events (Confluent-compatible API)."""

    url: str  # SCHEMA_REGISTRY_URL, without credentials
    basic_auth_user_info: str | None = field(default=None, repr=False)  # SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SchemaRegistrySettings | None:
        """None when SCHEMA_REGISTRY_URL is unset: the sink then reads JSON only, and stops at an Avro message."""
        url = env.get("SCHEMA_REGISTRY_URL")
        user_info = env.get("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") or None
        if not url:
            if user_info is not None:
                raise ConfigError(
                    "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                    "set without SCHEMA_REGISTRY_URL",
                    "set SCHEMA_REGISTRY_URL to the registry these credentials are for, or unset both",
                )
            return None
        try:
            parts = urlsplit(url)
            has_credentials = parts.username is not None or parts.password is not None
        except ValueError:
            parts, has_credentials = None, False
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                "SCHEMA_REGISTRY_URL",
                "not an http(s) URL with a host",
                "set it to the registry's Confluent-compatible API, e.g. http://HOST:8081/apis/ccompat/v7",
            )
        if has_credentials:
            raise ConfigError(
                "SCHEMA_REGISTRY_URL",
                "carries credentials",
                "remove them from the URL and export SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=user:password",
            )
        if user_info is not None and ":" not in user_info:
            raise ConfigError(
                "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                "not of the form user:password",
                "export SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=user:password",
            )
        return cls(url=url.rstrip("/"), basic_auth_user_info=user_info)


@dataclass(frozen=True)
class SinkSettings:
    """What the sink daemon consumes and where it writes."""

    bootstrap_servers: str
    calendar_db_url: str = field(repr=False)  # owns the calendar and cdcsync schemas; may hold a password
    group_id: str
    dead_letter_topic: str
    dead_letter_retention_ms: int  # -1: kept forever (dlq replay needs the letters)
    batch_max_messages: int  # CDCSYNC_SINK_BATCH_MAX: a batch closes at this many messages
    batch_max_wait_ms: int  # CDCSYNC_SINK_BATCH_WAIT_MS: ... or this long after its first message
    linger_ms: int = 2  # CDCSYNC_SINK_LINGER_MS: under load, how long one top-up of a batch waits
    http: ListenAddress | None = None  # CDCSYNC_SINK_HTTP: /metrics, /livez, /readyz
    ready_max_lag_s: float = 120.0  # CDCSYNC_SINK_READY_MAX_LAG_S: /readyz fails above this lag
    schema_registry: SchemaRegistrySettings | None = None  # for Avro change events; None: JSON only
    # service -> its connector's topic.prefix (CDCSYNC_TOPIC_PREFIXES); a service not named: its own name
    topic_prefixes: Mapping[str, str] = field(default_factory=dict)

    def routing(self) -> dict[str, SourceTable]:
        """The change topics to consume, each with the source table it carries."""
        return routing(self.topic_prefixes)

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
            dead_letter_retention_ms=int_setting(
                env,
                "CDCSYNC_DLQ_RETENTION_MS",
                -1,
                low=-1,
                high=2**63 - 1,
                fix="set it to -1 (keep dead letters forever) or a number of milliseconds",
            ),
            batch_max_messages=positive_int_setting(env, "CDCSYNC_SINK_BATCH_MAX", 5000),
            batch_max_wait_ms=positive_int_setting(env, "CDCSYNC_SINK_BATCH_WAIT_MS", 20),
            linger_ms=positive_int_setting(env, "CDCSYNC_SINK_LINGER_MS", 2),
            http=_listen_address(env, "CDCSYNC_SINK_HTTP"),
            ready_max_lag_s=positive_int_setting(env, "CDCSYNC_SINK_READY_MAX_LAG_S", 120),
            schema_registry=SchemaRegistrySettings.from_env(env),
            topic_prefixes=_topic_prefixes(env, "CDCSYNC_TOPIC_PREFIXES"),
        )


def _topic_prefixes(env: Mapping[str, str], key: str) -> Mapping[str, str]:
    """``course=p1,attendance=p2``: the ``topic.prefix`` of each service's connector, when not the service's name."""
    raw = env.get(key, "").strip()
    prefixes: dict[str, str] = {}
    fix = f"set it to service=prefix pairs separated by commas, services: {', '.join(SERVICES)}"
    for pair in filter(None, (part.strip() for part in raw.split(","))):
        service, _, prefix = (text.strip() for text in pair.partition("="))
        if service not in SERVICES:
            raise ConfigError(key, f"{service!r} is not a service", fix)
        if not _TOPIC_PREFIX.fullmatch(prefix):
            raise ConfigError(key, f"{prefix!r} is not a topic prefix for {service}", fix)
        if service in prefixes:
            raise ConfigError(key, f"{service} is named twice", fix)
        prefixes[service] = prefix
    return MappingProxyType(prefixes)


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
