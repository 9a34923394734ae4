"""A test's own connector on its own database, for tests that create, delete, pause, stop, reset or restart one.

The shipped connectors (``cdcsync-course``, ``cdcsync-attendance``, ``cdcsync-assignment``) feed the
shared sink that most integration tests rely on: no test may touch them. ``OwnConnectors.make`` copies a
shipped definition and points it at a fresh database holding that service's schema (the spec's DDL from
``pipeline/sources/<service>.sql``), its signal table and, unless asked not to, its publication; the
connector, database, slot, publication and topic prefix get uuid names. ``remove_all`` deletes every
trace afterwards: the connector, its slot, its topics and its database.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import LiteralString

import psycopg
from confluent_kafka.admin import AdminClient
from psycopg import sql

from cdcsync.debezium.connect_client import ConnectClient, ConnectorNotFound
from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs, parse_connector_spec
from cdcsync.debezium.publications import prepare_capture
from cdcsync.debezium.signals import ensure_signal_table
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.sources.setup import schema_ddl
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE, StackEndpoints
from cdcsync.pipeline.stack.processes import wait_until
from cdcsync.pipeline.targets import Targets

_REMOVE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class OwnConnector:
    """One connector of a test's own, with its database."""

    spec: ConnectorSpec
    file: Path  # its definition, for ``cdcsync connectors apply -f``
    service: str  # whose schema its database holds
    db_url: str  # its database, as the admin

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
        """(active, confirmed_flush_lsn) of its slot, None when there is none."""
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                (self.spec.slot_name,),
            ).fetchone()
        return None if row is None else (bool(row[0]), str(row[1]))

    def released_slot(self) -> tuple[bool, str] | None:
        """The slot once no walsender holds it, else None."""
        slot = self.slot()
        return slot if slot is not None and not slot[0] else None


class OwnConnectors:
    """Makes own connectors; ``remove_all`` removes every one of them with all it left behind."""

    def __init__(self, settings: StackSettings, targets: Targets, directory: Path) -> None:
        self._endpoints = StackEndpoints(settings)
        self._targets = targets
        self._directory = directory
        self._made: list[OwnConnector] = []
        self._shipped = {spec.config["database.dbname"]: spec for spec in load_connector_specs()}

    def make(
        self, service: str = "course", *, publication: bool = True, config: Mapping[str, str] | None = None
    ) -> OwnConnector:
        """A copy of ``service``'s shipped connector on a new database; ``config`` overrides keys.

        The connector is only defined (its file written), not applied: the test applies it.
        """
        suffix = uuid.uuid4().hex[:10]
        name = f"cdcsync_own_{suffix}"
        prefix = f"own_{suffix}"
        shipped = self._shipped[service]
        document = {
            "name": f"cdcsync-own-{suffix}",
            "config": {
                **shipped.config,
                "database.dbname": name,
                "slot.name": name,
                "publication.name": name,
                "topic.prefix": prefix,
                "topic.creation.changes.include": re.escape(prefix) + r"\.public\..*",
                **(config or {}),
            },
        }
        file = self._directory / f"{document['name']}.json"
        file.write_text(json.dumps(document, indent=2), encoding="utf-8")
        spec = parse_connector_spec(file.read_text(encoding="utf-8"), str(file))
        connector = OwnConnector(spec, file, service, self._endpoints.admin_url(name))
        self._made.append(connector)  # before the database exists, so a failed set-up is cleaned up too
        self._create_database(connector, publication)
        return connector

    def remove_all(self) -> None:
        with ConnectClient(self._targets.connect_url) as client:
            for connector in self._made:
                _remove(client, self._targets, self._endpoints, connector)
        self._made.clear()

    def _create_database(self, connector: OwnConnector, publication: bool) -> None:
        with psycopg.connect(self._endpoints.admin_url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(connector.database)))
        role = sql.Identifier(DEBEZIUM_ROLE)
        with psycopg.connect(connector.db_url, connect_timeout=10) as conn:
            conn.execute(sql.SQL(schema_ddl(connector.service)))
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(connector.database), role))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role))
        if publication:
            connector.create_publication()
        else:
            ensure_signal_table(connector.db_url, connector.spec, DEBEZIUM_ROLE)


def _remove(client: ConnectClient, targets: Targets, endpoints: StackEndpoints, connector: OwnConnector) -> None:
    with contextlib.suppress(ConnectorNotFound):
        client.delete_connector(connector.name)
    wait_until(
        lambda: connector.name not in client.list_connectors(), _REMOVE_TIMEOUT_S, f"{connector.name} to be deleted"
    )

    def slot_dropped() -> bool:
        with psycopg.connect(connector.db_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s AND NOT active",
                (connector.spec.slot_name,),
            )
            found = conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (connector.spec.slot_name,))
            return found.fetchone() is None

    wait_until(slot_dropped, _REMOVE_TIMEOUT_S, f"slot {connector.spec.slot_name} to be released and dropped")
    with psycopg.connect(endpoints.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(connector.database)))
    _delete_topics(targets.kafka_bootstrap_servers, connector.spec.topic_prefix)


def _delete_topics(bootstrap_servers: str, prefix: str) -> None:
    """Its change topics (``<prefix>.*``) and its heartbeat topic (``*.<prefix>``)."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{prefix}.") or t.endswith(f".{prefix}")]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()
