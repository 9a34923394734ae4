"""Where a command works: the systems named by the environment, or the local stack. Nothing in between.

Two profiles (``cdcsync --profile``, ``CDCSYNC_PROFILE``; ``--local`` is ``--profile local``):

- ``env``, the default: every address and credential comes from the variables below
  (the ones ``cdcsync stack env`` prints, plus ``CDCSYNC_SINK_DB_URL`` and the signal
  URLs), or from a command-line option. A missing one is a ``ConfigError`` naming the
  variable and the fix; nothing falls back to the local stack.
- ``local``: the local stack under ``CDCSYNC_HOME`` (its ports, its roles, its
  password). The target variables of the environment are ignored, and the
  ``target:`` line says so; a command-line option still wins.

``cdcsync up``, ``down``, ``demo`` and the ``stack`` commands always use the local stack.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg
from psycopg.conninfo import conninfo_to_dict

from cdcsync.debezium.change_format import REGISTRY_URL_PLACEHOLDER_VARIABLE
from cdcsync.debezium.record_values import SCHEMA_REGISTRY_URL_ENV
from cdcsync.errors import ConfigError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import SERVICE_DATABASES, StackEndpoints
from cdcsync.sink.settings import SinkSettings

PROFILE_ENV = "CDCSYNC_PROFILE"


class Profile(StrEnum):
    ENV = "env"
    LOCAL = "local"


# Every target variable, with what a value looks like (for the fix in a ConfigError).
TARGET_VARIABLES: dict[str, str] = {
    "COURSE_DB_URL": "postgresql://ROLE@HOST:5432/course (a role that reads the course tables)",
    "ATTENDANCE_DB_URL": "postgresql://ROLE@HOST:5432/attendance (a role that reads its tables)",
    "ASSIGNMENT_DB_URL": "postgresql://ROLE@HOST:5432/assignment (a role that reads its tables)",
    "CALENDAR_DB_URL": "postgresql://ROLE@HOST:5432/calendar (a role that reads calendar.calendar_entries)",
    "CDCSYNC_SINK_DB_URL": "postgresql://ROLE@HOST:5432/calendar (the role owning the calendar schema)",
    "KAFKA_BOOTSTRAP_SERVERS": "HOST:9092[,HOST:9092]",
    "CONNECT_URL": "http://HOST:8083 (or --connect-url, or a context: cdcsync connectors context set)",
    **{
        f"CDCSYNC_{service.upper()}_SIGNAL_DB_URL": f"postgresql://ROLE@HOST:5432/{service}"
        " (a role with INSERT on cdcsync_signal.debezium_signal)"
        for service in SERVICE_DATABASES
    },
    # Optional: only Avro change events need it (the sink, and the notification readers in debezium/).
    SCHEMA_REGISTRY_URL_ENV: "http://HOST:8080/apis/ccompat/v7 (the registry's Confluent-compatible API)",
}
# The shipped connectors' ${env:...} placeholders, as the Connect worker has them (sources check, status).
PLACEHOLDER_VARIABLES = {
    "CDCSYNC_PG_HOST": "HOST (the source databases' host, as the Connect worker reaches it)",
    "CDCSYNC_PG_PORT": "5432",
    "CDCSYNC_DEBEZIUM_USER": "ROLE (the connectors' replication role)",
    "CDCSYNC_DEBEZIUM_PASSWORD": "PASSWORD (that role's)",
    REGISTRY_URL_PLACEHOLDER_VARIABLE: "http://HOST:8080/apis/registry/v2 (Avro connectors: the registry's native API)",
}
LOCAL_HINT = "or point the command at the local stack: cdcsync --local ... (CDCSYNC_PROFILE=local)"


def signal_variable(database: str) -> str:
    return f"CDCSYNC_{database.upper()}_SIGNAL_DB_URL"


def missing_setting(keys: Iterable[str]) -> ConfigError:
    """The error for unset variables: names them all, and how to set each."""
    keys = list(keys)
    known = {**TARGET_VARIABLES, **PLACEHOLDER_VARIABLES}
    examples = "; ".join(f"export {key}={known.get(key, '...')}" for key in keys)
    return ConfigError(", ".join(keys), "not set", f"{examples}; {LOCAL_HINT}")


def redacted(value: str) -> str:
    """A URL or conninfo as ``user@host:port/dbname``, without its password; other values as they are."""
    if "://" not in value and "=" not in value:
        return value
    try:
        parts = conninfo_to_dict(value)
    except psycopg.ProgrammingError:  # not a libpq string (an http URL): drop any user:password@
        scheme, _, rest = value.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}" if rest else value
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


@dataclass(frozen=True, repr=False)  # the values may hold passwords: no generated repr
class Targets:
    """The target variables' values, and where they came from (for the ``target:`` line)."""

    values: Mapping[str, str]
    local: StackSettings | None = None  # the local stack, when that is the target
    options: Mapping[str, str] = field(default_factory=dict)  # variable -> the command-line option that set it

    def __repr__(self) -> str:
        return f"Targets({self.describe(('KAFKA_BOOTSTRAP_SERVERS', 'CONNECT_URL'))})"

    @classmethod
    def local_stack(cls, settings: StackSettings) -> Targets:
        endpoints = StackEndpoints(settings)
        values = {
            **endpoints.exports(),
            "CDCSYNC_SINK_DB_URL": endpoints.sink_url,
            **{signal_variable(db): endpoints.admin_url(db) for db in SERVICE_DATABASES},
        }
        if settings.registry_wanted:
            values[SCHEMA_REGISTRY_URL_ENV] = settings.registry_url
        return cls(values, settings)

    @classmethod
    def environment(cls, env: Mapping[str, str] | None = None) -> Targets:
        return cls(dict(os.environ if env is None else env))

    @classmethod
    def for_profile(cls, profile: Profile, env: Mapping[str, str] | None = None) -> Targets:
        env = os.environ if env is None else env
        return cls.local_stack(StackSettings.from_env(env)) if profile is Profile.LOCAL else cls.environment(env)

    @classmethod
    def explicit(cls, **values: str) -> Targets:
        """Targets given in code (tests' own pipelines): variable names as keyword arguments."""
        return cls(values)

    def with_values(self, **values: str) -> Targets:
        """These targets with some variables replaced (tests point a sink at a database of their own)."""
        return Targets({**self.values, **values}, self.local, self.options)

    def with_options(self, given: Mapping[str, tuple[str, str | None]]) -> Targets:
        """These targets with command-line values: variable -> (option name, value or None)."""
        chosen = {key: (option, value) for key, (option, value) in given.items() if value}
        if not chosen:
            return self
        values = {**self.values, **{key: value for key, (_, value) in chosen.items()}}
        return Targets(values, self.local, {**self.options, **{key: option for key, (option, _) in chosen.items()}})

    def get(self, key: str) -> str:
        value = self.values.get(key)
        if not value:
            raise missing_setting([key])
        return value

    def require(self, keys: Iterable[str]) -> Targets:
        """Self, once every one of ``keys`` is set; else a ConfigError naming all that are not."""
        missing = [key for key in keys if not self.values.get(key)]
        if missing:
            raise missing_setting(missing)
        return self

    def describe(self, keys: Iterable[str]) -> str:
        """Which target, for the one ``target:`` line a command prints: never a password."""
        keys = list(keys)
        if self.local is not None:
            chosen = [f"{self.options[key]}={redacted(self.values[key])}" for key in keys if key in self.options]
            ignored = sorted(k for k in TARGET_VARIABLES if os.environ.get(k) and k not in self.options)
            text = f"local stack ({self.local.home})" + (f" with {', '.join(chosen)}" if chosen else "")
            return text + (f"; ignoring {', '.join(ignored)} from the environment" if ignored else "")
        shown = [f"{self.options.get(key, key)}={redacted(self.values[key])}" for key in keys if self.values.get(key)]
        return f"environment ({', '.join(shown) or 'nothing set'})"

    @property
    def course_db_url(self) -> str:
        return self.get("COURSE_DB_URL")

    @property
    def attendance_db_url(self) -> str:
        return self.get("ATTENDANCE_DB_URL")

    @property
    def assignment_db_url(self) -> str:
        return self.get("ASSIGNMENT_DB_URL")

    @property
    def calendar_db_url(self) -> str:
        """Reads the read model."""
        return self.get("CALENDAR_DB_URL")

    @property
    def sink_db_url(self) -> str:
        """Owns the calendar and cdcsync schemas."""
        return self.get("CDCSYNC_SINK_DB_URL")

    @property
    def kafka_bootstrap_servers(self) -> str:
        return self.get("KAFKA_BOOTSTRAP_SERVERS")

    @property
    def connect_url(self) -> str:
        return self.get("CONNECT_URL")

    @property
    def schema_registry_url(self) -> str | None:
        """The registry's Confluent-compatible API, when set: optional, JSON change events need none."""
        return self.values.get(SCHEMA_REGISTRY_URL_ENV) or None

    @property
    def source_urls(self) -> dict[str, str]:
        return {
            "course": self.course_db_url,
            "attendance": self.attendance_db_url,
            "assignment": self.assignment_db_url,
        }

    def signal_url(self, database: str) -> str:
        """Where signals for ``database``'s connector go: CDCSYNC_<SERVICE>_SIGNAL_DB_URL; on the local
        stack, its admin (for any database of the stack)."""
        key = signal_variable(database)
        if self.local is not None and key not in self.values:
            return StackEndpoints(self.local).admin_url(database)
        return self.get(key)

    def placeholder_env(self, required: Iterable[str] = ()) -> dict[str, str]:
        """What the connectors' ``${env:VAR}`` placeholders resolve from, as the Connect worker has it:
        the local stack's worker environment, or the process environment. Every ``required``
        variable must be in it (a ConfigError names those that are not)."""
        if self.local is not None:
            env = {**os.environ, **StackEndpoints(self.local).connect_worker_env()}
        else:
            env = dict(self.values)
        missing = [key for key in required if key not in env]
        if missing:
            raise missing_setting(missing)
        return env

    def sink_process_env(self) -> dict[str, str]:
        """The environment of a ``cdcsync sink run`` process that writes to these targets: explicit
        variables, no profile (kept in memory, never written)."""
        env = {k: v for k, v in os.environ.items() if k != PROFILE_ENV}
        registry = {SCHEMA_REGISTRY_URL_ENV: self.schema_registry_url} if self.schema_registry_url else {}
        return {
            **env,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "CDCSYNC_SINK_DB_URL": self.sink_db_url,
            **registry,
        }

    def sink_settings(self, overrides: Mapping[str, str] | None = None) -> SinkSettings:
        """The sink's settings: ``overrides`` (CLI options), then these targets, then the environment."""
        return SinkSettings.from_env({**self.sink_process_env(), **(overrides or {})})
