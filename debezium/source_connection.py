"""How to reach a connector's source database exactly as the Connect worker will.

A connector definition names its database through ``${env:VAR}`` placeholders
(host, port, user, password) that the worker's ``EnvVarConfigProvider``
resolves. ``source_connection`` resolves them the same way, from the given
environment (the process environment by default): the caller passes what the
worker has. So ``cdcsync sources check`` connects with the connector's own
role, and sees what Debezium will see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from psycopg.conninfo import make_conninfo

from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.errors import ConfigError

_PLACEHOLDER = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


class UnresolvedPlaceholder(ConfigError):
    """A ``${env:VAR}`` placeholder names a variable that is set nowhere."""

    def __init__(self, key: str, variable: str) -> None:
        super().__init__(
            key,
            f"${{env:{variable}}} is not set",
            f"export {variable} as the Connect worker has it",
        )
        self.variable = variable


def resolve_placeholders(key: str, value: str, env: Mapping[str, str]) -> str:
    """``value`` with every ``${env:VAR}`` replaced from ``env``. Pure.

    Raises ``UnresolvedPlaceholder`` naming ``key`` and the first missing variable.
    """

    def substitute(match: re.Match[str]) -> str:
        variable = match.group(1)
        if variable not in env:
            raise UnresolvedPlaceholder(key, variable)
        return env[variable]

    return _PLACEHOLDER.sub(substitute, value)


@dataclass(frozen=True)
class SourceConnection:
    """Where and as whom a connector connects. The password never appears in a repr."""

    host: str
    port: int
    user: str
    dbname: str
    password: str = field(repr=False)

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        """For messages: database, server and role, never the password."""
        return f"database {self.dbname} on {self.server} as {self.user}"

    def conninfo(self) -> str:
        return make_conninfo(
            host=self.host, port=str(self.port), user=self.user, password=self.password, dbname=self.dbname
        )


_CONNECTION_KEYS = ("database.hostname", "database.port", "database.user", "database.dbname", "database.password")


def placeholder_variables(specs: Iterable[ConnectorSpec]) -> tuple[str, ...]:
    """Every variable the placeholders of ``specs``' connection settings name, sorted."""
    return tuple(
        sorted(
            {v for spec in specs for key in _CONNECTION_KEYS for v in _PLACEHOLDER.findall(spec.config.get(key, ""))}
        )
    )


def source_connection(spec: ConnectorSpec, env: Mapping[str, str]) -> SourceConnection:
    """The connection ``spec``'s connector makes, with its placeholders resolved (see the module doc)."""
    variables = env

    def resolved(key: str) -> str:
        return resolve_placeholders(f"{spec.name}: {key}", spec.config[key], variables)

    port = resolved("database.port")
    try:
        port_number = int(port)
    except ValueError:
        raise ConfigError(
            f"{spec.name}: database.port", f"{port!r} is not a port number", "set it to 1-65535"
        ) from None
    return SourceConnection(
        host=resolved("database.hostname"),
        port=port_number,
        user=resolved("database.user"),
        dbname=resolved("database.dbname"),
        password=resolved("database.password"),
    )
