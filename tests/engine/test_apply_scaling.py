"""`cdcsync bench apply` in miniature: it builds calendars of the sizes asked, times the batches, cleans up."""

from __future__ import annotations

import psycopg
import pytest

from cdcsync.pipeline.bench.apply_scaling import measure_apply_scaling, render_apply_scaling

pytestmark = pytest.mark.postgres


def test_each_size_is_built_timed_and_dropped(admin_url: str) -> None:
    lines: list[str] = []
    result = measure_apply_scaling(admin_url, [4_200, 8_400], batch_changes=20, batches=2, say=lines.append)

    assert [size["calendar_rows"] for size in result["sizes"]] == [4_200, 8_400]
    for size in result["sizes"]:
        assert size["apply_s"]["p50"] > 0
        assert size["calendar_rows_written_per_batch"] > 0
        assert size["server_cpu_s_p50"] is not None  # the local stack's backend is readable
    assert "| 8,400 |" in render_apply_scaling(result)
    assert len(lines) == 2
    with psycopg.connect(admin_url) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bench_apply_%'").fetchall()
    assert left == []
