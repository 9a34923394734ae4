"""The initial-snapshot verdict, pure: notifications and the stored offset in, complete/running/interrupted out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.debezium.initial_snapshot import (
    SnapshotKind,
    StoredOffset,
    classify_offset,
    decide,
    reports_initial_snapshot,
)
from cdcsync.debezium.signals import execute_snapshot_signal, is_whole_table_signal
from cdcsync.debezium.snapshot_notifications import (
    INCREMENTAL_SNAPSHOT,
    INITIAL_SNAPSHOT,
    SnapshotNotification,
    parse_any_notification,
    parse_notification,
)
from cdcsync.pipeline.sources_commands import snapshot

COURSE = next(s for s in load_connector_specs() if s.name == "cdcsync-course")
TABLES = ("public.courses", "public.lectures", "public.enrollments")
WHOLE = "full-5e0f6c1c-0000-4000-8000-000000000001"


def initial(kind: str, connector: str = "course", **data: str) -> SnapshotNotification:
    return SnapshotNotification(f"n-{kind}", kind, connector, data, INITIAL_SNAPSHOT)


def scanned(table: str, status: str = "SUCCEEDED") -> SnapshotNotification:
    # Debezium names the table with its database in front in the initial snapshot's notifications.
    return initial("TABLE_SCAN_COMPLETED", scanned_collection=f"course.{table}", status=status)


def incremental(kind: str, signal_id: str = WHOLE, **data: str) -> SnapshotNotification:
    return SnapshotNotification(signal_id, kind, "course", data, INCREMENTAL_SNAPSHOT)


def verdict(
    *notifications: SnapshotNotification, offset: StoredOffset = StoredOffset.POSITIONED, running: bool = True
) -> tuple[SnapshotKind, tuple[str, ...]]:
    state = decide(COURSE, notifications, offset, running)
    return state.kind, state.tables


def test_a_completed_snapshot_is_complete_and_later_restarts_skip_it() -> None:
    history = [initial("STARTED"), *(scanned(t) for t in TABLES), initial("COMPLETED"), initial("SKIPPED")]
    assert verdict(*history) == (SnapshotKind.COMPLETE, ())


def test_a_snapshot_under_way_is_running_with_the_tables_still_to_scan() -> None:
    history = [initial("STARTED"), initial("IN_PROGRESS"), scanned("public.courses"), initial("IN_PROGRESS")]
    assert verdict(*history, offset=StoredOffset.NO_POSITION) == (
        SnapshotKind.RUNNING,
        ("public.lectures", "public.enrollments"),
    )


def test_the_bad_case_a_restart_that_skipped_an_unfinished_snapshot_is_interrupted() -> None:
    # Deleted and re-created mid-snapshot: the stored offset was the STARTED notification's empty one,
    # so the new task skipped the snapshot. By now streaming has moved the offset on: it looks healthy.
    history = [initial("STARTED"), scanned("public.courses"), initial("IN_PROGRESS"), initial("SKIPPED")]
    state = decide(COURSE, history, StoredOffset.POSITIONED, True)
    assert (state.kind, state.tables) == (SnapshotKind.INTERRUPTED, ("public.lectures", "public.enrollments"))
    assert "SKIPPED" in state.cause
    assert state.line().startswith("cdcsync-course: initial snapshot interrupted (public.lectures, public.enrollments)")
    assert "cdcsync snapshot --incomplete" in state.line()


def test_the_good_case_debezium_reruns_the_snapshot_and_completes_it() -> None:
    history = [initial("STARTED"), initial("IN_PROGRESS"), initial("ABORTED"), initial("STARTED")]
    assert verdict(*history)[0] is SnapshotKind.RUNNING
    assert verdict(*history, *(scanned(t) for t in TABLES), initial("COMPLETED")) == (SnapshotKind.COMPLETE, ())


@pytest.mark.parametrize(
    ("offset", "kind"),
    [
        (StoredOffset.SNAPSHOT_UNFINISHED, SnapshotKind.RUNNING),  # Debezium redoes it when the task runs
        (StoredOffset.NONE, SnapshotKind.RUNNING),
        (StoredOffset.NO_POSITION, SnapshotKind.INTERRUPTED),
        (StoredOffset.POSITIONED, SnapshotKind.INTERRUPTED),
    ],
)
@pytest.mark.parametrize("running", [True, False])
def test_an_aborted_snapshot_with_no_new_run_depends_on_what_debezium_will_find(
    offset: StoredOffset, kind: SnapshotKind, running: bool
) -> None:
    history = [initial("STARTED"), scanned("public.courses"), initial("ABORTED")]
    assert verdict(*history, offset=offset, running=running) == (kind, ("public.lectures", "public.enrollments"))


def test_a_failed_table_scan_does_not_count() -> None:
    history = [initial("STARTED"), scanned("public.courses", "SQL_EXCEPTION"), initial("SKIPPED")]
    assert verdict(*history)[1] == TABLES


def test_a_stopped_task_mid_snapshot_with_no_markers_is_interrupted_before_it_restarts() -> None:
    history = [initial("STARTED"), initial("IN_PROGRESS")]
    assert verdict(*history, offset=StoredOffset.NO_POSITION, running=False)[0] is SnapshotKind.INTERRUPTED
    assert verdict(*history, offset=StoredOffset.POSITIONED, running=False)[0] is SnapshotKind.INTERRUPTED
    # With snapshot_completed=false stored, or nothing stored, Debezium redoes it: the good case.
    assert verdict(*history, offset=StoredOffset.SNAPSHOT_UNFINISHED, running=False)[0] is SnapshotKind.RUNNING
    assert verdict(*history, offset=StoredOffset.NONE, running=False)[0] is SnapshotKind.RUNNING


def test_whole_table_incremental_snapshots_after_the_interruption_recover_it() -> None:
    history = [initial("STARTED"), scanned("public.courses"), initial("SKIPPED")]
    lectures = incremental("TABLE_SCAN_COMPLETED", scanned_collection="public.lectures", status="SUCCEEDED")
    enrollments = incremental("TABLE_SCAN_COMPLETED", "full-2", scanned_collection="public.enrollments", status="EMPTY")
    assert verdict(*history, lectures) == (SnapshotKind.INTERRUPTED, ("public.enrollments",))
    assert verdict(*history, lectures, enrollments)[0] is SnapshotKind.COMPLETE
    # A filtered resync (--where) re-sends only some rows; one from before the interruption proves nothing.
    filtered = incremental("TABLE_SCAN_COMPLETED", "9d5c", scanned_collection="public.enrollments", status="SUCCEEDED")
    assert verdict(*history, lectures, filtered)[1] == ("public.enrollments",)
    assert verdict(enrollments, lectures, *history)[1] == ("public.lectures", "public.enrollments")


def test_other_connectors_notifications_are_ignored() -> None:
    history = [initial("STARTED"), initial("SKIPPED", connector="attendance"), initial("COMPLETED", connector="x")]
    assert verdict(*history)[0] is SnapshotKind.RUNNING


@pytest.mark.parametrize(
    ("offset", "running", "kind"),
    [
        (StoredOffset.NONE, True, SnapshotKind.RUNNING),
        (StoredOffset.NONE, False, SnapshotKind.RUNNING),
        (StoredOffset.SNAPSHOT_UNFINISHED, True, SnapshotKind.RUNNING),
        (StoredOffset.POSITIONED, True, SnapshotKind.COMPLETE),
        (StoredOffset.NO_POSITION, True, SnapshotKind.INTERRUPTED),
        (StoredOffset.NO_POSITION, False, SnapshotKind.INTERRUPTED),
    ],
)
def test_without_notifications_the_stored_offset_decides(
    offset: StoredOffset, running: bool, kind: SnapshotKind
) -> None:
    assert verdict(offset=offset, running=running)[0] is kind


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        ({}, StoredOffset.NO_POSITION),
        ({"ts_usec": 0}, StoredOffset.NO_POSITION),
        (
            {"lsn": 1, "snapshot": "INITIAL", "snapshot_completed": False, "last_snapshot_record": False},
            StoredOffset.SNAPSHOT_UNFINISHED,
        ),
        (
            {"lsn": 1, "snapshot": "INITIAL", "snapshot_completed": False, "last_snapshot_record": True},
            StoredOffset.POSITIONED,
        ),
        ({"lsn": 1, "lsn_proc": 1, "ts_usec": 5}, StoredOffset.POSITIONED),
    ],
)
def test_stored_offsets(offset: dict[str, Any], expected: StoredOffset) -> None:
    stored: list[dict[str, Any]] = [
        {"partition": {"server": "other"}, "offset": {"lsn": 9}},
        {"partition": {"server": "course"}, "offset": offset},
    ]
    assert classify_offset(stored, "course") is expected
    assert classify_offset(stored[:1], "course") is StoredOffset.NONE


def test_initial_snapshot_notifications_parse_and_stay_out_of_incremental_waits() -> None:
    raw = json.dumps(
        {
            "id": "c4f6",
            "aggregate_type": "Initial Snapshot",
            "type": "TABLE_SCAN_COMPLETED",
            "additional_data": {"connector_name": "course", "scanned_collection": "course.public.courses"},
            "timestamp": 1,
        }
    ).encode()
    parsed = parse_any_notification(raw)
    assert parsed is not None and parsed.aggregate == INITIAL_SNAPSHOT and parsed.scanned_table
    assert parse_notification(raw) is None


def test_only_a_snapshot_of_every_row_gets_a_whole_table_signal_id() -> None:
    whole = execute_snapshot_signal("public.lectures")
    assert is_whole_table_signal(whole.id) and len(whole.id) <= 42
    assert not is_whole_table_signal(execute_snapshot_signal("public.lectures", "id < 3").id)


def test_only_debezium_postgresql_connectors_with_sink_notifications_are_judged() -> None:
    assert all(reports_initial_snapshot(spec) for spec in load_connector_specs())
    silent = ConnectorSpec(COURSE.name, {**COURSE.config, "notification.enabled.channels": "log"})
    no_data = ConnectorSpec(COURSE.name, {**COURSE.config, "snapshot.mode": "no_data"})
    other = ConnectorSpec("a-sink", {"connector.class": "org.example.JdbcSinkConnector"})
    assert not any(reports_initial_snapshot(spec) for spec in (silent, no_data, other))


@pytest.mark.parametrize(
    "args", [[], ["--incomplete", "--table", "course.courses"], ["--incomplete", "--where", "id < 3"]]
)
def test_snapshot_takes_a_table_or_incomplete(args: list[str]) -> None:
    result = CliRunner().invoke(snapshot, args)
    assert result.exit_code == 2
    assert "--incomplete" in result.stderr
