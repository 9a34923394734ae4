"""A whole pipeline of its own on the test stack's servers, for tests that must break a connector.

Built on ``tests.support.own_connector``: for each of the three services a connector of its own
(its own name, slot, publication, topic prefix and database with the spec's DDL, the demo data and
optionally more attendance windows), all three reporting to one notification topic of the pipeline's;
a fresh calendar database; and an in-process sink with its own routing, group and dead-letter topic.
Nothing shipped or shared is touched. ``close`` removes the connectors, slots, topics and databases.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from cdcsync.debezium.change_format import ChangeFormat
from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.sources.demo_data import load_demo_data
from cdcsync.pipeline.stack.endpoints import SERVICE_DATABASES, StackEndpoints
from cdcsync.pipeline.stack.own_connectors import delete_topics
from cdcsync.pipeline.targets import Targets
from cdcsync.sink.consumer_loop import SinkDaemon
from cdcsync.sink.settings import SinkSettings
from cdcsync.sink.source_tables import routing as source_routing
from tests.support.own_connector import OwnConnector, OwnConnectors


@dataclass
class IsolatedPipeline:
    """Its own databases, connectors and sink on the test stack; see the module docstring."""

    settings: StackSettings
    directory: Path  # where the connector definitions are written, one JSON file each
    id: str = field(default_factory=lambda: f"iso{uuid.uuid4().hex[:10]}")
    _connectors: dict[str, OwnConnector] = field(default_factory=dict)
    _sink_stop: threading.Event = field(default_factory=threading.Event)
    _sink_thread: threading.Thread | None = None
    _sink_error: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._own = OwnConnectors(self.settings, self.directory)

    @property
    def notification_topic(self) -> str:
        return f"{self.id}.notifications"

    def database(self, service: str) -> str:
        """The database of ``service`` (or of the calendar); also the service's topic prefix."""
        return f"{self.id}_{service}"

    def prefix(self, service: str) -> str:
        return self.spec(service).topic_prefix

    def admin_url(self, service: str) -> str:
        return StackEndpoints(self.settings).admin_url(self.database(service))

    def spec(self, service: str) -> ConnectorSpec:
        return self._connectors[service].spec

    def spec_file(self, service: str) -> Path:
        return self._connectors[service].file

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

    def create(
        self,
        extra_windows: int = 0,
        overrides: Mapping[str, str] | None = None,
        change_format: ChangeFormat = ChangeFormat.JSON,
    ) -> None:
        """The three own connectors' databases (schemas, signal and heartbeat tables, publications) and
        files (with ``overrides`` in every config), the demo data (plus ``extra_windows`` attendance windows
        of lectures that do not exist, which make the table big without adding calendar rows) and the
        calendar database. Creates no connector in Connect."""
        for service in SERVICE_DATABASES:
            self._connectors[service] = self._own.make(
                service,
                config=overrides,
                token=self.database(service),
                notification_topic=self.notification_topic,
                change_format=change_format,
            )
        self._own.database(None, name=self.database("calendar"))
        load_demo_data({service: self.admin_url(service) for service in SERVICE_DATABASES})
        if extra_windows:
            with psycopg.connect(self.admin_url("attendance")) as conn:
                conn.execute(
                    "INSERT INTO public.attendance_windows (id, lecture_id, opens_at, closes_at)"
                    " SELECT 800000000 + g, 900000000 + g, now(), now() + interval '1 hour'"
                    " FROM generate_series(1, %s) AS g",
                    (extra_windows,),
                )

    # -- the sink ------------------------------------------------------------------------------------------

    def start_sink(self) -> None:
        """The sink daemon in a thread, reading this pipeline's topics into its calendar database."""
        settings = SinkSettings.from_env(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap,
                "CDCSYNC_SINK_DB_URL": self.admin_url("calendar"),
                "CDCSYNC_SINK_GROUP": f"{self.id}-sink",
                "CDCSYNC_DLQ_TOPIC": self.dead_letter_topic,
            }
        )
        routing = source_routing({service: self.prefix(service) for service in SERVICE_DATABASES})
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

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.id}.dlq"

    def close(self) -> None:
        """Stop the sink; remove the connectors with their slots, topics and databases, and the calendar
        database and dead-letter topic."""
        self._sink_stop.set()
        if self._sink_thread is not None:
            self._sink_thread.join(timeout=60)
        self._own.remove_all()
        delete_topics(self.settings.kafka_bootstrap, lambda topic: topic == self.dead_letter_topic)
