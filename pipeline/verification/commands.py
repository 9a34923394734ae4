"""``cdcsync verify``: exit 0 when the calendar equals the rules on the sources, 1 otherwise."""

from __future__ import annotations

import click

from cdcsync.pipeline.cli_options import command_targets
from cdcsync.pipeline.errors import VerifyMismatch
from cdcsync.pipeline.resync_commands import RESYNC_TARGETS
from cdcsync.pipeline.resync_commands import repair as repair_differences
from cdcsync.pipeline.verification.reports import (
    DEFAULT_BUCKET_USERS,
    render_report,
    report_json,
    verify_until_clean_bucketed,
)

VERIFY_TARGETS = ("COURSE_DB_URL", "ATTENDANCE_DB_URL", "ASSIGNMENT_DB_URL", "CALENDAR_DB_URL")


@click.command()
@click.option(
    "--wait", "wait_s", type=float, default=0.0, help="Keep comparing for up to this many seconds until it is clean."
)
@click.option("--limit", type=int, default=20, help="Rows to print per kind of difference.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as one JSON document (progress goes to stderr)."
)
@click.option(
    "--bucket-users",
    type=click.IntRange(min=1),
    default=DEFAULT_BUCKET_USERS,
    envvar="CDCSYNC_VERIFY_BUCKET_USERS",
    show_envvar=True,
    help="Users per bucket: calendars are compared by bucket hashes, row by row only where a bucket differs.",
)
@click.option(
    "--repair", is_flag=True, help="Re-sync exactly the source rows behind the differences, then verify again."
)
@click.option(
    "--group", envvar="CDCSYNC_SINK_GROUP", show_envvar=True, default="cdcsync-calendar-sink", help="The sink's group."
)
def verify(  # noqa: PLR0917 - click passes every option positionally
    wait_s: float, limit: int, as_json: bool, bucket_users: int, repair: bool, group: str
) -> None:
    """Evaluate the spec's rules on the sources and compare with calendar.calendar_entries.

    Reads COURSE_DB_URL, ATTENDANCE_DB_URL, ASSIGNMENT_DB_URL and CALENDAR_DB_URL (--repair
    also KAFKA_BOOTSTRAP_SERVERS, CDCSYNC_SINK_DB_URL and the signal URLs), or the local
    stack's databases with --local. Exits 1 on any difference (with --repair: on any
    difference left after the repair).
    """
    if repair:
        repair_differences(command_targets(RESYNC_TARGETS), bucket_users, group, limit)
        return
    targets = command_targets(VERIFY_TARGETS)
    result = verify_until_clean_bucketed(
        targets, wait_s, bucket_users=bucket_users, progress=lambda line: click.echo(line, err=True)
    )
    if as_json:
        click.echo(report_json(result))
    else:
        for line in render_report(result.report, limit):
            click.echo(line)
    if not result.report.clean:
        raise VerifyMismatch("the calendar differs from the rules on the sources")
