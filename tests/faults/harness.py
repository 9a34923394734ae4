"""One fault scenario: faults injected under the concurrent workload, then the checks and the counts.

After the last fault the workload goes on until it has committed more, then stops; then
``cdcsync verify`` must be clean, the sink must have stored offsets up to the end of every
partition it applied, and the offset ledger must show each of those offsets applied exactly
once: no range overlaps an earlier one, none leaves a gap, the first begins at offset 0 and
the last ends at the stored offset, the partition's end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from confluent_kafka import Consumer, TopicPartition

from cdcsync.sink.offset_store import PartitionLedger, audit_ledger
from tests.faults.stack import FaultStack
from tests.faults.workload import ConcurrentWorkload
from tests.integration.conftest import SinkProcess, until

GROUP = "cdcsync-calendar-sink"
VERIFY_WAIT_S = 120
COMMITS_BETWEEN_FAULTS = 20


@dataclass
class ScenarioCounts:
    scenario: str
    faults: int = 0
    committed: int = 0
    rolled_back: int = 0
    aborted: int = 0
    missing: int = 0  # rows the rules expect that the calendar lacks, or has but should not
    wrong: int = 0
    offsets_applied: int = 0  # in this scenario
    applied_twice: int = 0  # over the whole ledger
    gaps: int = 0  # over the whole ledger
    tasks_restarted: int = 0  # connector tasks found FAILED after a fault and restarted
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.scenario}: {self.faults} faults injected, {self.committed} source transactions committed"
            f" ({self.rolled_back} rolled back, {self.aborted} aborted), {self.missing} rows missing or extra,"
            f" {self.wrong} wrong, {self.offsets_applied} offsets applied, {self.applied_twice} applied twice,"
            f" {self.gaps} skipped, {self.tasks_restarted} FAILED connector tasks restarted, {self.seconds:.0f}s"
        )

    def add(self, other: ScenarioCounts) -> None:
        added = (
            "faults",
            "committed",
            "rolled_back",
            "aborted",
            "missing",
            "wrong",
            "offsets_applied",
            "tasks_restarted",
        )
        for name in added:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.applied_twice = max(self.applied_twice, other.applied_twice)
        self.gaps = max(self.gaps, other.gaps)
        self.seconds += other.seconds


Inject = Callable[[int, ConcurrentWorkload], int]  # (round, workload) -> faults injected


def run_scenario(
    counts: ScenarioCounts, stack: FaultStack, sink: SinkProcess, rounds: int, inject: Inject
) -> ScenarioCounts:
    """``rounds`` rounds of ``inject`` under the workload, then the checks; the counts are printed either way."""
    name = counts.scenario
    started = time.monotonic()
    ledger_before = sum(x.offsets_applied for x in _ledger(stack))
    with ConcurrentWorkload(stack.targets.source_urls, seed=len(name) + rounds) as workload:
        for number in range(rounds):
            workload.wait_for_commits(COMMITS_BETWEEN_FAULTS)
            counts.faults += inject(number, workload)
        workload.wait_for_commits(COMMITS_BETWEEN_FAULTS)  # the sources take writes again after the faults
    counts.committed, counts.rolled_back, counts.aborted = workload.committed, workload.rolled_back, workload.aborted
    try:
        assert sink.running(), f"the sink exited with code {sink.process and sink.process.poll()}; log: {sink.log_file}"
        clean, counts.missing, counts.wrong = _verify(stack)
        assert clean, f"verify: {counts.missing} missing or extra, {counts.wrong} wrong"
        ledger = until("the sink's stored offsets at the end of every partition", lambda: _caught_up(stack), 120)
        counts.offsets_applied = sum(x.offsets_applied for x in ledger) - ledger_before
        counts.applied_twice = sum(x.reapplied for x in ledger)
        counts.gaps = sum(x.gaps + x.first_offset for x in ledger)  # offsets before the first batch: skipped too
    finally:
        counts.seconds = time.monotonic() - started
        print(f"\n{counts.line()}")
    assert (counts.missing, counts.wrong, counts.applied_twice, counts.gaps) == (0, 0, 0, 0)
    assert counts.faults >= rounds
    return counts


def _verify(stack: FaultStack) -> tuple[bool, int, int]:
    """``cdcsync verify --json`` on the fault stack, waiting until clean: clean, rows missing or extra, rows wrong."""
    done = subprocess.run(
        [sys.executable, "-m", "cdcsync", "verify", "--json", "--wait", str(VERIFY_WAIT_S)],
        env=stack.process_env(),
        capture_output=True,
        text=True,
        timeout=VERIFY_WAIT_S + 120,
        check=False,
    )
    assert done.stdout, f"verify printed no report (exit {done.returncode}): {done.stderr[-2000:]}"
    report = json.loads(done.stdout)
    assert (done.returncode == 0) == report["clean"], done.stderr[-2000:]
    return report["clean"], len(report["missing"]) + len(report["extra"]), len(report["wrong"])


def _ledger(stack: FaultStack) -> list[PartitionLedger]:
    with psycopg.connect(stack.targets.sink_db_url) as conn:
        return audit_ledger(conn, GROUP)


def _caught_up(stack: FaultStack) -> list[PartitionLedger] | None:
    """The ledger, once the sink has stored each applied partition's end offset and the ledger ends there too."""
    with psycopg.connect(stack.targets.sink_db_url) as conn:
        rows = conn.execute(
            "SELECT topic, partition, next_offset FROM cdcsync.consumer_offsets WHERE group_id = %s", (GROUP,)
        ).fetchall()
        ledger = audit_ledger(conn, GROUP)
    stored = {(str(t), int(str(p))): int(str(o)) for t, p, o in rows}
    ends = _end_offsets(stack, list(stored))
    if stored != ends or {(x.topic, x.partition): x.next_offset for x in ledger} != stored:
        return None
    return ledger


def _end_offsets(stack: FaultStack, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    consumer = Consumer(
        {"bootstrap.servers": stack.targets.kafka_bootstrap_servers, "group.id": f"fault-audit-{uuid.uuid4()}"}
    )
    try:
        return {(t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1] for t, p in partitions}
    finally:
        consumer.close()
