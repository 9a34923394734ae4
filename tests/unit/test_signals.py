"""Signal tables and snapshot signals, pure parts: payloads, table lookup, publications, notifications."""

from __future__ import annotations

import json

import pytest

from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.debezium.publications import (
    create_publication_statement,
    publication_tables,
    set_publication_tables_statement,
)
from cdcsync.debezium.signals import (
    MAX_DATA,
    SIGNAL_SCHEMA,
    SIGNAL_TABLE,
    Signal,
    execute_snapshot_signal,
    find_captured_table,
    signal_table,
)
from cdcsync.debezium.snapshot_notifications import (
    SnapshotNotFinished,
    SnapshotNotification,
    parse_notification,
    snapshot_outcome,
)


def _spec(service: str) -> ConnectorSpec:
    return next(s for s in load_connector_specs() if s.config["database.dbname"] == service)


# -- the connector definitions ------------------------------------------------------------------------


@pytest.mark.parametrize("spec", load_connector_specs(), ids=lambda s: s.name)
def test_every_connector_reads_signals_from_its_own_table(spec: ConnectorSpec) -> None:
    # PostgreSQL's format for signal.data.collection is <schema>.<table>.
    assert signal_table(spec) == f"{SIGNAL_SCHEMA}.{SIGNAL_TABLE}"
    assert "source" in spec.config["signal.enabled.channels"].split(",")
    assert int(spec.config["incremental.snapshot.chunk.size"]) > 0
    assert spec.config["notification.enabled.channels"] == "sink"
    assert spec.config["notification.sink.topic.name"]
    # The signal table is not a captured service table: no topic the sink reads comes from it.
    assert not any(t.startswith(f"{SIGNAL_SCHEMA}.") for t in spec.tables)


def test_the_publication_holds_the_captured_tables_the_signal_table_and_the_heartbeat_table() -> None:
    spec = _spec("course")
    assert publication_tables(spec) == (
        "cdcsync_signal.debezium_heartbeat",
        "cdcsync_signal.debezium_signal",
        "public.courses",
        "public.enrollments",
        "public.lectures",
    )
    assert create_publication_statement(spec).as_string(None) == (
        'CREATE PUBLICATION "cdcsync_course" FOR TABLE "cdcsync_signal"."debezium_heartbeat", '
        '"cdcsync_signal"."debezium_signal", '
        '"public"."courses", "public"."enrollments", "public"."lectures"'
    )
    assert set_publication_tables_statement(_spec("assignment")).as_string(None) == (
        'ALTER PUBLICATION "cdcsync_assignment" SET TABLE "cdcsync_signal"."debezium_heartbeat", '
        '"cdcsync_signal"."debezium_signal", "public"."assignments"'
    )


def test_a_connector_without_signal_and_heartbeat_tables_publishes_only_its_tables() -> None:
    spec = _spec("attendance")
    dropped = ("signal.data.collection", "heartbeat.action.query")
    bare = ConnectorSpec(spec.name, {k: v for k, v in spec.config.items() if k not in dropped})
    assert signal_table(bare) is None
    assert publication_tables(bare) == ("public.attendance_windows",)


# -- the snapshot signal ------------------------------------------------------------------------------


def test_an_incremental_snapshot_signal() -> None:
    signal = execute_snapshot_signal("public.lectures", signal_id="s-1")
    assert (signal.id, signal.type) == ("s-1", "execute-snapshot")
    assert signal.data is not None
    assert json.loads(signal.data) == {"data-collections": ["public.lectures"], "type": "incremental"}


def test_where_becomes_the_additional_condition_of_that_table() -> None:
    signal = execute_snapshot_signal("public.lectures", where=" id < 100 AND room = 'A''1' ")
    assert signal.data is not None
    assert json.loads(signal.data)["additional-conditions"] == [
        {"data-collection": "public.lectures", "filter": "id < 100 AND room = 'A''1'"}
    ]
    assert len(signal.id) == 36  # a uuid4, within the id column's 42


@pytest.mark.parametrize("table", ["lectures", "a.b.c", ".lectures", "public."])
def test_the_table_must_be_schema_dot_table(table: str) -> None:
    with pytest.raises(ValueError, match=r"schema\.table"):
        execute_snapshot_signal(table)


def test_an_empty_where_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        execute_snapshot_signal("public.lectures", where="  ")


