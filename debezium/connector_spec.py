"""Connector definitions: the JSON files in ``debezium/connectors`` as typed values.

Each file is a Kafka Connect create request, ``{"name": ..., "config": {...}}``,
so ``curl -X POST -d @course.json`` works with it as it is. The same files are
used by the local stack and by compose; they hold no secret and nothing
environment-specific, only ``${env:VAR}`` placeholders that the Connect
worker's ``EnvVarConfigProvider`` resolves.

Loading validates loudly: a bad file raises ``ConnectorSpecError`` naming the
file and the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from cdcsync.errors import ConfigError

POSTGRES_CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
REQUIRED_KEYS = (
    "connector.class",
    "database.hostname",
    "database.port",
    "database.user",
    "database.password",
    "database.dbname",
    "topic.prefix",
    "plugin.name",
    "slot.name",
    "publication.name",
    "table.include.list",
)
# Values that differ between the local stack and compose, or are secret: only
# ever placeholders, so a definition never pins an address or leaks a password.
PLACEHOLDER_KEYS = ("database.hostname", "database.port", "database.user", "database.password")
_ENV_PLACEHOLDER = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}")
_SECRET_KEY = re.compile(r"(password|secret|credential|token|jaas)", re.IGNORECASE)
# PostgreSQL replication slot names: lower-case letters, digits and underscores.
_SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")


class ConnectorSpecError(ConfigError):
    """A connector definition file is invalid; the message names the file and the key."""

    def __init__(self, source: str, key: str, problem: str, fix: str) -> None:
        super().__init__(f"{source}: {key}", problem, fix)
        self.source = source
        self.spec_key = key


@dataclass(frozen=True)
class ConnectorSpec:
    """One connector as Kafka Connect should run it. ``config`` is read-only."""

    name: str
    config: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    @property
    def slot_name(self) -> str:
        return self.config["slot.name"]

    @property
    def publication_name(self) -> str:
        return self.config["publication.name"]

    @property
    def topic_prefix(self) -> str:
        return self.config["topic.prefix"]

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.config["table.include.list"].split(",") if t.strip())

    def matches(self, running: Mapping[str, str]) -> bool:
        """True when ``running`` (GET /connectors/{name}/config) is this definition.

        Connect adds ``name`` to the stored config; everything else must be equal.
        """
        return dict(running) == {**self.config, "name": self.name}


def is_env_placeholder(value: str) -> bool:
    return _ENV_PLACEHOLDER.fullmatch(value) is not None


def parse_connector_spec(text: str, source: str) -> ConnectorSpec:
    """Parse and validate one definition; ``source`` names it in errors."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConnectorSpecError(source, "(file)", f"not valid JSON ({exc})", "fix the JSON syntax") from None
    if not isinstance(document, dict):
        raise ConnectorSpecError(source, "(file)", "is not a JSON object", 'write {"name": ..., "config": {...}}')
    unknown = sorted(set(document) - {"name", "config"})
    if unknown:
        raise ConnectorSpecError(source, unknown[0], "unexpected top-level key", 'keep only "name" and "config"')
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise ConnectorSpecError(source, "name", "missing or not a non-empty string", "name the connector")
    config = document.get("config")
    if not isinstance(config, dict):
        raise ConnectorSpecError(source, "config", "missing or not an object", "put the connector properties in config")
    for key, value in config.items():
        if not isinstance(value, str):
            # Connect stores and returns strings; keeping them strings here
            # makes the comparison with the running config exact.
            raise ConnectorSpecError(source, f"config.{key}", f"{value!r} is not a string", f'quote it: "{value}"')
    if "name" in config and config["name"] != name:
        raise ConnectorSpecError(source, "config.name", "differs from the top-level name", "remove config.name")
    _validate_config(source, config)
    return ConnectorSpec(name=name, config={k: v for k, v in config.items() if k != "name"})


def _validate_config(source: str, config: Mapping[str, str]) -> None:
    for key in REQUIRED_KEYS:
        if not config.get(key):
            raise ConnectorSpecError(source, f"config.{key}", "missing", f"set {key}")
    if config["connector.class"] != POSTGRES_CONNECTOR_CLASS:
        raise ConnectorSpecError(
            source,
            "config.connector.class",
            f"{config['connector.class']!r} is not supported",
            POSTGRES_CONNECTOR_CLASS,
        )
    if config["plugin.name"] != "pgoutput":
        raise ConnectorSpecError(source, "config.plugin.name", "must be pgoutput", "set plugin.name to pgoutput")
    for key in PLACEHOLDER_KEYS:
        if not is_env_placeholder(config[key]):
            raise ConnectorSpecError(
                source, f"config.{key}", "holds a literal value", "use a ${env:VAR} placeholder the worker resolves"
            )
    for key, value in config.items():
        if _SECRET_KEY.search(key) and not is_env_placeholder(value):
            raise ConnectorSpecError(
                source, f"config.{key}", "looks like a secret but is not a placeholder", "use ${env:VAR}"
            )
    for key in ("slot.name", "publication.name"):
        if _SLOT_NAME.fullmatch(config[key]) is None:
            raise ConnectorSpecError(
                source, f"config.{key}", f"{config[key]!r} is not a valid name", "use lower-case letters, digits and _"
            )


def check_distinct(specs: Iterable[tuple[str, ConnectorSpec]]) -> None:
    """Connectors must not share a name, slot, publication or topic prefix."""
    seen: dict[tuple[str, str], str] = {}
    for source, spec in specs:
        for key, value in (
            ("name", spec.name),
            ("config.slot.name", spec.slot_name),
            ("config.publication.name", spec.publication_name),
            ("config.topic.prefix", spec.topic_prefix),
        ):
            other = seen.setdefault((key, value), source)
            if other != source:
                raise ConnectorSpecError(
                    source, key, f"{value!r} is also used by {other}", "give each connector its own"
                )


def load_connector_specs(directory: Path | None = None) -> tuple[ConnectorSpec, ...]:
    """All definitions, sorted by file name: from ``directory``, else the packaged files."""
    if directory is not None:
        if not directory.is_dir():
            raise ConfigError(str(directory), "is not a directory", "point it at a directory of connector JSON files")
        files = [(str(path), path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))]
        where = str(directory)
    else:
        root = resources.files("cdcsync.debezium").joinpath("connectors")
        entries = sorted((e for e in root.iterdir() if e.name.endswith(".json")), key=lambda e: e.name)
        files = [(f"debezium/connectors/{e.name}", e.read_text(encoding="utf-8")) for e in entries]
        where = "debezium/connectors"
    if not files:
        raise ConfigError(where, "holds no *.json connector definition", "add one file per connector")
    parsed = [(source, parse_connector_spec(text, source)) for source, text in files]
    check_distinct(parsed)
    return tuple(spec for _, spec in parsed)
