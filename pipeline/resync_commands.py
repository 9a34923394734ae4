"""``cdcsync resync`` and the repair step of ``cdcsync verify --repair``."""

from __future__ import annotations

from collections.abc import Callable

import click

from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.pipeline.cli_options import command_targets
from cdcsync.pipeline.errors import VerifyMismatch
from cdcsync.pipeline.resync import ResyncRequest, repair_requests, resync, window_lectures
from cdcsync.pipeline.targets import Targets
from cdcsync.pipeline.verification.reports import render_report, verify_until_clean_bucketed

DEFAULT_GROUP = "cdcsync-calendar-sink"


def _say(line: str) -> None:
    click.echo(line, err=True)


@click.command("resync")
@click.option("--table", "qualified", required=True, metavar="SERVICE.TABLE", help="e.g. course.lectures")
@click.option("--where", default=None, metavar="SQL", help="Only rows matching this SQL condition.")
@click.option("--group", envvar="CDCSYNC_SINK_GROUP", show_envvar=True, default=DEFAULT_GROUP, help="The sink's group.")
@click.option("--timeout", type=float, default=600.0, help="Seconds to wait for the snapshot and the sink.")
def resync_command(qualified: str, where: str | None, group: str, timeout: float) -> None:
    """Have Debezium re-send a table's rows (incremental snapshot) and wait until the sink absorbed them.

    The signal goes to the service's signal table through CDCSYNC_<SERVICE>_SIGNAL_DB_URL
    (a role with INSERT on cdcsync_signal.debezium_signal); with --local, the local stack's admin.
    Reads the sources and the calendar (as verify does), Kafka and the sink's database.
    """
    targets = command_targets(RESYNC_TARGETS)
    resync(targets, [ResyncRequest(qualified, where)], _signal_url(targets), group, timeout=timeout, progress=_say)


# What resync and repair use: the sources and calendar (verify), Kafka, the sink's offsets.
RESYNC_TARGETS = (
    "COURSE_DB_URL",
    "ATTENDANCE_DB_URL",
    "ASSIGNMENT_DB_URL",
    "CALENDAR_DB_URL",
    "CDCSYNC_SINK_DB_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
)


def _signal_url(targets: Targets) -> Callable[[ConnectorSpec], str]:
    return lambda spec: targets.signal_url(spec.config["database.dbname"])


def repair(targets: Targets, bucket_users: int, group: str, limit: int) -> None:
    """Re-sync the source rows behind every difference, then verify again (waiting for the sink)."""
    result = verify_until_clean_bucketed(targets, 0.0, bucket_users=bucket_users, progress=_say)
    if result.report.clean:
        click.echo("verify: clean, nothing to repair")
        return
    for line in render_report(result.report, limit):
        click.echo(line)
    requests = repair_requests(result.report, window_lectures(targets, result.report))
    click.echo(f"repair: {len(requests)} resync requests")
    resync(targets, requests, _signal_url(targets), group, progress=_say)
    after = verify_until_clean_bucketed(targets, 60.0, bucket_users=bucket_users, progress=_say).report
    for line in render_report(after, limit):
        click.echo(line)
    if not after.clean:
        raise VerifyMismatch("the calendar still differs from the rules after the repair")
