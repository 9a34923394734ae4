"""The bench's sources: three service databases of its own, captured by connectors of its own.

Everything is named after the run (``bench_<id>_<service>``), so a bench never touches the shipped
connectors, the demo's databases or another run: connectors (derived from the shipped ones, the same
settings, but with the schemas in the records), their slots, publications and change topics, and one
empty target database per peer. ``remove`` deletes all of it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition
from psycopg import sql

from cdcsync.debezium.change_format import ChangeFormat, with_format
from cdcsync.debezium.connect_client import ConnectClient, ConnectorNotFound
from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.debezium.publications import prepare_capture
from cdcsync.pipeline.bench import dataset
from cdcsync.pipeline.bench.peer import SourceTopic
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.sources.setup import SERVICE_TABLES
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE, SERVICE_DATABASES, StackEndpoints
from cdcsync.pipeline.stack.own_connectors import create_database, delete_topics, drop_slot, own_spec, shipped_spec
from cdcsync.pipeline.stack.processes import wait_until

Say = Callable[[str], None]
# The records carry their schemas, which the Debezium JDBC sink needs; the cdcsync sink reads either form.
WITH_SCHEMAS = {"key.converter.schemas.enable": "true", "value.converter.schemas.enable": "true"}


def end_offsets(bootstrap_servers: str, topics: Iterable[str]) -> dict[str, int]:
    """Each topic's high watermark (partition 0; the change topics have one); 0 for a topic not created yet."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "cdcsync-bench-watermarks"})
    try:
        marks = {}
        for topic in topics:
            try:
                marks[topic] = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
            except KafkaException:
                marks[topic] = 0
        return marks
    finally:
        consumer.close()


@dataclass
class BenchSources:
    """The run's source databases and connectors on the stack; see the module docstring."""

    stack: StackSettings
    change_format: ChangeFormat = ChangeFormat.JSON
    run_id: str = field(default_factory=lambda: f"bench_{uuid.uuid4().hex[:8]}")
    _databases: list[str] = field(default_factory=list)
    _specs: dict[str, ConnectorSpec] = field(default_factory=dict)

    @property
    def endpoints(self) -> StackEndpoints:
        return StackEndpoints(self.stack)

    def database(self, service: str) -> str:
        return f"{self.run_id}_{service}"

    def url(self, service: str) -> str:
        return self.endpoints.admin_url(self.database(service))

    @property
    def urls(self) -> dict[str, str]:
        return {service: self.url(service) for service in SERVICE_DATABASES}

    @property
    def topics(self) -> tuple[SourceTopic, ...]:
        return tuple(
            SourceTopic(service, table, f"{self.database(service)}.public.{table}")
            for service, tables in SERVICE_TABLES.items()
            for table in tables
        )

    def topic(self, table: str) -> str:
        return next(t.topic for t in self.topics if t.table == table)

    def create(self, shape: dataset.Shape, say: Say) -> None:
        """Databases with the spec's schemas and the data of ``shape``, then the connectors (not waited for)."""
        for service in SERVICE_DATABASES:
            name = self.database(service)
            self._databases.append(name)
            create_database(self.endpoints, name, service)
        started = time.monotonic()
        dataset.load(self.urls, shape)
        seconds = time.monotonic() - started
        say(f"sources: {shape.source_rows:,} rows written in {seconds:.1f}s ({shape.courses:,} courses)")
        for service in SERVICE_DATABASES:
            token = self.database(service)
            # JSON records carry their schemas (the Debezium JDBC sink needs them); Avro's are in the registry.
            schemas = WITH_SCHEMAS if self.change_format is ChangeFormat.JSON else None
            shipped = with_format(shipped_spec(service), self.change_format)
            spec = own_spec(shipped, token, notification_topic=f"{token}.notifications", config=schemas)
            prepare_capture(self.url(service), spec, DEBEZIUM_ROLE)
            self._specs[service] = spec
        with ConnectClient(self.stack.connect_url) as client:
            for spec in self._specs.values():
                client.put_connector_config(spec.name, spec.config)

    def target_database(self, peer: str) -> str:
        """A new empty database for ``peer``'s output; its admin URL."""
        name = f"{self.run_id}_{peer.replace('-', '_')}"
        self._databases.append(name)
        return create_database(self.endpoints, name, None)

    def end_offsets(self) -> dict[str, int]:
        return end_offsets(self.stack.kafka_bootstrap, [t.topic for t in self.topics])

    def wait_captured(self, timeout: float) -> dict[str, int]:
        """Until every change committed so far in the sources is in Kafka: each connector's slot has
        confirmed the WAL position its database had when this was called. Returns the end offsets then."""
        positions = {}
        for service in SERVICE_DATABASES:
            with psycopg.connect(self.url(service), autocommit=True) as conn:
                row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                positions[service] = str(row[0]) if row else "0/0"

        def confirmed() -> bool:
            for service, lsn in positions.items():
                with psycopg.connect(self.url(service), autocommit=True) as conn:
                    row = conn.execute(
                        "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
                        (lsn, self._specs[service].slot_name),
                    ).fetchone()
                if not row or not row[0]:
                    return False
            return True

        wait_until(confirmed, timeout, "the bench's connectors to capture every source change", interval=0.2)
        return self.end_offsets()

    def wait_snapshot(self, shape: dataset.Shape, timeout: float) -> float:
        """Until the initial snapshot of every source row is in Kafka; seconds it took from now."""
        started = time.monotonic()
        wait_until(
            lambda: sum(self.end_offsets().values()) >= shape.source_rows,
            timeout,
            "the bench's connectors to snapshot the sources into Kafka",
            interval=0.5,
        )
        return time.monotonic() - started

    def remove(self) -> None:
        """Connectors, slots, topics and every database of the run."""
        with ConnectClient(self.stack.connect_url) as client:
            for spec in self._specs.values():
                with contextlib.suppress(ConnectorNotFound):
                    client.delete_connector(spec.name)
            names = {spec.name for spec in self._specs.values()}
            wait_until(lambda: not names & set(client.list_connectors()), 60.0, "the bench's connectors gone")
        for service, spec in self._specs.items():
            drop_slot(self.url(service), spec.slot_name)
        delete_topics(self.stack.kafka_bootstrap, lambda topic: self.run_id in topic)  # change, heartbeat, notices
        with psycopg.connect(self.endpoints.admin_url(), autocommit=True) as conn:
            for name in self._databases:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self._databases.clear()
        self._specs.clear()
