"""The sink killed with SIGKILL mid-stream and restarted: nothing lost, nothing applied twice.

Offsets live in the calendar database, committed with the rows. After each
kill, the restarted sink must resume exactly at the stored offsets, and once
the writes stop the calendar must equal the rules.
"""

from __future__ import annotations

import os
import random
import re
import time

import psycopg
import pytest

from cdcsync.sink.offset_store import audit_ledger
from tests.integration.conftest import SinkProcess, assert_calendar_matches_rules, assert_ledger_clean, until
from tests.support.background_workload import BackgroundWorkload

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.fault]

GROUP = "cdcsync-calendar-sink"
_ASSIGNED = re.compile(r"assigned (.*)$", re.MULTILINE)


def _stored_offsets(sink: SinkProcess) -> dict[str, int]:
    with psycopg.connect(sink.targets.sink_db_url) as conn:
        rows = conn.execute(
            "SELECT topic, partition, next_offset FROM cdcsync.consumer_offsets WHERE group_id = %s", (GROUP,)
        ).fetchall()
    return {f"{topic}[{partition}]": offset for topic, partition, offset in rows}


def _assignment_after(log: str, start: int) -> dict[str, int] | None:
    match = _ASSIGNED.search(log, start)
    if match is None:
        return None
    positions = {}
    for item in match.group(1).split(", "):
        partition, _, offset = item.rpartition("@")
        positions[partition] = int(offset)
    return positions


KILLS = int(os.environ.get("CDCSYNC_KILLS", "3"))


def test_sink_killed_and_restarted_resumes_without_loss_or_double_application(sink: SinkProcess) -> None:
    rng = random.Random(int(os.environ.get("CDCSYNC_KILL_SEED", "2024")))
    with psycopg.connect(sink.targets.sink_db_url) as conn:
        before = {(x.topic, x.partition): x for x in audit_ledger(conn, GROUP)}
    with BackgroundWorkload(sink.targets.source_urls, seed=99) as workload:
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.0, 4.0))  # let batches flow, then kill at an arbitrary moment
            sink.kill()
            stored = _stored_offsets(sink)
            log_end = len(sink.log_text())
            sink.start()
            resumed = until(
                "the restarted sink's assignment",
                lambda start=log_end: _assignment_after(sink.log_text(), start),  # type: ignore[misc]
            )
            # It resumes exactly where its last committed batch ended, for every partition it had stored.
            assert {p: o for p, o in resumed.items() if p in stored} == stored
    assert workload.applied > 50
    assert_calendar_matches_rules(sink.targets, timeout=120)

    # The ledger of applied offset ranges: no offset applied twice, none skipped.
    ledgers = assert_ledger_clean(sink.targets.sink_db_url, GROUP)
    applied = sum(x.offsets_applied for x in ledgers) - sum(x.offsets_applied for x in before.values())
    print(f"\nkill loop: {KILLS} SIGKILLs, {workload.applied} source transactions, {applied} offsets applied once each")
