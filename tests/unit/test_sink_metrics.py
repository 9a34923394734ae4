"""The sink's lag computation, heartbeats, health verdicts and metric names (pure, no Kafka)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cdcsync.pipeline.cli import cli
from cdcsync.pipeline.errors import ConfigError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.status_report import render_sink_reading, sink_metrics_section
from cdcsync.sink.calendar_writer import BatchResult
from cdcsync.sink.health import Verdict, liveness, readiness
from cdcsync.sink.heartbeats import Heartbeat, decode_heartbeat, heartbeat_topic, source_of_topic
from cdcsync.sink.http_address import ListenAddress, parse_listen_address
from cdcsync.sink.http_server import HealthServer, HttpAddressInUse
from cdcsync.sink.lag import LagTracker, PartitionLag
from cdcsync.sink.metrics import METRIC_NAMES, PROCESS_METRIC_PREFIXES, ScrapeState, SinkMetrics
from cdcsync.sink.metrics_reader import read_sink_metrics
from cdcsync.sink.settings import SinkSettings

LECTURES = ("course.public.lectures", 0)
ASSIGNMENTS = ("assignment.public.assignments", 0)
T0 = 1_800_000_000.0


def tracker_at(applied: int, high: int) -> LagTracker:
    tracker = LagTracker(heartbeat_stale_after_s=30)
    tracker.assigned({LECTURES: applied})
    tracker.watermarks({LECTURES: (0, high)})
    return tracker


def only(tracker: LagTracker, now: float) -> PartitionLag:
    (lag,) = tracker.lags(now)
    return lag


def test_topic_names() -> None:
    assert source_of_topic("course.public.lectures") == "course"
    assert source_of_topic("my.prefix.public.lectures") == "my.prefix"
    assert heartbeat_topic("course") == "__debezium-heartbeat.course"


@pytest.mark.parametrize(
    "value",
    [b'{"ts_ms": 1800000000500}', b'{"schema": {}, "payload": {"ts_ms": 1800000000500}}'],
)
def test_heartbeat_decodes_with_or_without_schema(value: bytes) -> None:
    beat = decode_heartbeat("__debezium-heartbeat.course", value, written_at=T0 + 1)
    assert beat == Heartbeat("course", T0 + 0.5, T0 + 1)


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        ("course.public.lectures", b'{"ts_ms": 1}'),
        ("__debezium-heartbeat.course", b"not json"),
        ("__debezium-heartbeat.course", b'{"ts_ms": "soon"}'),
        ("__debezium-heartbeat.course", b'{"ts_ms": true}'),
        ("__debezium-heartbeat.course", None),
    ],
)
def test_what_is_not_a_heartbeat(topic: str, value: bytes | None) -> None:
    assert decode_heartbeat(topic, value, written_at=T0) is None


def test_pending_messages_lag_since_the_oldest_consumed_one() -> None:
    tracker = tracker_at(applied=10, high=15)
    tracker.consumed({LECTURES: T0})
    tracker.consumed({LECTURES: T0 + 3})  # a later batch: the oldest pending stays
    lag = only(tracker, now=T0 + 4)
    assert (lag.messages, lag.seconds) == (5, 4.0)


def test_applying_clears_pending_and_records_the_newest_commit() -> None:
    tracker = tracker_at(applied=10, high=15)
    tracker.consumed({LECTURES: T0})
    tracker.applied({LECTURES: 15}, {LECTURES: T0 - 0.2})
    lag = only(tracker, now=T0 + 100)
    assert lag.messages == 0
    assert lag.newest_applied_commit_age == pytest.approx(100.2)
    # caught up and no heartbeat: the sink cannot vouch for the source beyond its newest commit
    assert lag.seconds == pytest.approx(100.2)


def test_idle_caught_up_pipeline_with_live_heartbeats_lags_by_their_delivery_delay() -> None:
    tracker = tracker_at(applied=15, high=15)
    tracker.applied({LECTURES: 15}, {LECTURES: T0 - 600})
    tracker.heartbeats([Heartbeat("course", emitted_at=T0 + 590, written_at=T0 + 590.05)])
    lag = only(tracker, now=T0 + 599)
    assert lag.seconds == pytest.approx(0.05)
    assert lag.newest_applied_commit_age == pytest.approx(1199)


def test_a_heartbeat_read_late_still_measures_only_its_way_into_kafka() -> None:
    tracker = tracker_at(applied=15, high=15)
    tracker.heartbeats([Heartbeat("course", emitted_at=T0, written_at=T0 + 0.3)])  # the tail record, read at start
    assert only(tracker, now=T0 + 9).seconds == pytest.approx(0.3)


def test_stale_heartbeats_make_lag_grow_from_the_last_one_that_found_the_partition_caught_up() -> None:
    tracker = tracker_at(applied=15, high=15)
    tracker.heartbeats([Heartbeat("course", emitted_at=T0, written_at=T0)])
    assert only(tracker, now=T0 + 31).seconds == pytest.approx(31)


def test_a_heartbeat_does_not_complete_a_partition_that_is_behind() -> None:
    tracker = tracker_at(applied=10, high=15)
    tracker.applied({LECTURES: 10}, {LECTURES: T0})
    tracker.heartbeats([Heartbeat("course", emitted_at=T0 + 50, written_at=T0 + 50)])
    tracker.watermarks({LECTURES: (0, 16)})
    assert only(tracker, now=T0 + 60).seconds == pytest.approx(60)  # since the newest commit, not the heartbeat


def test_heartbeats_of_another_source_do_not_count() -> None:
    tracker = tracker_at(applied=15, high=15)
    tracker.heartbeats([Heartbeat("assignment", emitted_at=T0, written_at=T0)])
    assert only(tracker, now=T0 + 1).seconds is None


def test_unknown_watermark_or_start_means_unknown_lag() -> None:
    tracker = LagTracker()
    tracker.assigned({LECTURES: None})
    assert only(tracker, now=T0).messages is None
    tracker.watermarks({LECTURES: (4, 9)})  # nothing stored: the partition starts at its low watermark
    assert only(tracker, now=T0).messages == 5


def test_revoked_partitions_disappear() -> None:
    tracker = tracker_at(applied=1, high=1)
    tracker.assigned({ASSIGNMENTS: 3})
    assert [lag.topic for lag in tracker.lags(T0)] == [ASSIGNMENTS[0]]


def lag(messages: int, seconds: float) -> PartitionLag:
    return PartitionLag(*LECTURES, messages, seconds, None)


def test_readiness_reasons() -> None:
    assert readiness(True, 5, {}, [lag(0, 500.0)], max_lag_s=120) == Verdict(True, "ready")
    assert not readiness(False, 0, {}, [], max_lag_s=120).ok
    down = readiness(True, 5, {"calendar database": 1.0}, [], max_lag_s=120)
    assert down == Verdict(False, "not ready: calendar database unavailable")
    assert "no partitions assigned" in readiness(True, 0, {}, [], max_lag_s=120).reason
    behind = readiness(True, 5, {}, [lag(7, 121.0)], max_lag_s=120)
    assert not behind.ok
    assert "course.public.lectures[0] 121s (7 messages)" in behind.reason


def test_liveness() -> None:
    assert liveness(3.0, timeout_s=60).ok
    assert not liveness(61.0, timeout_s=60).ok


def scrape(metrics: SinkMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


@pytest.fixture
def metrics() -> SinkMetrics:
    tracker = tracker_at(applied=15, high=15)
    tracker.applied({LECTURES: 15}, {LECTURES: T0 - 1})
    tracker.heartbeats([Heartbeat("course", emitted_at=T0, written_at=T0)])
    state = ScrapeState(5, {"kafka": True, "calendar database": False}, {"calendar database": 2}, False, 0.1)
    return SinkMetrics(tracker, lambda: state)


def test_scrape_shows_every_declared_metric_and_no_other(metrics: SinkMetrics) -> None:
    committed = datetime.fromtimestamp(T0, UTC)
    metrics.batch_applied(BatchResult(4, 3, 3, 2, 1), 1, 0.02, {LECTURES: [committed, committed]}, applied_at=T0 + 0.3)
    samples = scrape(metrics)
    ours = {name for name in samples if not name.startswith(PROCESS_METRIC_PREFIXES)}
    ours -= {name for name in ours if name.endswith("_created")}
    assert ours == METRIC_NAMES
    assert any(name.startswith("process_") for name in samples)
    assert samples["cdcsync_sink_messages_total"] == [({}, 4.0)]
    assert samples["cdcsync_sink_dead_letters_total"] == [({}, 1.0)]
    assert samples["cdcsync_sink_reconnects_total"][0] == ({"dependency": "calendar database"}, 2.0)
    latency = {labels["le"]: value for labels, value in samples["cdcsync_sink_commit_to_apply_latency_seconds_bucket"]}
    assert (latency["0.25"], latency["0.5"]) == (0.0, 2.0)
    assert samples["cdcsync_sink_lag_messages"] == [({"topic": LECTURES[0], "partition": "0"}, 0.0)]


@pytest.mark.parametrize("raw", ["8090", "host:", "host:http", "host:70000"])
def test_bad_listen_addresses(raw: str) -> None:
    with pytest.raises(ValueError, match=r"host:port|out of range"):
        parse_listen_address(raw)


def test_listen_address() -> None:
    address = parse_listen_address("0.0.0.0:8090")
    assert address == ListenAddress("0.0.0.0", 8090)
    assert address.url == "http://127.0.0.1:8090"


def test_sink_http_setting() -> None:
    base = {"KAFKA_BOOTSTRAP_SERVERS": "k:1", "CDCSYNC_SINK_DB_URL": "u"}
    assert SinkSettings.from_env(base).http is None
    assert SinkSettings.from_env({**base, "CDCSYNC_SINK_HTTP": "127.0.0.1:18090"}).http == ListenAddress(
        "127.0.0.1", 18090
    )
    with pytest.raises(ConfigError, match="CDCSYNC_SINK_HTTP"):
        SinkSettings.from_env({**base, "CDCSYNC_SINK_HTTP": "18090"})


def test_stack_sink_port_follows_connect_unless_set() -> None:
    assert StackSettings.from_env({}).sink_http_port == 18090
    assert StackSettings.from_env({"CDCSYNC_CONNECT_PORT": "38083"}).sink_http_port == 38090
    assert StackSettings.from_env({"CDCSYNC_SINK_HTTP_PORT": "47190"}).sink_http_port == 47190
    with pytest.raises(ConfigError, match="CDCSYNC_SINK_HTTP_PORT"):
        StackSettings.from_env({"CDCSYNC_SINK_HTTP_PORT": "18083"})


@pytest.fixture
def server(metrics: SinkMetrics) -> Iterator[HealthServer]:
    server = HealthServer(
        ListenAddress("127.0.0.1", 0),
        metrics.registry,
        live=lambda: Verdict(True, "turning"),
        ready=lambda: Verdict(False, "not ready: calendar database unavailable"),
    )
    server.start()
    yield server
    server.close()


def get(server: HealthServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_http_endpoints(server: HealthServer) -> None:
    assert get(server, "/livez") == (200, "turning\n")
    assert get(server, "/readyz") == (503, "not ready: calendar database unavailable\n")
    status, body = get(server, "/metrics")
    assert status == 200
    assert "cdcsync_sink_lag_seconds{" in body
    assert get(server, "/nope")[0] == 404


def test_a_taken_port_stops_the_sink_with_exit_code_2(server: HealthServer, metrics: SinkMetrics) -> None:
    second = HealthServer(
        ListenAddress("127.0.0.1", server.port),
        metrics.registry,
        live=lambda: Verdict(True, ""),
        ready=lambda: Verdict(True, ""),
    )
    with pytest.raises(HttpAddressInUse, match=f"cannot listen on 127.0.0.1:{server.port}") as raised:
        second.start()
    assert raised.value.exit_code == 2


def test_sink_run_help_names_the_http_variable() -> None:
    result = CliRunner().invoke(cli, ["sink", "run", "--help"])
    assert result.exit_code == 0
    assert "--http HOST:PORT" in result.output
    assert "CDCSYNC_SINK_HTTP" in result.output


def test_newest_commit_stored_with_the_offsets_counts_after_a_restart() -> None:
    tracker = LagTracker()
    tracker.assigned({LECTURES: 15}, {LECTURES: T0 - 30})
    tracker.watermarks({LECTURES: (0, 15)})
    lag = only(tracker, now=T0)
    assert lag.newest_applied_commit_age == pytest.approx(30)
    assert lag.seconds == pytest.approx(30)  # no heartbeat yet: complete up to that commit, no further


def test_status_reads_and_renders_what_the_sink_serves(server: HealthServer) -> None:
    reading = read_sink_metrics(f"http://127.0.0.1:{server.port}")
    assert not reading.ready
    assert reading.readiness == "not ready: calendar database unavailable"
    (partition,) = reading.partitions
    assert (partition.topic, partition.lag_messages) == (LECTURES[0], 0)
    assert set(reading.heartbeat_ages) == {"course"}
    assert reading.reconnects == {"calendar database": 2}
    lines = render_sink_reading(reading)
    assert lines[0].endswith("; not ready: calendar database unavailable):")
    assert "course.public.lectures[0]" in lines[1]
    assert "source heartbeats: course" in lines[2]


def test_status_says_when_the_sink_does_not_answer() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    lines = sink_metrics_section(f"http://127.0.0.1:{port}")
    assert lines[1] == "  unavailable: ConnectionError"
