"""Connectors of a test's own on databases of its own, for tests that create, delete, pause, stop, reset,
restart or break one.

The shipped connectors (``cdcsync-course``, ``cdcsync-attendance``, ``cdcsync-assignment``) feed the
shared sink that most integration tests rely on: no test may touch them. One piece serves every test
that needs its own:

- ``own_spec`` derives a spec from a shipped one with every name that could collide replaced;
- ``create_database`` makes a database holding a service's schema (the spec's DDL from
  ``pipeline/sources/<service>.sql``), readable by Debezium's role;
- ``OwnConnectors.make`` does both and prepares the capture (signal and heartbeat tables, publication);
  ``OwnConnectors.remove_all`` removes every trace: the connectors (deleted and gone), their slots
  (released and dropped), their topics (change, heartbeat and owned notification topics) and databases.

``tests.support.isolated_pipeline`` builds a whole pipeline on top of it.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import LiteralString

import psycopg
from psycopg import sql

from cdcsync.debezium.change_format import ChangeFormat, with_format
from cdcsync.debezium.connect_client import ConnectClient, ConnectorNotFound
from cdcsync.debezium.connector_spec import ConnectorSpec, parse_connector_spec
from cdcsync.debezium.publications import prepare_capture
from cdcsync.debezium.signals import ensure_signal_table
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE, StackEndpoints
from cdcsync.pipeline.stack.own_connectors import (
    create_database,
    delete_topics,
    drop_slot,
    own_spec,
    shipped_spec,
)
from cdcsync.pipeline.stack.processes import wait_until

_REMOVE_TIMEOUT_S = 60.0
_HEARTBEAT_TOPIC_PREFIX = "__debezium-heartbeat"  # Debezium's default topic.heartbeat.prefix


@dataclass(frozen=True)
class OwnConnector:
    """One connector of a test's own, with its database."""

    spec: ConnectorSpec
    file: Path  # its definition, for ``cdcsync connectors apply -f``
    service: str  # whose schema its database holds
    db_url: str  # its database, as the admin
    notification_topic: str | None  # a notification topic of its own (deleted with it), or None for the shipped one

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def database(self) -> str:
        return self.spec.config["database.dbname"]

    def topic(self, table: str) -> str:
        """The change topic of ``public.<table>``."""
        return f"{self.spec.topic_prefix}.public.{table}"

    def create_publication(self) -> None:
        """The publication, with the signal and heartbeat tables it lists."""
        prepare_capture(self.db_url, self.spec, DEBEZIUM_ROLE)

    def execute(self, *statements: tuple[LiteralString, tuple[object, ...]]) -> None:
        """Run the statements in one committed transaction of its database."""
        with psycopg.connect(self.db_url) as conn:
            for query, params in statements:
                conn.execute(query, params)

    def slot(self) -> tuple[bool, str] | None:
        """(active, confirmed_flush_lsn) of its slot, None until it exists and has confirmed a position."""
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots"
                " WHERE slot_name = %s AND confirmed_flush_lsn IS NOT NULL",
                (self.spec.slot_name,),
            ).fetchone()
        return None if row is None else (bool(row[0]), str(row[1]))

    def released_slot(self) -> tuple[bool, str] | None:
        """The slot once no walsender holds it, else None."""
        slot = self.slot()
        return slot if slot is not None and not slot[0] else None

    def owns_topic(self, topic: str) -> bool:
        """Whether ``topic`` is one of its change topics, its heartbeat topic or its own notification topic."""
        prefix = self.spec.topic_prefix
        heartbeat = f"{self.spec.config.get('topic.heartbeat.prefix', _HEARTBEAT_TOPIC_PREFIX)}.{prefix}"
        return topic.startswith(f"{prefix}.") or topic in (heartbeat, self.notification_topic)


class OwnConnectors:
    """Makes own connectors and databases; ``remove_all`` removes them with all they left behind."""

    def __init__(self, settings: StackSettings, directory: Path) -> None:
        self._settings = settings
        self._endpoints = StackEndpoints(settings)
        self._directory = directory
        self._connectors: list[OwnConnector] = []
        self._databases: list[str] = []

    def make(
        self,
        service: str = "course",
        *,
        publication: bool = True,
        config: Mapping[str, str] | None = None,
        token: str | None = None,
        notification_topic: str | None = None,
        change_format: ChangeFormat = ChangeFormat.JSON,
    ) -> OwnConnector:
        """A copy of ``service``'s shipped connector on a new database; see ``own_spec`` for the arguments.

        ``publication=False`` leaves the publication (and heartbeat table) out, for tests of its absence.
        The connector is only defined (its file written), not applied: the test applies it.
        """
        token = token or f"cdcsync_own_{uuid.uuid4().hex[:10]}"
        shipped = with_format(shipped_spec(service), change_format)
        spec = own_spec(shipped, token, notification_topic=notification_topic, config=config)
        self._directory.mkdir(parents=True, exist_ok=True)
        file = self._directory / f"{spec.name}.json"
        file.write_text(json.dumps({"name": spec.name, "config": dict(spec.config)}, indent=2), encoding="utf-8")
        spec = parse_connector_spec(file.read_text(encoding="utf-8"), str(file))
        connector = OwnConnector(spec, file, service, self._endpoints.admin_url(token), notification_topic)
        self._connectors.append(connector)  # before the database exists, so a failed set-up is cleaned up too
        self.database(service, name=connector.database)
        if publication:
            connector.create_publication()
        else:
            ensure_signal_table(connector.db_url, connector.spec, DEBEZIUM_ROLE)
        return connector

    def database(self, service: str | None, *, name: str | None = None) -> str:
        """A new database of its own, with ``service``'s schema (or empty), dropped by ``remove_all``; its
        admin URL."""
        name = name or f"cdcsync_own_{uuid.uuid4().hex[:10]}"
        self._databases.append(name)
        return create_database(self._endpoints, name, service)

    def remove_all(self) -> None:
        """Every connector deleted and gone, then its slot released and dropped, its topics deleted, and
        every database dropped. Raises ``TimeoutError`` naming what did not go."""
        names = {connector.name for connector in self._connectors}
        with ConnectClient(self._settings.connect_url) as client:
            for name in names:
                with contextlib.suppress(ConnectorNotFound):
                    client.delete_connector(name)
            wait_until(lambda: not names & set(client.list_connectors()), _REMOVE_TIMEOUT_S, "own connectors gone")
        existing = self._existing_databases()
        for connector in self._connectors:
            if connector.database in existing:
                drop_slot(connector.db_url, connector.spec.slot_name)
        connectors = tuple(self._connectors)
        delete_topics(self._settings.kafka_bootstrap, lambda topic: any(c.owns_topic(topic) for c in connectors))
        with psycopg.connect(self._endpoints.admin_url(), autocommit=True) as conn:
            for name in self._databases:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self._connectors.clear()
        self._databases.clear()

    def _existing_databases(self) -> set[str]:
        with psycopg.connect(self._endpoints.admin_url(), autocommit=True) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (self._databases,))
            return {str(name) for (name,) in rows}
