"""The real pipeline for integration tests: PostgreSQL, Kafka, Connect with Debezium,
the source schemas with the demo data, the three connectors, and the sink as a
child process that tests may kill.

The shipped connectors are shared: no test may delete, re-configure, stop, reset or
restart them. A test that needs to makes its own (``own_connectors``). The guard
(``tests/support/pipeline_guard.py``) fails within seconds, naming the connector and the
cause, when a shipped connector is missing or FAILED: once the pipeline starts, in every
wait for the calendar, and before each test that uses the pipeline."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString, TypeVar

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg import sql

from cdcsync.debezium.apply import apply_connector
from cdcsync.debezium.change_format import ChangeFormat
from cdcsync.debezium.change_topics import align_change_topics
from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connector_spec import load_connector_specs
from cdcsync.pipeline.lifecycle import prepare_sources
from cdcsync.pipeline.stack.endpoints import SERVICE_DATABASES
from cdcsync.pipeline.stack.processes import ManagedProcess, PidRecord
from cdcsync.pipeline.targets import Targets
from cdcsync.pipeline.verification.bucketed import verify_bucketed
from cdcsync.pipeline.verification.reports import render_report
from cdcsync.pipeline.verification.source_reader import CalendarMissing
from cdcsync.sink.offset_store import PartitionLedger, audit_ledger
from tests.conftest import _TestStack
from tests.support.isolated_pipeline import IsolatedPipeline
from tests.support.own_connector import OwnConnectors
from tests.support.pipeline_guard import (
    fail_on_problems,
    fail_on_snapshot_problems,
    shipped_connector_states,
    wait_until_running,
)
from tests.support.stack_reset import TEST_AVRO_SINK, TEST_SINK
from tests.support.topic_values import readable_value

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


def assert_calendar_matches_rules(
    targets: Targets, timeout: float = 90.0, sink: SinkProcess | None = None, poll_s: float = 0.3
) -> None:
    """Poll until the calendar equals the rules; fail at once when a shipped connector or ``sink`` breaks."""
    deadline = time.monotonic() + timeout
    while True:
        fail_on_problems(shipped_connector_states(targets.connect_url), "waiting for the calendar")
        if sink is not None and sink.process is not None and sink.process.poll() is not None:
            pytest.fail(f"the sink exited with code {sink.process.returncode}; its log: {sink.log_file}")
        try:
            report = verify_bucketed(targets).report
        except CalendarMissing:
            if time.monotonic() >= deadline:
                raise
        else:
            if report.clean:
                return
            if time.monotonic() >= deadline:
                pytest.fail("\n".join(render_report(report, 10)))
        time.sleep(poll_s)


def assert_ledger_clean(db_url: str, group_id: str) -> list[PartitionLedger]:
    """The sink's ledger of applied offset ranges for ``group_id``, asserted non-empty with no offset applied
    twice (overlaps) and none skipped (gaps)."""
    with psycopg.connect(db_url) as conn:
        ledgers = audit_ledger(conn, group_id)
    assert ledgers, f"no applied offset ranges for group {group_id}"
    assert [(x.topic, x.partition, x.overlaps, x.gaps) for x in ledgers] == [
        (x.topic, x.partition, 0, 0) for x in ledgers
    ]
    return ledgers


@pytest.fixture(scope="session")
def pipeline(test_stack: _TestStack) -> Targets:
    """Stack up, source schemas and demo data present, the shipped connectors RUNNING and none FAILED."""
    settings = test_stack.everything()
    prepare_sources(settings, demo_data=True)
    targets = Targets.local_stack(settings)
    specs = load_connector_specs()
    align_change_topics(targets.kafka_bootstrap_servers, specs)
    with ConnectClient(targets.connect_url) as client:
        for spec in specs:
            apply_connector(client, spec)
    wait_until_running(targets.connect_url, 180, "starting the pipeline")
    fail_on_snapshot_problems(targets, "starting the pipeline", wait_s=180)
    return targets


@pytest.fixture(autouse=True)
def _shipped_connectors_fit(request: pytest.FixtureRequest) -> None:
    """Before each test that uses the pipeline: the shipped connectors run, none FAILED (an earlier test may
    have broken one)."""
    if "pipeline" in request.fixturenames:
        targets: Targets = request.getfixturevalue("pipeline")
        wait_until_running(targets.connect_url, 60, f"before {request.node.name}")


@pytest.fixture
def own_connectors(pipeline: Targets, test_stack: _TestStack, tmp_path: Path) -> Iterator[OwnConnectors]:
    """``own_connectors.make("course")``: a connector of the test's own on its own database, removed afterwards."""
    made = OwnConnectors(test_stack.settings, tmp_path)
    try:
        yield made
    finally:
        made.remove_all()


@dataclass
class SinkProcess:
    """``cdcsync sink run`` as a child process, with its log and pid file in the test stack's home."""

    targets: Targets
    home: Path
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of the targets' (a group, a state file)
    name: str = TEST_SINK  # of its pid and log files

    @property
    def log_file(self) -> Path:
        return ManagedProcess(self.name, self.home).log_file

    def start(self) -> None:
        """Start it, with a pid file, so that a session killed before stopping it is cleaned up by the next."""
        env = {**self.targets.sink_process_env(), **self.env}
        argv = [sys.executable, "-m", "cdcsync", "sink", "run"]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        pid_file = ManagedProcess(self.name, self.home).pid_file
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(PidRecord(self.process.pid, tuple(argv)).dumps(), encoding="utf-8")

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
    process = SinkProcess(pipeline, test_stack.settings.home)
    process.start()
    # The initial snapshots may still run: wait, but fail at once when a connector fails or the sink exits.
    assert_calendar_matches_rules(pipeline, timeout=300, sink=process)
    yield process
    if process.process is not None and process.process.poll() is None:
        assert process.stop() == 0, "the sink did not exit cleanly on SIGTERM"


