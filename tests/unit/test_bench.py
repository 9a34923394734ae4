"""The bench's pure parts: its data shape, its percentiles and its table."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cdcsync.pipeline.bench.dataset import USERS_PER_COURSE, Shape
from cdcsync.pipeline.bench.freshness import FreshnessPlan, histogram_quantile, latency_series, percentile, summary
from cdcsync.pipeline.bench.peer import PeerStalled, ProgressWatch
from cdcsync.pipeline.bench.probe import ProbeResult
from cdcsync.pipeline.bench.report import render_freshness, render_stages, render_table


def test_a_million_source_rows_make_about_ten_million_calendar_rows() -> None:
    shape = Shape.for_source_rows(1_000_000)
    assert shape.source_rows >= 1_000_000
    assert shape.calendar_rows == 10 * shape.source_rows


def test_the_users_of_a_course_are_distinct() -> None:
    shape = Shape(courses=500)
    for course in range(1, shape.courses + 1):
        users = {shape.user_of(course, slot) for slot in range(USERS_PER_COURSE)}
        assert len(users) == USERS_PER_COURSE
        assert all(1 <= user <= shape.users for user in users)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert summary([]) == {"p50": None, "p95": None, "p99": None, "max": None}


def test_latency_series_is_in_commit_order_with_timeouts_as_none() -> None:
    started = 1_000.0
    results = [  # as _probe_while yields them: in the order they became visible or timed out
        ProbeResult(1, "b", started + 1.004, 0.2),
        ProbeResult(2, "a", started + 0.5, 1.23456),
        ProbeResult(3, "c", started + 1.5, None),
    ]
    assert latency_series(results, started) == [[0.5, 1.23], [1.0, 0.2], [1.5, None]]
    assert latency_series([], started) == []


def test_the_warm_up_runs_at_the_highest_rate() -> None:
    plan = FreshnessPlan(rates=(10.0, 3000.0, 300.0), duration_s=30, probe_interval_s=0.5, probe_timeout_s=30,
                         drain_timeout_s=180, warmup_s=30)  # fmt: skip
    assert plan.warmup_rate == 3000.0
    assert FreshnessPlan((), 1, 1, 1, 1).warmup_rate == 0.0


def test_histogram_quantile_interpolates_within_a_bucket() -> None:
    buckets = {0.01: 0.0, 0.1: 10.0, 1.0: 20.0, math.inf: 20.0}
    assert histogram_quantile(buckets, 0.5) == 0.1
    assert histogram_quantile(buckets, 0.25) == pytest.approx(0.055)
    assert histogram_quantile({math.inf: 0.0}, 0.5) is None


def _result() -> dict[str, Any]:
    fresh = {
        "rate_per_s": 10.0,
        "commit_to_visible_s": {"p50": 0.05, "p95": 0.08, "p99": 0.1, "max": 0.2},
        "timeouts": 0,
        "probe_timeout_s": 30.0,
        "achieved_rate_per_s": 9.9,
        "probes": 60,
        "drain_s": 0.04,
        "stages": {
            "source_commit_to_kafka_append_s": {"p50": 0.01, "p99": 0.02},
            "kafka_append_to_sink_receive_s": {"p50": 0.005, "p99": 0.01},
            "sink_receive_to_calendar_commit_p50_s": 0.02,
            "kafka_append_to_calendar_commit_s": {"p50": 0.025, "p99": 0.05},
            "calendar_commit_to_visible_s": {"p50": 0.004, "p99": 0.006},
        },
    }
    ceiling = {"rows": 1000, "seconds": 0.01, "rows_per_s": 100_000.0, "sink_ratio": 0.5}
    return {
        "plan": {"rates_per_s": [10.0, 300.0]},
        "peers": [
            {
                "name": "cdcsync",
                "status": "measured",
                "initial_load": {"rows_per_s": 50_000.0, "target_rows": 1000, "seconds": 0.02, "peak_rss_bytes": 2**20},
                "freshness": [fresh, {"rate_per_s": 300.0, "skipped": "not run: ..."}],
                "backlog": {"calendar_rows_per_s": 50_000.0, "sink_peak_rss_bytes": 2**21, "ceilings": {"x": ceiling}},
            },
            {"name": "Flink SQL", "status": "unavailable", "reason": "no JVM"},
        ],
    }


def test_the_table_has_a_row_per_peer_and_ceiling_and_says_why_a_peer_did_not_run() -> None:
    table = render_table(_result())
    lines = table.splitlines()
    assert lines[0].startswith("| pipeline | initial load rows/s | 10/s p50 / p99 ms | 300/s")
    assert "| cdcsync | 50,000 | 50 / 100 | not run | 50,000 | 2 |" in table
    assert "| Flink SQL |" in table and "unavailable: no JVM" in table
    assert "cdcsync/ceiling = 0.5" in table
    assert "| 10/s | 10 (20) | 5 (10) | 20 | 25 (50) | 4 (6) |" in render_stages(_result())


def test_the_freshness_table_has_every_rate_of_every_peer() -> None:
    table = render_freshness(_result())
    assert "| cdcsync | 10 | 9.9 | 50 | 80 | 100 | 200 | 60 (0) | 40 |" in table
    assert "| cdcsync | 300 | not run: ... |" in table


def test_a_peer_whose_target_stops_changing_short_of_its_goal_has_stalled() -> None:
    watch = ProgressWatch("peer", stall_s=60)
    watch.note(0, 100, now=0.0)
    watch.note(0, 100, now=59.0)  # nothing yet, not for long enough
    watch.note(40, 100, now=100.0)  # progress restarts the clock
    watch.note(40, 100, now=159.0)
    with pytest.raises(PeerStalled, match="stalled at 40 of 100 rows: no change for 60s"):
        watch.note(40, 100, now=160.0)


def test_a_peer_s_progress_reads_as_the_count_of_its_goal() -> None:
    watch = ProgressWatch("peer", stall_s=60)
    assert watch.reached() == "no count taken"
    watch.note(6_505_740, 10_000_200, now=0.0)
    assert watch.reached() == "6,505,740 of 10,000,200 rows"


def test_a_peer_at_its_goal_has_not_stalled() -> None:
    watch = ProgressWatch("peer", stall_s=1)
    watch.note(100, 100, now=0.0)
    watch.note(100, 100, now=10.0)
