"""The real pipeline for integration tests: PostgreSQL, Kafka, Connect with Debezium,
the source schemas with the demo data, the three connectors, and the sink as a
child process that tests may kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString, TypeVar

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg import sql

from debezium.connect_client import ConnectClient
from pipeline.lifecycle import apply_connectors_and_wait, local_targets, prepare_sources
from pipeline.targets import Targets
from pipeline.verification.reports import render_report, verify_until_clean
from tests.conftest import _TestStack

T = TypeVar("T")


def until(what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.2) -> T:
    """Poll ``probe`` until it returns something other than None, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def assert_calendar_matches_rules(targets: Targets, timeout: float = 90.0) -> None:
    report = verify_until_clean(targets, timeout, poll_s=0.3)
    assert report.clean, "\n".join(render_report(report, 10))


@pytest.fixture(scope="session")
def pipeline(test_stack: _TestStack) -> Targets:
    """Stack up, source schemas and demo data present, connectors RUNNING."""
    settings = test_stack.everything()
    prepare_sources(settings, demo_data=True)
    targets = local_targets(settings)
    apply_connectors_and_wait(targets.connect_url, targets.kafka_bootstrap_servers, timeout=180)
    return targets


@dataclass
class SinkProcess:
    """``cdcsync sink run`` as a child process, with its log in the test stack's home."""

    targets: Targets
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of the targets' (a group, a state file)

    def start(self) -> None:
        env = {**self.targets.sink_process_env(), **self.env}
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "sink", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        """SIGKILL: no chance to finish a batch or leave the group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=90)

    def log_text(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def sink(pipeline: Targets, test_stack: _TestStack) -> Iterator[SinkProcess]:
    process = SinkProcess(pipeline, test_stack.settings.home / "logs" / "test-sink.log")
    process.start()
    assert_calendar_matches_rules(pipeline, timeout=300)
    yield process
    if process.process is not None and process.process.poll() is None:
        assert process.stop() == 0, "the sink did not exit cleanly on SIGTERM"


class Sources:
    """Writes to the service databases, each statement group in one committed transaction."""

    def __init__(self, targets: Targets) -> None:
        self.targets = targets
        self._next_id = 900_000_000 + (int(time.time() * 1000) % 1_000_000) * 100

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def execute(self, service: str, *statements: tuple[LiteralString, tuple[object, ...]]) -> None:
        """Run the statements in one transaction of ``service``'s database, then commit."""
        with psycopg.connect(self.targets.source_urls[service]) as conn:
            for query, params in statements:
                conn.execute(query, params)

    def calendar_rows(self, where: LiteralString, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """(user_id, entry_key, kind, course_id, course_title, title, starts_at, ends_at, location, details,
        max_score) of the calendar rows matching ``where``."""
        query = sql.SQL(
            "SELECT user_id, entry_key, kind, course_id, course_title, title, starts_at, ends_at,"
            " location, details, max_score FROM calendar.calendar_entries WHERE {} ORDER BY user_id, entry_key"
        ).format(sql.SQL(where))
        with psycopg.connect(self.targets.calendar_db_url) as conn:
            return conn.execute(query, params).fetchall()


@pytest.fixture
def sources(pipeline: Targets) -> Sources:
    return Sources(pipeline)


@pytest.fixture
def connect(pipeline: Targets) -> Iterator[ConnectClient]:
    with ConnectClient(pipeline.connect_url) as client:
        yield client


def _compact_json(raw: bytes | None) -> str:
    """A message value as compact JSON; a value that is not JSON (another test's dead letter) as text."""
    if not raw:
        return ""
    try:
        return json.dumps(json.loads(raw), separators=(",", ":"))
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def topic_values(targets: Targets, topic: str) -> list[str]:
    """Every message value in ``topic`` (single partition), read from the beginning, compact JSON."""
    consumer = Consumer(
        {
            "bootstrap.servers": targets.kafka_bootstrap_servers,
            "group.id": f"test-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values: list[str] = []
        deadline = time.monotonic() + 30
        while len(values) < high and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1.0):
                if message.error() is None:
                    values.append(_compact_json(message.value()))
        return values
    finally:
        consumer.close()
