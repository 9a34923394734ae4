"""The sink's /metrics, /livez and /readyz on a real pipeline.

Its own sink process, consumer group, dead-letter topic and fresh calendar database,
serving HTTP on a port derived from the test stack's (its background sink's + 1).
It reads the shared change topics and writes one no-op update into the course service.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.targets import Targets
from cdcsync.sink.calendar_database import APPLICATION_NAME
from cdcsync.sink.source_tables import SOURCE_TABLES
from tests.integration.conftest import SinkProcess, until

LECTURES = "course.public.lectures"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclasses.dataclass
class MeteredSink:
    process: SinkProcess
    url: str
    database: str

    def samples(self) -> Samples | None:
        """Every sample of /metrics by (name, sorted labels); None while it does not answer."""
        try:
            response = requests.get(f"{self.url}/metrics", timeout=5)
        except requests.ConnectionError:
            return None
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def partition_value(self, name: str, topic: str) -> float | None:
        samples = self.samples() or {}
        return samples.get((name, (("partition", "0"), ("topic", topic))))

    def get(self, path: str) -> tuple[int, str]:
        response = requests.get(f"{self.url}{path}", timeout=5)
        return response.status_code, response.text.strip()


@pytest.fixture
def metered_sink(pipeline: Targets, fresh_database: str, tmp_path: Path) -> Iterator[MeteredSink]:
    suffix = uuid.uuid4().hex[:10]
    group, dead_letters = f"test-metrics-{suffix}", f"test-metrics-dlq-{suffix}"
    port = StackSettings.from_env().sink_http_port + 1
    targets = pipeline.with_values(CALENDAR_DB_URL=fresh_database, CDCSYNC_SINK_DB_URL=fresh_database)
    env = {"CDCSYNC_SINK_GROUP": group, "CDCSYNC_DLQ_TOPIC": dead_letters, "CDCSYNC_SINK_HTTP": f"127.0.0.1:{port}"}
    process = SinkProcess(targets, tmp_path, env=env)
    process.start()
    try:
        yield MeteredSink(process, f"http://127.0.0.1:{port}", str(conninfo_to_dict(fresh_database)["dbname"]))
    finally:
        if process.process is not None and process.process.poll() is None:
            process.process.kill()
            process.process.wait(timeout=30)
        AdminClient({"bootstrap.servers": pipeline.kafka_bootstrap_servers}).delete_topics([dead_letters])


def touch_a_lecture(targets: Targets) -> None:
    """A committed update the sink must apply (the calendar stays equal to the rules)."""
    with psycopg.connect(targets.course_db_url, autocommit=True) as conn:
        conn.execute("UPDATE public.lectures SET title = title WHERE id = (SELECT min(id) FROM public.lectures)")


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.fault
def test_metrics_track_lag_and_readiness_follows_the_calendar_database(
    metered_sink: MeteredSink, pipeline: Targets, fresh_database: str
) -> None:
    sink = metered_sink
    topics = {table.default_topic() for table in SOURCE_TABLES}

    def caught_up() -> bool | None:
        lags = [sink.partition_value("cdcsync_sink_lag_messages", topic) for topic in topics]
        return True if all(lag == 0 for lag in lags) else None

    until("lag metrics of every change topic, caught up", caught_up, timeout=180)
    # Idle and caught up: with the connectors' heartbeats, lag in seconds is near 0, not the age of the last change.
    idle_lag = until(
        "lag in seconds near 0 on the idle pipeline",
        lambda: (
            lag
            if (lag := sink.partition_value("cdcsync_sink_lag_seconds", LECTURES)) is not None and lag < 2.0
            else None
        ),
        timeout=60,
    )
    assert sink.get("/readyz") == (200, "ready")
    assert sink.get("/livez")[0] == 200

    latency_count = "cdcsync_sink_commit_to_apply_latency_seconds_count"
    before = sink.partition_value(latency_count, LECTURES) or 0.0
    touch_a_lecture(pipeline)
    until(
        "the latency histogram to count the change",
        lambda: (sink.partition_value(latency_count, LECTURES) or 0) > before or None,
        timeout=60,
    )
    age = sink.partition_value("cdcsync_sink_newest_applied_commit_age_seconds", LECTURES)
    assert age is not None and age < 30

    admin = make_conninfo(fresh_database, dbname="postgres")
    database = sql.Identifier(sink.database)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(database))
        try:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                (sink.database, APPLICATION_NAME),
            )
            _, reason = until(
                "/readyz to answer 503", lambda: r if (r := sink.get("/readyz"))[0] == 503 else None, timeout=30
            )
            assert "calendar database unavailable" in reason
            assert sink.get("/livez")[0] == 200  # waiting an outage out is not a reason to restart
            samples = sink.samples() or {}
            assert samples[("cdcsync_sink_dependency_up", (("dependency", "calendar database"),))] == 0
        finally:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(database))
    started = time.monotonic()
    until("/readyz to answer 200 again", lambda: sink.get("/readyz")[0] == 200 or None, timeout=60)
    samples = sink.samples() or {}
    assert samples[("cdcsync_sink_reconnects_total", (("dependency", "calendar database"),))] >= 1
    assert sink.process.process is not None and sink.process.process.poll() is None, "the sink exited"
    assert sink.process.stop() == 0
    print(f"\nidle lag {idle_lag:.2f}s; ready again {time.monotonic() - started:.1f}s after the database was back")
