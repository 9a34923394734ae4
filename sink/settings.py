"""The sink daemon's settings: typed, frozen, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cdcsync.errors import ConfigError
from cdcsync.settings import int_setting, positive_int_setting
from cdcsync.sink.http_address import ListenAddress, parse_listen_address


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
