"""The sink daemon's loop. It only orchestrates: consume a batch, decode, write dead
letters durably, apply the batch in one transaction, then tell Kafka the offsets.

Batches overlap (``sink.apply_pipeline``): while batch N applies on the apply worker,
the loop consumes and decodes batch N+1; then it waits for N, and only after N
committed does it write N+1's dead letters and start N+1. Order of effects per batch,
which is what makes a crash at any instant safe:
1. dead letters are acknowledged by Kafka (or the loop stops, offsets unmoved);
2. replica, calendar rows and offsets commit in one PostgreSQL transaction;
3. the same offsets are committed to Kafka, for lag tools only.
On (re)assignment, partitions resume from the offsets stored in PostgreSQL; a
rebalance first waits for the batch in flight, so that the offsets it stores are
the ones read (by this consumer or by the partitions' next owner).

Outages: librdkafka reconnects to brokers by itself; the loop only records the
outage. When the calendar database fails mid-batch, the outcome of the batch is
unknown and the consumer's position is already past it (and past the batch decoded
meanwhile, which is dropped unapplied), so the loop reconnects
(with backoff), migrates, re-reads the stored offsets and moves every assigned
partition back to them before consuming again. A partition assigned while the
database is down stays paused until then. When the schema registry does not
answer while a batch is decoded, nothing of the batch is applied or
dead-lettered: the loop waits (with backoff) until the registry answers, then
reads again from the stored offsets the same way. Errors retrying cannot fix
raise ``SinkCannotContinue``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from cdcsync.sink.apply_pipeline import AppliedBatch, ApplyPipeline
from cdcsync.sink.avro_changes import AvroChanges
from cdcsync.sink.batch_consumer import consume_batch
from cdcsync.sink.calendar_database import CalendarDatabase
from cdcsync.sink.consumed_batch import collect_batch
from cdcsync.sink.dead_letters import DeadLetter, DeadLettersUnacknowledged, DeadLetterTopic
from cdcsync.sink.errors import (
    CalendarDatabaseUnavailable,
    DependencyUnavailable,
    KafkaUnavailable,
    SchemaRegistryUnavailable,
    SinkCannotContinue,
    SinkConfigInvalid,
    kafka_failure,
)
from cdcsync.sink.heartbeats import HeartbeatReader, source_of_topic
from cdcsync.sink.kafka_clients import admin_config, consumer_config, heartbeat_consumer_config, producer_config
from cdcsync.sink.offset_store import OffsetStore
from cdcsync.sink.reconnect import Outages, Reconnector, RetryPolicy
from cdcsync.sink.settings import SinkSettings
from cdcsync.sink.source_tables import SourceTable, routing
from cdcsync.sink.telemetry import SinkTelemetry

logger = logging.getLogger(__name__)


def default_routing() -> dict[str, SourceTable]:
    """The shipped connectors' topics (each ``topic.prefix`` the service's name)."""
    return routing({})


@dataclass
class SinkRunStats:
    batches: int = 0
    messages: int = 0
    changes: int = 0
    dead_letters: int = 0
    calendar_upserts: int = 0
    calendar_deletes: int = 0

    def add(self, applied: AppliedBatch | None) -> None:
        if applied is None:
            return
        self.batches += 1
        self.messages += applied.result.messages
        self.changes += applied.result.changes
        self.dead_letters += applied.dead_letters
        self.calendar_upserts += applied.result.calendar_upserts
        self.calendar_deletes += applied.result.calendar_deletes


class SinkDaemon:
    """Consumes the source topics and keeps ``calendar.calendar_entries`` equal to the rules.

    Nothing connects in the constructor. ``run`` returns when ``stop`` is set (after
    the batch in flight finished), or after ``max_batches`` batches (for tests: none
    more starts), and always leaves the group.
    It outlasts outages of Kafka and of the calendar database; it raises
    ``SinkCannotContinue`` for what retrying cannot fix. ``state_file``, if
    given, follows every transition (``sink.sink_state``).
    """

    def __init__(
        self,
        settings: SinkSettings,
        routing: Mapping[str, SourceTable] | None = None,
        state_file: Path | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._routing = dict(routing or settings.routing())
        self._offsets = OffsetStore(settings.group_id)
        self._state_file = state_file
        self._policy = policy or RetryPolicy()

    def run(self, stop: threading.Event, max_batches: int | None = None) -> SinkRunStats:
        outages = Outages(self._state_file)
        registry = self._settings.schema_registry
        avro = AvroChanges(registry) if registry is not None else None
        telemetry = self._telemetry(outages, avro)
        reconnect = Reconnector(self._policy, outages, stop)
        session = _Session(
            self._settings, self._routing, self._offsets, outages, reconnect, telemetry=telemetry, avro=avro
        )
        stats = SinkRunStats()
        consumer: Consumer | None = None
        try:
            telemetry.start()
            consumer = session.start()
            outages.running()
            while not stop.is_set() and (max_batches is None or stats.batches < max_batches):
                more = max_batches is None or stats.batches + session.in_flight < max_batches
                stats.add(session.step(consumer, consume=more))
            stats.add(session.finish(consumer))
        except DependencyUnavailable:
            pass  # asked to stop while waiting for a dependency
        except SinkCannotContinue as exc:
            outages.stopped(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if consumer is not None:
                consumer.close()
            session.close()
            telemetry.close()
            if avro is not None:
                avro.close()
        outages.stopped()
        return stats

    def _telemetry(self, outages: Outages, avro: AvroChanges | None) -> SinkTelemetry:
        sources = {source_of_topic(topic) for topic in self._routing}
        heartbeats = HeartbeatReader(heartbeat_consumer_config(self._settings), sources, avro)
        return SinkTelemetry(outages, heartbeats, self._settings.http, self._settings.ready_max_lag_s)


CALENDAR = CalendarDatabaseUnavailable.dependency
KAFKA = KafkaUnavailable.dependency
REGISTRY = SchemaRegistryUnavailable.dependency
_PROBE_EVERY_S = 2.0  # how often a broker outage is probed for its end
_IDLE_CHECK_EVERY_S = 5.0  # how often an idle sink checks its calendar connection
_IDLE_WAIT_S = 0.2  # how long one consume waits while nothing comes (never while data is there)


class _Session:
    """One run's clients, and what it takes to go on after an outage."""

    def __init__(
        self,
        settings: SinkSettings,
        routing: Mapping[str, SourceTable],
        offsets: OffsetStore,
        outages: Outages,
        reconnect: Reconnector,
        *,
        telemetry: SinkTelemetry,
        avro: AvroChanges | None,
    ) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._routing = routing
        self._outages = outages
        self._reconnect = reconnect
        self._calendar = CalendarDatabase(settings.calendar_db_url, offsets)
        self._pipeline = ApplyPipeline(self._calendar.apply)
        self._dead_letters = DeadLetterTopic(
            settings.dead_letter_topic,
            producer_config(settings),
            admin_config(settings),
            retention_ms=settings.dead_letter_retention_ms,
        )
        self._avro = avro
        self._client_errors: list[KafkaError] = []
        self._reposition = False
        self._last_probe = 0.0
        self._last_calendar_contact = time.monotonic()

    def start(self) -> Consumer:
        self._reconnect.call(self._calendar.connect, restores=CALENDAR)
        self._reconnect.call(self._dead_letters.ensure_topic, restores=KAFKA)
        try:
            consumer = Consumer(consumer_config(self._settings, self._client_errors.append))
        except KafkaException as exc:
            raise SinkConfigInvalid(f"Kafka consumer configuration: {exc.args[0].str()}") from exc
        consumer.subscribe(sorted(self._routing), on_assign=self._on_assign, on_revoke=self._on_revoke)
        return consumer

    @property
    def in_flight(self) -> int:
        return self._pipeline.in_flight

    def close(self) -> None:
        self._pipeline.close()
        self._dead_letters.close()
        self._calendar.close()

    def step(self, consumer: Consumer, consume: bool = True) -> AppliedBatch | None:
        """Consume and decode a batch while the one in flight applies, wait for that one, then start this one.

        Returns the batch that finished meanwhile (None if none did). ``consume=False`` only finishes the
        batch in flight."""
        messages = consume_batch(consumer, self._settings, _IDLE_WAIT_S) if consume else []
        self._telemetry.received(messages)
        registry_lost: SchemaRegistryUnavailable | None = None
        try:
            batch, letters, message_errors = collect_batch(messages, self._routing, self._avro)
        except SchemaRegistryUnavailable as exc:
            registry_lost = exc
        try:
            applied = self._take(consumer)
        except CalendarDatabaseUnavailable as exc:
            self._outages.lost(exc)
            if messages:
                logger.info("dropped %d messages consumed while the batch before failed: read again", len(messages))
            self._recover(consumer)
            return None
        if registry_lost is not None:
            self._wait_for_registry(consumer, registry_lost)
            return applied
        self._telemetry.turned(consumer, messages, batch)
        self._note_kafka_errors(consumer, [*self._client_errors, *message_errors], bool(messages))
        self._client_errors.clear()
        if self._reposition:
            self._recover(consumer)  # the messages consumed meanwhile are read again from the stored offsets
            return applied
        if not batch.next_offsets:
            if applied is None:
                self._check_calendar_when_idle(consumer)
            return applied
        self._write_dead_letters(letters)
        self._pipeline.submit(batch, len(letters))
        return applied

    def finish(self, consumer: Consumer) -> AppliedBatch | None:
        """When stopping: wait for the batch in flight. One that failed is read again by the next run."""
        try:
            return self._take(consumer)
        except CalendarDatabaseUnavailable as exc:
            self._outages.lost(exc)
            return None

    def _take(self, consumer: Consumer) -> AppliedBatch | None:
        """The batch in flight once committed: telemetry, then its offsets to Kafka."""
        applied = self._pipeline.take()
        if applied is None:
            return None
        self._last_calendar_contact = time.monotonic()
        batch, result = applied.batch, applied.result
        self._telemetry.applied(batch, result, applied.dead_letters, applied.seconds, applied.committed_at)
        try:
            consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()], asynchronous=True
            )
        except KafkaException as exc:  # informational only: the offsets that count are in PostgreSQL
            logger.debug("kafka commit: %s", exc)
        logger.info(
            "applied batch: %d messages, %d changes, %d dead letters, %d calendar rows written, %d removed",
            result.messages,
            result.changes,
            applied.dead_letters,
            result.calendar_upserts,
            result.calendar_deletes,
        )
        return applied

    def _wait_for_registry(self, consumer: Consumer, lost: SchemaRegistryUnavailable) -> None:
        """Nothing of the batch was applied: wait until the registry answers, then read it again."""
        self._outages.lost(lost)
        if self._avro is not None:  # only the Avro front end raises it
            self._reconnect.call(self._avro.probe, restores=REGISTRY)
        self._recover(consumer)

    def _check_calendar_when_idle(self, consumer: Consumer) -> None:
        if time.monotonic() - self._last_calendar_contact < _IDLE_CHECK_EVERY_S:
            return
        self._last_calendar_contact = time.monotonic()
        try:
            self._calendar.check()
        except CalendarDatabaseUnavailable as exc:
            self._outages.lost(exc)
            self._recover(consumer)

    def _on_revoke(self, client: Consumer, partitions: list[TopicPartition]) -> None:
        """The partitions' next owner starts from the offsets stored in PostgreSQL: let the batch in flight
        store its own first (also called for partitions lost)."""
        self._pipeline.join()

    def _on_assign(self, client: Consumer, partitions: list[TopicPartition]) -> None:
        self._pipeline.join()  # the connection is the apply worker's until then; and its offsets count
        try:
            wanted = [(p.topic, p.partition) for p in partitions]
            stored = self._calendar.load_offsets(wanted)
            newest_commits = self._calendar.load_newest_commits(wanted)
        except CalendarDatabaseUnavailable as exc:
            # Where to start is in the database: hold the partitions until it is back.
            self._outages.lost(exc)
            client.assign(partitions)
            client.pause(partitions)
            self._reposition = True
            logger.info("assigned %d partitions, paused until the calendar database is back", len(partitions))
            return
        for p in partitions:
            p.offset = stored.get((p.topic, p.partition), OFFSET_BEGINNING)
        self._telemetry.assigned(partitions, newest_commits)
        logger.info("assigned %s", _positions(partitions))
        client.assign(partitions)

    def _recover(self, consumer: Consumer) -> None:
        """Reconnect and migrate, then move every assigned partition back to its stored offset."""

        def reconnect_and_load() -> list[TopicPartition]:
            self._calendar.connect()
            assigned = consumer.assignment()
            stored = self._calendar.load_offsets([(p.topic, p.partition) for p in assigned])
            return [
                TopicPartition(p.topic, p.partition, stored.get((p.topic, p.partition), OFFSET_BEGINNING))
                for p in assigned
            ]

        positions = self._reconnect.call(reconnect_and_load, restores=CALENDAR)
        if positions:
            # assign() drops what was fetched past these offsets, like a rebalance would.
            consumer.assign(positions)
            consumer.resume(positions)
            self._telemetry.assigned(positions)
            logger.info("resumed at the stored offsets: %s", _positions(positions))
        self._reposition = False

    def _write_dead_letters(self, letters: list[DeadLetter]) -> None:
        pending = tuple(letters)

        def write_pending() -> None:
            nonlocal pending
            try:
                self._dead_letters.write(pending)
            except DeadLettersUnacknowledged as exc:
                pending = exc.pending
                raise

        if pending:
            self._reconnect.call(write_pending, restores=KAFKA)

    def _note_kafka_errors(self, consumer: Consumer, errors: list[KafkaError], consumed: bool) -> None:
        """Record a broker outage (librdkafka reconnects by itself), and notice when it ends."""
        for error in errors:
            decision = kafka_failure(error)
            if isinstance(decision, SinkCannotContinue):
                raise decision
            if decision is None:
                logger.info("kafka consumer: %s", error.str())
            else:
                self._outages.lost(decision)
        if errors or not self._outages.is_down(KAFKA):
            return
        if not consumed and time.monotonic() - self._last_probe < _PROBE_EVERY_S:
            return
        self._last_probe = time.monotonic()
        try:
            if not consumed:
                consumer.list_topics(timeout=1.0)
        except KafkaException:
            return
        self._outages.restored(KAFKA)


def _positions(partitions: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]@{p.offset}" for p in partitions)
