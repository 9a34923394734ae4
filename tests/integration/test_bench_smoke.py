"""``cdcsync bench run --smoke`` works: it runs on the test stack, prints the table and writes valid JSON with a
row for cdcsync and one for every peer (measured, or the reason it was not). Nothing here checks a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from cdcsync.pipeline.bench.dataset import Shape
from cdcsync.pipeline.bench.peer import PEER_CLASSES
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from tests.conftest import _TestStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_smoke_writes_every_peer(test_stack: _TestStack, tmp_path: Path) -> None:
    settings = test_stack.everything()
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "cdcsync", "bench", "run", "--smoke", "--json", str(out)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))

    peers = {peer["name"]: peer for peer in result["peers"]}
    assert len(result["peers"]) == 1 + len(PEER_CLASSES)
    for peer in result["peers"]:
        assert peer["status"] == "measured" or peer["reason"], peer
        if peer["status"] != "measured":
            assert peer["reason"] in done.stdout  # the table says why too
    cdcsync = peers["cdcsync"]
    assert cdcsync["status"] == "measured", cdcsync.get("reason")
    # The initial load is complete and exact in size: every calendar row of the smoke shape.
    assert cdcsync["initial_load"]["target_rows"] == Shape.for_source_rows(result["plan"]["source_rows"]).calendar_rows
    (fresh,) = cdcsync["freshness"]
    assert fresh["probes"] > 0 and fresh["commit_to_visible_s"]["p50"] is not None
    assert set(fresh["stages"]) >= {"source_commit_to_kafka_append_s", "kafka_append_to_calendar_commit_s"}
    backlog = cdcsync["backlog"]
    assert backlog["calendar_rows_per_s"] and backlog["sink_peak_rss_bytes"]
    assert set(backlog["ceilings"]) == {"server_insert_select", "client_copy_upsert"}
    assert "| pipeline |" in done.stdout

    # The run removed what it created.
    with psycopg.connect(StackEndpoints(settings).admin_url(), autocommit=True) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{result['run_id']}%",))
        assert left.fetchall() == []
