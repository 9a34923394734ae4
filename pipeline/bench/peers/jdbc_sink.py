"""Peer: the Debezium JDBC sink connector mirroring the five change topics into PostgreSQL tables.

A plain mirror, not the calendar: one table per source table (``courses``, ``lectures``, ...) in the
peer's scratch database, kept by upserts and deletes. It runs in the stack's Kafka Connect worker as a
plugin resolved from ``compose/bench-peers.pom`` (see ``artifacts``); when the worker was started
before the plugin was there, ``start`` restarts it once so that it loads the plugin.

Settings (``SINK_SETTINGS``) follow the connector's documentation for 3.4
(https://debezium.io/documentation/reference/3.4/connectors/jdbc.html):
upsert with the record key as primary key and deletes enabled (the idempotent mirror it describes),
``schema.evolution=basic`` to create the tables from the record schemas, the reduction buffer on, and
``batch.size`` matched by ``consumer.override.max.poll.records`` (its note: a lower ``max.poll.records``
caps the batch). The records must carry their schemas: JsonConverter with ``schemas.enable=true``.
Delivery is at-least-once and not transactional across tables; the connector writes one batch per
``put()`` and has no timer of its own, so latency is the consumer's fetch plus the write.

The connector writes as Debezium's role (granted CREATE on the scratch database's ``public`` schema),
whose password reaches the worker through its environment (``${env:...}``), never the connector config.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

import psycopg
import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql

from cdcsync.debezium.connect_client import ConnectClient, ConnectorNotFound
from cdcsync.pipeline.bench.peer import PeerContext, PeerUnavailable, ProgressWatch
from cdcsync.pipeline.bench.peers.artifacts import JDBC_SINK_VERSION, PeerArtifacts
from cdcsync.pipeline.stack.connect import LocalConnect, lists_connector
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE
from cdcsync.pipeline.stack.processes import wait_until

NAME = "Debezium JDBC sink"
CONNECTOR_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"
BATCH_SIZE = 1000
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"
SINK_SETTINGS: Mapping[str, str] = {
    "connector.class": CONNECTOR_CLASS,
    "tasks.max": "1",
    "insert.mode": "upsert",
    "primary.key.mode": "record_key",
    "delete.enabled": "true",
    "schema.evolution": "basic",
    "use.reduction.buffer": "true",
    "batch.size": str(BATCH_SIZE),
    "consumer.override.max.poll.records": str(BATCH_SIZE),
    "consumer.override.auto.offset.reset": "earliest",
    "collection.name.format": "${source.table}",
    "key.converter": JSON_CONVERTER,
    "key.converter.schemas.enable": "true",
    "value.converter": JSON_CONVERTER,
    "value.converter.schemas.enable": "true",
}
_RESTART_TIMEOUT_S = 180.0
_REMOVE_TIMEOUT_S = 60.0


def sink_config(ctx: PeerContext) -> dict[str, str]:
    """The connector's config for ``ctx``: ``SINK_SETTINGS``, its topics and its scratch database."""
    url = f"jdbc:postgresql://${{env:CDCSYNC_PG_HOST}}:${{env:CDCSYNC_PG_PORT}}/{ctx.target_database}"
    return {
        **SINK_SETTINGS,
        "topics": ",".join(t.topic for t in ctx.topics),
        "connection.url": url,
        "connection.username": "${env:CDCSYNC_DEBEZIUM_USER}",
        "connection.password": "${env:CDCSYNC_DEBEZIUM_PASSWORD}",
    }


