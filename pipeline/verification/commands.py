"""``cdcsync verify``: exit 0 when the calendar equals the rules on the sources, 1 otherwise."""

from __future__ import annotations

import time

import click

from pipeline.errors import VerifyMismatch
from pipeline.targets import Targets
from pipeline.verification.compare import VerifyReport, compare_calendars
from pipeline.verification.expected_calendar import expected_calendar
from pipeline.verification.source_reader import CalendarMissing, read_calendar, read_source_state


def run_verify(targets: Targets) -> VerifyReport:
    """One comparison of the sources' committed state with the calendar."""
    expected = expected_calendar(read_source_state(targets.source_urls))
    return compare_calendars(expected, read_calendar(targets.calendar_db_url))


def verify_until_clean(targets: Targets, wait_s: float, poll_s: float = 1.0) -> VerifyReport:
    """Repeat the comparison until it is clean or ``wait_s`` has passed; the last report."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            report = run_verify(targets)
        except CalendarMissing:
            if time.monotonic() >= deadline:
                raise
        else:
            if report.clean or time.monotonic() >= deadline:
                return report
        time.sleep(poll_s)


def render_report(report: VerifyReport, limit: int) -> list[str]:
    lines = [
        f"verify: {report.expected_rows} rows expected by the rules, {report.actual_rows} in the calendar: "
        + (
            "OK"
            if report.clean
            else f"{len(report.missing)} missing, {len(report.extra)} extra, {len(report.wrong)} wrong"
        )
    ]
    for row in report.missing[:limit]:
        lines.append(f"  missing  user={row.user_id} {row.entry_key}: {row}")
    for row in report.extra[:limit]:
        lines.append(f"  extra    user={row.user_id} {row.entry_key}: {row}")
    for wrong in report.wrong[:limit]:
        diffs = ", ".join(
            f"{c}: expected {getattr(wrong.expected, c)!r}, got {getattr(wrong.actual, c)!r}"
            for c in wrong.differing_columns
        )
        lines.append(f"  wrong    user={wrong.expected.user_id} {wrong.expected.entry_key}: {diffs}")
    hidden = sum(max(0, len(group) - limit) for group in (report.missing, report.extra, report.wrong))
    if hidden:
        lines.append(f"  ... and {hidden} more (raise --limit to see them)")
    return lines


@click.command()
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=0.0,
    help="Keep comparing for up to this many seconds until the calendar has caught up.",
)
@click.option("--limit", type=int, default=20, help="Rows to print per kind of difference.")
def verify(wait_s: float, limit: int) -> None:
    """Evaluate the spec's rules on the sources and compare with calendar.calendar_entries.

    Reads COURSE_DB_URL, ATTENDANCE_DB_URL, ASSIGNMENT_DB_URL and CALENDAR_DB_URL,
    or the local stack's databases when they are not set. Exits 1 on any difference.
    """
    report = verify_until_clean(Targets.resolve(), wait_s)
    for line in render_report(report, limit):
        click.echo(line)
    if not report.clean:
        raise VerifyMismatch("the calendar differs from the rules on the sources")
