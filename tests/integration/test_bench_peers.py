"""The bench's peers work on sources of a test's own (the demo data), and leave nothing behind.

Each peer loads the sources (Flink's calendar must equal the rules), shows a committed lecture title
in its target, and on ``stop`` removes what it made outside its target: the JDBC sink its connector
and consumer group, Flink its processes, replication slots and publications. The JDBC sink test runs
in ``make test`` (~30 s on a running stack); the Flink one needs the Flink venv (``make bench-peers``)
and runs with ``pytest -m flink`` (2-3 min on 2 busy cores, most of it the JVM's start and planning).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import requests
from confluent_kafka.admin import AdminClient

from cdcsync.pipeline.bench.peers.flink_sql import FlinkSqlPeer
from cdcsync.pipeline.bench.peers.jdbc_sink import JdbcSinkPeer
from cdcsync.pipeline.verification.bucketed import verify_bucketed
from cdcsync.pipeline.verification.reports import render_report
from tests.support.bench_peer_run import WITH_SCHEMAS, drop_target, peer_context, probe_title
from tests.support.isolated_pipeline import IsolatedPipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_jdbc_sink_peer_mirrors_the_topics_and_cleans_up(
    isolated_pipeline: Callable[..., IsolatedPipeline], tmp_path: Path
) -> None:
    pipe = isolated_pipeline(overrides=WITH_SCHEMAS)
    ctx = peer_context(pipe, tmp_path / "jdbc")
    peer = JdbcSinkPeer()
    try:
        peer.start(ctx)
        peer.wait_ready(180)
        assert peer.target_rows() > 0
        assert probe_title(peer, ctx) < 30
        with psycopg.connect(ctx.source_urls["course"], autocommit=True) as conn:
            conn.execute(
                "DELETE FROM public.enrollments WHERE (course_id, user_id) IN"
                " (SELECT course_id, user_id FROM public.enrollments ORDER BY 1, 2 LIMIT 1)"
            )
        peer.wait_ready(60)  # deletes mirrored: the counts match again
    finally:
        peer.stop()
        drop_target(ctx)
    connectors = requests.get(f"{ctx.connect_url}/connectors", timeout=10).json()
    assert not [name for name in connectors if ctx.run_id.replace("_", "-") in name]
    admin = AdminClient({"bootstrap.servers": ctx.kafka_bootstrap})
    groups = admin.list_consumer_groups(request_timeout=30).result(timeout=60)  # never wait unbounded
    assert not [g.group_id for g in groups.valid if ctx.run_id.replace("_", "-") in g.group_id]
    assert peer.stats()["initial_load_events_per_s"]


@pytest.mark.flink  # ~2-3 min on 2 busy cores, most of it the JVM's start and the job's planning
def test_flink_sql_peer_computes_the_calendar_and_cleans_up(
    isolated_pipeline: Callable[..., IsolatedPipeline], tmp_path: Path
) -> None:
    pipe = isolated_pipeline()
    ctx = peer_context(pipe, tmp_path / "flink", apply=False)
    peer = FlinkSqlPeer()
    try:
        peer.start(ctx)
        peer.wait_ready(300)
        assert peer.target_rows() == peer.expected_rows() > 0
        # The loaded calendar equals the rules, row by row and value by value.
        report = verify_bucketed(pipe.targets.with_values(CALENDAR_DB_URL=ctx.target_url)).report
        assert report.clean, render_report(report, 5)
        rss = peer.rss_bytes()
        assert rss is not None and rss > 0
        assert probe_title(peer, ctx) < 30
        with psycopg.connect(ctx.source_urls["course"], autocommit=True) as conn:
            conn.execute(
                "UPDATE public.enrollments SET status = 'dropped' WHERE (course_id, user_id) IN"
                " (SELECT course_id, user_id FROM public.enrollments WHERE status = 'active' LIMIT 1)"
            )
        with psycopg.connect(ctx.source_urls["assignment"], autocommit=True) as conn:  # a DELETE carries the key only
            conn.execute("DELETE FROM public.assignments WHERE id = (SELECT min(id) FROM public.assignments)")
        peer.wait_ready(60)  # the dropped user's and the deleted assignment's rows retracted: counts match again
    finally:
        peer.stop()
        drop_target(ctx)
    for service in ("course", "attendance", "assignment"):
        with psycopg.connect(ctx.source_urls[service], autocommit=True) as conn:
            assert not conn.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE %s", (f"bflink_{ctx.run_id}%",)
            ).fetchall()
            assert not conn.execute(
                "SELECT pubname FROM pg_publication WHERE pubname LIKE %s", (f"bflink_{ctx.run_id}%",)
            ).fetchall()
    assert peer.rss_bytes() is None
    assert peer.stats()["initial_load_rows_per_s"]
