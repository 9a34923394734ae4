"""The external freshness probe: commit a lecture's new title in the course database, poll a peer's target
until it shows it.

Commit-to-visible is measured on the bench's clock: from the moment the UPDATE's autocommit returned
(the commit is durable and visible in the source) to the first poll of the peer's ``visible_query`` that
returns a row. Probes overlap: a new one is committed every interval whether or not the earlier ones are
visible yet, and every pending one is polled each round, ``POLL_S`` apart, so the figure includes up to
``POLL_S`` plus one round of queries of slack.

``TopicWatch`` reads the lectures change topic beside the probe and keeps, for each probe title, the
event's source commit time (Debezium's ``source.ts_us``) and its Kafka record timestamp: the first two
points of the per-stage breakdown.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType

import psycopg
from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from psycopg import sql

from cdcsync.debezium.record_values import RecordDecoder

POLL_S = 0.005


@dataclass(frozen=True)
class ProbeResult:
    lecture_id: int
    title: str
    committed_at: float  # epoch seconds, when the source commit returned
    latency_s: float | None  # None: not visible within the probe's timeout


@dataclass(frozen=True)
class PendingProbe:
    lecture_id: int
    title: str
    committed_at: float  # epoch seconds
    started: float  # monotonic, when the commit returned

    def result(self, latency_s: float | None) -> ProbeResult:
        return ProbeResult(self.lecture_id, self.title, self.committed_at, latency_s)


class Probe:
    """Renames lectures in the course database and checks a peer's target for each new title."""

    def __init__(self, course_url: str, target_url: str, visible: sql.Composable, tag: str) -> None:
        self._course = psycopg.connect(course_url, autocommit=True, application_name="cdcsync-bench-probe")
        self._target = psycopg.connect(target_url, autocommit=True, application_name="cdcsync-bench-probe")
        self._visible = sql.Composed([visible])
        self._tag = tag  # unique per run and peer: a title never repeats one an earlier peer already saw
        self._count = 0

    def close(self) -> None:
        self._course.close()
        self._target.close()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def commit(self, lecture_id: int) -> PendingProbe:
        """Commit a new title for the lecture; the clock starts when the commit returns."""
        self._count += 1
        title = f"probe {self._tag} #{self._count}"
        self._course.execute("UPDATE lectures SET title = %s, updated_at = now() WHERE id = %s", (title, lecture_id))
        return PendingProbe(lecture_id, title, time.time(), time.monotonic())

    def visible(self, pending: PendingProbe) -> bool:
        params = {"lecture_id": pending.lecture_id, "title": pending.title}
        return self._target.execute(self._visible, params).fetchone() is not None

    def once(self, lecture_id: int, timeout: float) -> ProbeResult:
        """One probe, waited for: polled every ``POLL_S`` until visible or ``timeout``."""
        pending = self.commit(lecture_id)
        while time.monotonic() - pending.started < timeout:
            if self.visible(pending):
                return pending.result(time.monotonic() - pending.started)
            time.sleep(POLL_S)
        return pending.result(None)


@dataclass(frozen=True)
class TopicTimes:
    source_commit: float  # epoch seconds: Debezium's source.ts_us (the source transaction's commit)
    kafka_append: float  # epoch seconds: the record's Kafka timestamp


class TopicWatch:
    """Reads the lectures topic from its end in a thread; ``times(title)`` once the probe's event is there.

    Records in either change format: Avro ones are decoded through the registry at ``registry_url``."""

    def __init__(self, bootstrap_servers: str, topic: str, group: str, registry_url: str) -> None:
        self._topic = topic
        self._decoder = RecordDecoder(registry_url)
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap_servers, "group.id": group, "enable.auto.commit": False}
        )
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
        self._seen: dict[str, TopicTimes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-topic-watch", daemon=True)

    def times(self, title: str, timeout: float = 5.0) -> TopicTimes | None:
        deadline = time.monotonic() + timeout
        while title not in self._seen and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._seen.get(title)

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(500, 0.1):
                value = message.value()
                if message.error() is not None or not value:
                    continue
                event = self._decoder.document(self._topic, value)
                if not isinstance(event, dict):
                    continue
                payload = event.get("payload", event)
                after = payload.get("after") or {}
                title = after.get("title")
                if isinstance(title, str) and title.startswith("probe "):
                    source = payload.get("source") or {}
                    commit_us = source.get("ts_us") or source.get("ts_ms", 0) * 1000
                    self._seen[title] = TopicTimes(commit_us / 1e6, message.timestamp()[1] / 1000)

    def __enter__(self) -> TopicWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()
