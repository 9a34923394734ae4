"""Where the running system is: environment variables first, else the local stack.

The variables are the ones ``cdcsync stack env`` prints (plus
``CDCSYNC_SINK_DB_URL`` for the sink's own role), so a real deployment sets
them and the local stack needs none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from cdcsync.sink.settings import SinkSettings


@dataclass(frozen=True, repr=False)  # the URLs may hold passwords: no generated repr
class Targets:
    course_db_url: str
    attendance_db_url: str
    assignment_db_url: str
    calendar_db_url: str  # reads the read model
    sink_db_url: str  # owns the calendar and cdcsync schemas
    kafka_bootstrap_servers: str
    connect_url: str

    def __repr__(self) -> str:
        return f"Targets(kafka={self.kafka_bootstrap_servers!r}, connect={self.connect_url!r})"

    @property
    def source_urls(self) -> dict[str, str]:
        return {
            "course": self.course_db_url,
            "attendance": self.attendance_db_url,
            "assignment": self.assignment_db_url,
        }

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None) -> Targets:
        """The environment's targets, and the local stack's for every variable not set."""
        env = os.environ if env is None else env
        return cls.over_local_stack(StackSettings.from_env(env), env)

    @classmethod
    def over_local_stack(cls, settings: StackSettings, env: Mapping[str, str]) -> Targets:
        """The local stack of ``settings``, with whatever ``env`` sets in its place."""
        local = StackEndpoints(settings)
        defaults = {**local.exports(), "CDCSYNC_SINK_DB_URL": local.sink_url}

        def pick(key: str) -> str:
            return env.get(key) or defaults[key]

        return cls(
            course_db_url=pick("COURSE_DB_URL"),
            attendance_db_url=pick("ATTENDANCE_DB_URL"),
            assignment_db_url=pick("ASSIGNMENT_DB_URL"),
            calendar_db_url=pick("CALENDAR_DB_URL"),
            sink_db_url=pick("CDCSYNC_SINK_DB_URL"),
            kafka_bootstrap_servers=pick("KAFKA_BOOTSTRAP_SERVERS"),
            connect_url=pick("CONNECT_URL"),
        )

    def sink_process_env(self) -> dict[str, str]:
        """The environment for a ``cdcsync sink run`` process that writes to these targets (kept in memory)."""
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "CDCSYNC_SINK_DB_URL": self.sink_db_url,
        }

    def sink_settings(self, overrides: Mapping[str, str] | None = None) -> SinkSettings:
        """The sink's settings: ``overrides`` (CLI options), then the environment, then these targets."""
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "CDCSYNC_SINK_DB_URL": self.sink_db_url,
            **(overrides or {}),
        }
        return SinkSettings.from_env(env)


def connector_placeholder_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the connectors' ``${env:VAR}`` placeholders resolve from, as a Connect worker would have it.

    ``env`` (default: the process's) over what the local stack gives its worker, so a
    preflight run against the local stack needs no variables.
    """
    env = os.environ if env is None else env
    return {**StackEndpoints(StackSettings.from_env(env)).connect_worker_env(), **env}