class JdbcSinkPeer:
    """The Debezium JDBC sink connector as a bench peer; see the module docstring."""

    name = NAME

    def __init__(self) -> None:
        self._ctx: PeerContext | None = None
        self._connector = ""
        self._started = 0.0
        self._load_seconds: float | None = None
        self._load_events = 0
        self._restarted_connect = False

    @property
    def ctx(self) -> PeerContext:
        if self._ctx is None:
            raise RuntimeError("the peer was not started")
        return self._ctx

    def start(self, ctx: PeerContext) -> None:
        self._ctx = ctx
        self._connector = f"bench-jdbc-sink-{ctx.run_id}".replace("_", "-")
        PeerArtifacts(ctx.stack).ensure()
        self._ensure_plugin_loaded()
        with psycopg.connect(ctx.target_url, autocommit=True, connect_timeout=10) as conn:
            role = sql.Identifier(DEBEZIUM_ROLE)
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(ctx.target_database), role)
            )
            conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(role))
        self._started = time.monotonic()
        with ConnectClient(ctx.connect_url) as client:
            client.put_connector_config(self._connector, sink_config(ctx))

    def wait_ready(self, timeout: float) -> None:
        """Until every mirrored table holds as many rows as its source table; fails fast on a FAILED task, and
        once the target stops changing short of that (``PeerStalled``)."""
        expected = self._source_counts()
        progress = ProgressWatch(NAME)

        def loaded() -> bool:
            if not self._check_running():
                return False
            counts = self._target_counts()
            progress.note(sum(counts.values()), sum(expected.values()))
            return counts == expected

        wait_until(loaded, timeout, f"{NAME} load")
        if self._load_seconds is None:  # the initial load; later calls only wait
            self._load_seconds = time.monotonic() - self._started
            self._load_events = self._topic_events()

    def visible_query(self) -> sql.Composable:
        return sql.SQL("SELECT 1 FROM public.lectures WHERE id = %(lecture_id)s AND title = %(title)s")

    def target_rows(self) -> int:
        return sum(self._target_counts().values())

    def stop(self) -> None:
        """Delete the connector, wait until it is gone, then delete its consumer group."""
        if self._ctx is None:
            return
        with ConnectClient(self.ctx.connect_url) as client:
            with contextlib.suppress(ConnectorNotFound):
                client.delete_connector(self._connector)
            wait_until(lambda: self._connector not in client.list_connectors(), _REMOVE_TIMEOUT_S, "sink gone")
        admin = AdminClient({"bootstrap.servers": self.ctx.kafka_bootstrap})
        group = f"connect-{self._connector}"

        def group_deleted() -> bool:
            try:
                admin.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=20)
            except Exception as exc:  # the group may linger a moment after the task stopped
                return "GROUP_ID_NOT_FOUND" in str(exc)
            return True

        wait_until(group_deleted, _REMOVE_TIMEOUT_S, f"consumer group {group} deleted", interval=1.0)

    def rss_bytes(self) -> int | None:
        return None  # it runs inside the stack's Connect worker, shared with the source connectors

    def stats(self) -> Mapping[str, Any]:
        rate = self._load_events / self._load_seconds if self._load_seconds else None
        return {
            "version": f"io.debezium:debezium-connector-jdbc:{JDBC_SINK_VERSION}",
            "settings": dict(SINK_SETTINGS),
            "initial_load_events": self._load_events,
            "initial_load_seconds": self._load_seconds,
            "initial_load_events_per_s": rate,
            "restarted_connect_to_load_plugin": self._restarted_connect,
            "memory": "inside the shared Kafka Connect worker (no process of its own)",
        }

    # -- internals -------------------------------------------------------------------------------------

    def _ensure_plugin_loaded(self) -> None:
        """Restart the stack's Connect worker once if it does not list the JDBC sink plugin yet."""
        if self._lists_plugin():
            return
        connect = LocalConnect(self.ctx.stack)
        if not connect.status().running:
            raise PeerUnavailable(
                f"{self.ctx.connect_url} is not the local stack's Connect worker; cannot load the plugin"
            )
        connect.stop()
        connect.start(_RESTART_TIMEOUT_S)
        self._restarted_connect = True
        if not self._lists_plugin():
            raise PeerUnavailable(
                f"the Connect worker does not list {CONNECTOR_CLASS} after a restart; see {connect.log_file}"
            )

    def _lists_plugin(self) -> bool:
        try:
            response = requests.get(f"{self.ctx.connect_url}/connector-plugins", timeout=10)
            response.raise_for_status()
            return lists_connector(response.json(), CONNECTOR_CLASS)
        except (requests.RequestException, ValueError):
            return False

    def _check_running(self) -> bool:
        with ConnectClient(self.ctx.connect_url) as client:
            try:
                state = client.connector_status(self._connector)
            except ConnectorNotFound:  # created, but its status is not written yet
                return False
        failed = [task for task in state.tasks if task.state == "FAILED"]
        if failed or state.state == "FAILED":
            trace = (failed[0].trace if failed else state.trace) or "no trace"
            raise PeerUnavailable(f"{NAME} failed: {trace.splitlines()[0]}")
        return state.running

    def _source_counts(self) -> dict[str, int]:
        counts = {}
        for topic in self.ctx.topics:
            with psycopg.connect(self.ctx.source_urls[topic.service], connect_timeout=10) as conn:
                row = conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(topic.table)))
                counts[topic.table] = int(row.fetchone()[0])  # type: ignore[index]
        return counts

    def _target_counts(self) -> dict[str, int]:
        counts = {}
        with psycopg.connect(self.ctx.target_url, autocommit=True, connect_timeout=10) as conn:
            for topic in self.ctx.topics:
                exists = conn.execute("SELECT to_regclass(%s)", (f"public.{topic.table}",)).fetchone()
                if exists is None or exists[0] is None:
                    counts[topic.table] = 0
                    continue
                row = conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(topic.table)))
                counts[topic.table] = int(row.fetchone()[0])  # type: ignore[index]
        return counts

    def _topic_events(self) -> int:
        """Records in the five topics now (tombstones included): what the load consumed."""
        consumer = Consumer({"bootstrap.servers": self.ctx.kafka_bootstrap, "group.id": f"{self._connector}-probe"})
        try:
            total = 0
            for topic in self.ctx.topics:
                metadata = consumer.list_topics(topic.topic, timeout=10).topics[topic.topic]
                for partition in metadata.partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic.topic, partition), timeout=10)
                    total += high - low
            return total
        finally:
            consumer.close()
