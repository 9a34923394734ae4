"""The sink daemon's settings: typed, frozen, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cdcsync.errors import ConfigError
from cdcsync.settings import int_setting, positive_int_setting


@dataclass(frozen=True)
class SinkSettings:
    """What the sink daemon consumes and where it writes."""

    bootstrap_servers: str
    calendar_db_url: str = field(repr=False)  # owns the calendar and cdcsync schemas; may hold a password
    group_id: str
    dead_letter_topic: str
    dead_letter_retention_ms: int  # -1: kept forever (dlq replay needs the letters)
    batch_max_messages: int
    batch_max_wait_ms: int

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
            batch_max_wait_ms=positive_int_setting(env, "CDCSYNC_SINK_BATCH_WAIT_MS", 200),
        )