CHANGE_FORMATS = ("json", "avro")


@dataclass(frozen=True)
class FormatPipeline:
    """The pipeline a core test runs on in one change format: its sink, its sources, and its names.

    JSON is the shipped pipeline (its connectors, topics and sink). Avro is a pipeline of its own on
    the same stack (``avro_pipeline``): the shipped definitions with the Avro overlay, under names,
    databases and topics of its own, through the stack's schema registry, into a calendar of its own.
    """

    change_format: str
    sink: SinkProcess
    sources: Sources
    connectors: Mapping[str, str]  # service -> connector name
    topic_prefixes: Mapping[str, str]  # service -> topic prefix
    dead_letter_topic: str
    group_id: str  # the sink's consumer group, which keys its offsets and ledger
    registry_url: str | None = None

    @property
    def targets(self) -> Targets:
        return self.sink.targets

    def topic(self, service: str, table: str) -> str:
        return f"{self.topic_prefixes[service]}.public.{table}"

    def topic_values(self, service: str, table: str) -> list[str]:
        """Every value of ``service``'s ``table`` topic, as compact JSON."""
        return topic_values(self.targets, self.topic(service, table), self.registry_url)


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


@pytest.fixture(scope="session")
def json_pipeline(sink: SinkProcess, pipeline: Targets) -> FormatPipeline:
    specs = load_connector_specs()
    return FormatPipeline(
        "json",
        sink,
        Sources(pipeline),
        connectors={spec.config["database.dbname"]: spec.name for spec in specs},
        topic_prefixes={spec.config["database.dbname"]: spec.topic_prefix for spec in specs},
        dead_letter_topic=pipeline.sink_settings().dead_letter_topic,
        group_id=pipeline.sink_settings().group_id,
    )


@pytest.fixture(scope="session")
def avro_pipeline(
    pipeline: Targets, test_stack: _TestStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FormatPipeline]:
    """The shipped definitions with the Avro overlay, on databases, topics and a calendar of their own, with
    a sink process of its own; removed at the end of the session."""
    settings = test_stack.everything()
    own = IsolatedPipeline(settings, tmp_path_factory.mktemp("avro-pipeline"), id=f"avro{uuid.uuid4().hex[:8]}")
    try:
        own.create(change_format=ChangeFormat.AVRO)
        with ConnectClient(settings.connect_url) as client:
            for spec in own.specs:
                apply_connector(client, spec)
        sink = SinkProcess(
            own.targets,
            settings.home,
            env={
                "CDCSYNC_SINK_GROUP": f"{own.id}-sink",  # the group_id below
                "CDCSYNC_DLQ_TOPIC": own.dead_letter_topic,
                "SCHEMA_REGISTRY_URL": settings.registry_url,
                "CDCSYNC_TOPIC_PREFIXES": ",".join(f"{s}={own.prefix(s)}" for s in SERVICE_DATABASES),
            },
            name=TEST_AVRO_SINK,
        )
        sink.start()
        assert_calendar_matches_rules(own.targets, timeout=300, sink=sink)
        yield FormatPipeline(
            "avro",
            sink,
            Sources(own.targets),
            connectors={service: own.spec(service).name for service in SERVICE_DATABASES},
            topic_prefixes={service: own.prefix(service) for service in SERVICE_DATABASES},
            dead_letter_topic=own.dead_letter_topic,
            group_id=f"{own.id}-sink",
            registry_url=settings.registry_url,
        )
        if sink.running():
            assert sink.stop() == 0, "the Avro pipeline's sink did not exit cleanly on SIGTERM"
    finally:
        own.close()


@pytest.fixture(params=CHANGE_FORMATS)
def pipe(request: pytest.FixtureRequest) -> FormatPipeline:
    """The pipeline in each change format: a test that takes it runs once per format."""
    pipeline: FormatPipeline = request.getfixturevalue(f"{request.param}_pipeline")
    return pipeline


@pytest.fixture
def isolated_pipeline(test_stack: _TestStack, tmp_path: Path) -> Iterator[Callable[..., IsolatedPipeline]]:
    """A factory of pipelines of their own (databases, connectors, topics, sink): see
    ``tests.support.isolated_pipeline``. Each is created by ``make(extra_windows=, overrides=)`` and
    removed after the test."""
    made: list[IsolatedPipeline] = []

    def make(extra_windows: int = 0, overrides: dict[str, str] | None = None) -> IsolatedPipeline:
        pipeline = IsolatedPipeline(test_stack.everything(), tmp_path / f"pipeline-{len(made)}")
        made.append(pipeline)
        pipeline.create(extra_windows, overrides)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()


@pytest.fixture
def sources(pipeline: Targets) -> Sources:
    return Sources(pipeline)


@pytest.fixture
def connect(pipeline: Targets) -> Iterator[ConnectClient]:
    with ConnectClient(pipeline.connect_url) as client:
        yield client


def topic_values(targets: Targets, topic: str, registry_url: str | None = None) -> list[str]:
    """Every message value in ``topic`` (single partition), read from the beginning, as compact JSON
    (Avro values decoded through the registry at ``registry_url``)."""
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
                    values.append(readable_value(message.value(), registry_url))
        return values
    finally:
        consumer.close()