def test_a_signal_must_fit_the_signal_table() -> None:
    with pytest.raises(ValueError, match=str(MAX_DATA)):
        execute_snapshot_signal("public.lectures", where="x" * MAX_DATA)
    with pytest.raises(ValueError, match="id"):
        Signal(id="x" * 43, type="execute-snapshot", data=None)
    with pytest.raises(ValueError, match="type"):
        Signal(id="x", type="", data=None)


# -- SERVICE.TABLE ------------------------------------------------------------------------------------


@pytest.mark.parametrize("qualified", ["course.lectures", "course.public.lectures"])
def test_service_dot_table_finds_its_connector(qualified: str) -> None:
    spec, table = find_captured_table(load_connector_specs(), qualified)
    assert (spec.name, table) == ("cdcsync-course", "public.lectures")


def test_a_table_the_connector_does_not_capture_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"public\.assignments is not in cdcsync-course's table\.include\.list"):
        find_captured_table(load_connector_specs(), "course.assignments")
    with pytest.raises(ValueError, match="not in"):
        find_captured_table(load_connector_specs(), "course.cdcsync_signal.debezium_signal")


@pytest.mark.parametrize("qualified", ["billing.invoices", "course", "lectures"])
def test_an_unknown_service_lists_what_can_be_snapshotted(qualified: str) -> None:
    with pytest.raises(ValueError, match=r"captured tables: assignment\.assignments, attendance\.attendance_windows"):
        find_captured_table(load_connector_specs(), qualified)


# -- notifications ------------------------------------------------------------------------------------


def _notification(kind: str, signal_id: str = "s-1", **data: str) -> bytes:
    return json.dumps(
        {
            "id": signal_id,
            "aggregate_type": "Incremental Snapshot",
            "type": kind,
            "additional_data": {"connector_name": "course", **data},
            "timestamp": 1,
        }
    ).encode()


def _parsed(raw: bytes) -> SnapshotNotification:
    notification = parse_notification(raw)
    assert notification is not None
    return notification


def test_notifications_parse_with_or_without_the_schema_wrapper() -> None:
    raw = _notification("TABLE_SCAN_COMPLETED", scanned_collection="public.lectures", total_rows_scanned="42")
    plain = _parsed(raw)
    assert (plain.id, plain.type, plain.connector, plain.scanned_table, plain.rows_scanned) == (
        "s-1",
        "TABLE_SCAN_COMPLETED",
        "course",
        "public.lectures",
        42,
    )
    wrapped = json.dumps({"schema": {}, "payload": json.loads(raw)}).encode()
    assert parse_notification(wrapped) == plain


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"not json", b"[]", json.dumps({"aggregate_type": "Initial Snapshot", "type": "COMPLETED"}).encode()],
)
def test_other_records_are_not_snapshot_notifications(raw: bytes | None) -> None:
    assert parse_notification(raw) is None


def test_the_snapshot_is_done_when_its_table_scan_or_the_snapshot_completes() -> None:
    spec = _spec("course")
    done = _parsed(_notification("TABLE_SCAN_COMPLETED", scanned_collection="public.lectures", status="SUCCEEDED"))
    assert snapshot_outcome(done, spec, "s-1", "public.lectures")
    assert snapshot_outcome(_parsed(_notification("COMPLETED")), spec, "s-1", "public.lectures")
    for pending in ("STARTED", "IN_PROGRESS"):
        assert not snapshot_outcome(_parsed(_notification(pending)), spec, "s-1", "public.lectures")
    other_table = _parsed(_notification("TABLE_SCAN_COMPLETED", scanned_collection="public.courses"))
    assert not snapshot_outcome(other_table, spec, "s-1", "public.lectures")
    assert not snapshot_outcome(_parsed(_notification("COMPLETED", "s-2")), spec, "s-1", "public.lectures")
    assert not snapshot_outcome(_parsed(_notification("COMPLETED")), _spec("assignment"), "s-1", "public.lectures")


@pytest.mark.parametrize(
    "raw",
    [
        _notification("ABORTED"),
        _notification("TABLE_SCAN_COMPLETED", scanned_collection="public.lectures", status="SQL_EXCEPTION"),
        _notification("TABLE_SCAN_COMPLETED", scanned_collection="public.lectures", status="NO_PRIMARY_KEY"),
    ],
)
def test_an_aborted_or_failed_scan_is_an_error(raw: bytes) -> None:
    with pytest.raises(SnapshotNotFinished):
        snapshot_outcome(_parsed(raw), _spec("course"), "s-1", "public.lectures")
