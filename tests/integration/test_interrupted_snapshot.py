"""A connector deleted in the middle of its initial snapshot and re-applied: the interruption is never
silent, one command recovers it, and the calendar ends equal to the rules. On a pipeline of its own.

The race the issue saw depends on which offset Connect last committed. The test makes the bad
case happen on purpose: Debezium sends the STARTED notification with an empty source offset,
then (with ``snapshot.locking.mode=shared``) waits for a table lock the test holds; the test
waits until Connect has committed that empty offset, deletes the connector and re-creates it
before letting the old task go on. Letting it go on first usually gives the good case.
The slot is created beforehand, as creating it would wait for the lock holder's transaction.
Should Debezium re-run the snapshot anyway (the good case), the test checks that instead.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from cdcsync.debezium.apply import load_specs
from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.initial_snapshot import SnapshotKind, StoredOffset, classify_offset
from cdcsync.debezium.snapshot_notifications import INITIAL_SNAPSHOT
from cdcsync.debezium.snapshot_states import read_notifications, snapshot_states
from tests.integration.conftest import assert_calendar_matches_rules, until
from tests.support.cli_runs import run_cdcsync
from tests.support.isolated_pipeline import IsolatedPipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXTRA_WINDOWS = 30_000
# Hold the snapshot between STARTED and its first table for as long as the test holds the lock. The
# publication exists; "disabled" keeps Debezium from reading its tables (which the lock would block) first.
HELD_AT_LOCK = {
    "snapshot.locking.mode": "shared",
    "snapshot.lock.timeout.ms": "600000",
    "publication.autocreate.mode": "disabled",
}


def _initial_types(pipe: IsolatedPipeline, service: str) -> list[str]:
    return [
        n.type
        for n in read_notifications(pipe.settings.kafka_bootstrap, pipe.notification_topic)
        if n.connector == pipe.prefix(service) and n.aggregate == INITIAL_SNAPSHOT
    ]


@pytest.mark.parametrize("old_task_goes_on_first", [False, True], ids=["recreated-while-held", "released-first"])
def test_a_connector_deleted_mid_snapshot_is_reported_and_recovered(
    old_task_goes_on_first: bool,
    isolated_pipeline: Callable[..., IsolatedPipeline],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipe = isolated_pipeline(extra_windows=EXTRA_WINDOWS, overrides=HELD_AT_LOCK)
    bootstrap = pipe.settings.kafka_bootstrap
    pipe.start_sink()
    others = ["-f", str(pipe.spec_file("course")), "-f", str(pipe.spec_file("assignment"))]
    run = run_cdcsync(
        monkeypatch, capsys, "connectors", "apply", *others, "--skip-preflight", "--wait", "--timeout", "240"
    )
    assert run.code == 0, run.stdout + run.stderr
    assert "initial snapshots complete" in run.stdout

    (attendance,) = load_specs([pipe.spec_file("attendance")])
    with ConnectClient(pipe.settings.connect_url) as client:
        with psycopg.connect(pipe.admin_url("attendance")) as holder:
            # Created first, the slot does not wait for the lock holder's transaction (creating one would).
            holder.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (attendance.slot_name,))
            holder.commit()
            holder.execute("LOCK TABLE public.attendance_windows IN ACCESS EXCLUSIVE MODE")
            client.put_connector_config(attendance.name, attendance.config)
            until("the initial snapshot to start", lambda: "STARTED" in _initial_types(pipe, "attendance") or None)
            until(
                "Connect to commit the STARTED notification's empty offset",
                lambda: (
                    classify_offset(client.get_offsets(attendance.name), attendance.topic_prefix)
                    is StoredOffset.NO_POSITION
                    or None
                ),
                timeout=90,
            )
            client.delete_connector(attendance.name)
            until("the connector to be gone", lambda: attendance.name not in client.list_connectors() or None)
            if old_task_goes_on_first:
                # The stopping task reaches its first table and may commit that offset: usually the good case.
                holder.rollback()
            # Re-created while the old task is still held at the lock, it cannot commit a later offset.
            client.put_connector_config(attendance.name, attendance.config)
            until(
                "the re-created task to skip or restart the snapshot",
                lambda: _initial_types(pipe, "attendance")[1:] or None,
                timeout=120,
            )
            holder.rollback()

        apply_again = ["connectors", "apply", "-f", str(pipe.spec_file("attendance")), "--skip-preflight"]
        run = run_cdcsync(monkeypatch, capsys, *apply_again, "--wait", "--timeout", "240")
        history = _initial_types(pipe, "attendance")
        debezium_redid_it = history.count("STARTED") > 1
        if debezium_redid_it:
            assert run.code == 0, run.stdout + run.stderr
        else:
            # The bad case of the issue: the re-created task skipped the snapshot and streams from the slot.
            assert history[-1] == "SKIPPED", history
            assert run.code == 12, run.stdout + run.stderr
            for expected in (attendance.name, "public.attendance_windows", "SKIPPED", "cdcsync snapshot --incomplete"):
                assert expected in run.stderr
            state = snapshot_states(client, bootstrap, [attendance])[attendance.name]
            assert (state.kind, state.tables) == (SnapshotKind.INTERRUPTED, ("public.attendance_windows",))

        run = run_cdcsync(
            monkeypatch, capsys, "snapshot", "--incomplete", "--connectors-dir", str(pipe.directory), "--timeout", "300"
        )
        assert run.code == 0, run.stdout + run.stderr
        if not debezium_redid_it:
            assert f"re-snapshotted: {pipe.database('attendance')}.public.attendance_windows" in run.stdout
        states = snapshot_states(client, bootstrap, pipe.specs)
        assert {name: s.kind for name, s in states.items()} == {s.name: SnapshotKind.COMPLETE for s in pipe.specs}

    pipe.check_sink()
    assert_calendar_matches_rules(pipe.targets, timeout=300)
    pipe.check_sink()
