"""verify finds drift in the calendar, and --repair fixes exactly it through Debezium resyncs."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner

from cdcsync.pipeline.cli import cli
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from tests.conftest import _TestStack
from tests.integration.conftest import SinkProcess, assert_calendar_matches_rules

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_verify_reports_drift_and_repair_fixes_it(sink: SinkProcess, test_stack: _TestStack) -> None:
    assert_calendar_matches_rules(sink.targets)
    admin = StackEndpoints(test_stack.settings).admin_url("calendar")
    with psycopg.connect(admin) as conn:  # drift made behind the sink's back
        conn.execute(
            "UPDATE calendar.calendar_entries SET title = title || ' (stale)'"
            " WHERE (user_id, entry_key) = (SELECT user_id, entry_key FROM calendar.calendar_entries"
            " WHERE kind = 'lecture' ORDER BY user_id, entry_key LIMIT 1)"
        )
        conn.execute(
            "DELETE FROM calendar.calendar_entries WHERE (user_id, entry_key) = (SELECT user_id, entry_key"
            " FROM calendar.calendar_entries WHERE kind = 'assignment' ORDER BY user_id DESC, entry_key LIMIT 1)"
        )
        conn.execute(
            "INSERT INTO calendar.calendar_entries SELECT 987654321, entry_key, kind, course_id, course_title, title,"
            " starts_at, ends_at, location, details, max_score, source_committed_at, synced_at"
            " FROM calendar.calendar_entries WHERE kind = 'attendance' LIMIT 1"
        )

    runner = CliRunner()
    found = runner.invoke(cli, ["verify", "--json", "--bucket-users", "100"])
    assert found.exit_code == 1
    report = json.loads(found.stdout.strip().splitlines()[-1])
    assert (len(report["missing"]), len(report["extra"]), len(report["wrong"])) == (1, 1, 1)
    assert report["wrong"][0]["columns"] == ["title"]
    assert report["extra"][0]["user_id"] == 987654321
    assert report["differing_buckets"] >= 2

    repaired = runner.invoke(cli, ["verify", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "resync course.lectures" in repaired.output
    assert repaired.output.strip().splitlines()[-1].endswith(": OK")
    assert runner.invoke(cli, ["verify"]).exit_code == 0
