"""A whole pipeline of its own on the test stack's servers, for tests that must break a connector.

Fresh databases for the three services (the spec's DDL, the demo data, optionally more
attendance windows) and a fresh calendar database; connectors built from the shipped
definitions with their own name, slot, publication, topic prefix, database, notification
topic and signal table; and an in-process sink with its own routing, group and dead-letter
topic. Nothing shipped or shared is touched. ``close`` removes the connectors, slots, topics
and databases.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from confluent_kafka.admin import AdminClient
from psycopg import sql

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connect_errors import ConnectorNotFound
from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.debezium.publications import prepare_capture
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.sources.demo_data import load_demo_data
from cdcsync.pipeline.sources.setup import ensure_source_schemas
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE, SERVICE_DATABASES, StackEndpoints
from cdcsync.pipeline.targets import Targets
from cdcsync.sink.consumer_loop import SinkDaemon
from cdcsync.sink.settings import SinkSettings
from cdcsync.sink.source_tables import SOURCE_TABLES

_DEBEZIUM = sql.Identifier(DEBEZIUM_ROLE)


def isolated_spec(shipped: ConnectorSpec, prefix: str, database: str, notifications: str) -> ConnectorSpec:
    """``shipped`` with every name that could collide replaced: name, slot, publication, prefix, database, topics."""
    config = dict(shipped.config)
    config.update(
        {
            "database.dbname": database,
            "topic.prefix": prefix,
            "slot.name": prefix.replace("-", "_"),
            "publication.name": prefix.replace("-", "_"),
            "notification.sink.topic.name": notifications,
            "topic.creation.changes.include": re.escape(prefix) + r"\.public\..*",
            "topic.creation.notifications.include": re.escape(notifications),
        }
    )
    return ConnectorSpec(name=f"{prefix}-connector", config=config)


@dataclass
class IsolatedPipeline:
    """Its own databases, connectors and sink on the test stack; see the module docstring."""

    settings: StackSettings
    directory: Path  # where the connector definitions are written, one JSON file each
    id: str = field(default_factory=lambda: f"iso{uuid.uuid4().hex[:10]}")
    _sink_stop: threading.Event = field(default_factory=threading.Event)
    _sink_thread: threading.Thread | None = None
    _sink_error: list[BaseException] = field(default_factory=list)

    @property
    def notification_topic(self) -> str:
        return f"{self.id}.notifications"

    def database(self, service: str) -> str:
        return f"{self.id}_{service}"

    def prefix(self, service: str) -> str:
        return f"{self.id}-{service}"

    def admin_url(self, service: str) -> str:
        return StackEndpoints(self.settings).admin_url(self.database(service))

    def spec(self, service: str) -> ConnectorSpec:
        shipped = next(s for s in load_connector_specs() if s.config["database.dbname"] == service)
        return isolated_spec(shipped, self.prefix(service), self.database(service), self.notification_topic)

    def spec_file(self, service: str) -> Path:
        return self.directory / f"{service}.json"

    @property
    def specs(self) -> tuple[ConnectorSpec, ...]:
        return tuple(self.spec(service) for service in SERVICE_DATABASES)

    @property
    def targets(self) -> Targets:
        calendar = self.admin_url("calendar")
        return Targets.explicit(
            COURSE_DB_URL=self.admin_url("course"),
            ATTENDANCE_DB_URL=self.admin_url("attendance"),
            ASSIGNMENT_DB_URL=self.admin_url("assignment"),
            CALENDAR_DB_URL=calendar,
            CDCSYNC_SINK_DB_URL=calendar,
            KAFKA_BOOTSTRAP_SERVERS=self.settings.kafka_bootstrap,
            CONNECT_URL=self.settings.connect_url,
        )

    # -- building -------------------------------------------------------------------------------------

    def create(self, extra_windows: int = 0, overrides: Mapping[str, str] | None = None) -> None:
        """Databases, schemas, demo data (plus ``extra_windows`` attendance windows of lectures that do not
        exist, which make the table big without adding calendar rows), signal tables, publications and
        the connector files (with ``overrides`` in every config). Creates no connector."""
        admin = StackEndpoints(self.settings).admin_url()
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            for service in (*SERVICE_DATABASES, "calendar"):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database(service))))
            for service in SERVICE_DATABASES:
                database = sql.Identifier(self.database(service))
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, _DEBEZIUM))
        for service in SERVICE_DATABASES:
            ensure_source_schemas(service, self.admin_url(service))
            with psycopg.connect(self.admin_url(service), autocommit=True) as conn:
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(_DEBEZIUM))
                conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(_DEBEZIUM))
        load_demo_data({service: self.admin_url(service) for service in SERVICE_DATABASES})
        if extra_windows:
            with psycopg.connect(self.admin_url("attendance")) as conn:
                conn.execute(
                    "INSERT INTO public.attendance_windows (id, lecture_id, opens_at, closes_at)"
                    " SELECT 800000000 + g, 900000000 + g, now(), now() + interval '1 hour'"
                    " FROM generate_series(1, %s) AS g",
                    (extra_windows,),
                )
        self.directory.mkdir(parents=True, exist_ok=True)
        for service in SERVICE_DATABASES:
            spec = self.spec(service)
            prepare_capture(self.admin_url(service), spec, DEBEZIUM_ROLE)
            config = {**spec.config, **(overrides or {})}
            self.spec_file(service).write_text(json.dumps({"name": spec.name, "config": config}), encoding="utf-8")

    # -- the sink ------------------------------------------------------------------------------------------

    def start_sink(self) -> None:
        """The sink daemon in a thread, reading this pipeline's topics into its calendar database."""
        settings = SinkSettings(
            bootstrap_servers=self.settings.kafka_bootstrap,
            calendar_db_url=self.admin_url("calendar"),
            group_id=f"{self.id}-sink",
            dead_letter_topic=f"{self.id}.dlq",
            batch_max_messages=5000,
            batch_max_wait_ms=200,
        )
        routing = {f"{self.prefix(t.service)}.public.{t.name}": t for t in SOURCE_TABLES}
        daemon = SinkDaemon(settings, routing)

        def run() -> None:
            try:
                daemon.run(self._sink_stop)
            except BaseException as exc:  # reported by check_sink, in the test's thread
                self._sink_error.append(exc)

        self._sink_thread = threading.Thread(target=run, name=f"{self.id}-sink", daemon=True)
        self._sink_thread.start()

    def check_sink(self) -> None:
        """Raise what the sink thread died of, if it did."""
        if self._sink_error:
            raise RuntimeError(f"the isolated sink stopped: {self._sink_error[0]!r}") from self._sink_error[0]

    # -- cleaning up ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the sink; delete the connectors, then their slots, topics and databases. Best effort, bounded."""
        self._sink_stop.set()
        if self._sink_thread is not None:
            self._sink_thread.join(timeout=60)
        with ConnectClient(self.settings.connect_url) as client:
            for spec in self.specs:
                with contextlib.suppress(ConnectorNotFound):
                    client.delete_connector(spec.name)
        for service in SERVICE_DATABASES:
            self._drop_slot(service)
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(self.id) or self.id in t]
        if topics:
            for future in admin.delete_topics(topics, operation_timeout=30).values():
                future.result()
        with psycopg.connect(StackEndpoints(self.settings).admin_url(), autocommit=True) as conn:
            for service in (*SERVICE_DATABASES, "calendar"):
                name = sql.Identifier(self.database(service))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))

    def _drop_slot(self, service: str, timeout: float = 120.0) -> None:
        """A logical slot is dropped from its own database, once no task (not even a stopping one) holds it."""
        slot = self.spec(service).slot_name
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.admin_url(service), autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
                ).fetchone()
                if row is None:
                    return
                if row[0] is not None and time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                if row[0] is not None:
                    conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                try:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    return
                except psycopg.errors.ObjectInUse:
                    time.sleep(0.5)
