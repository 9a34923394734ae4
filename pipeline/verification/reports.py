"""Verify runs and their reports: bucketed comparison, waiting until clean, text and JSON output."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal

from cdcsync.pipeline.targets import Targets
from cdcsync.pipeline.verification.bucketed import BucketedReport, Progress, verify_bucketed
from cdcsync.pipeline.verification.compare import VerifyReport
from cdcsync.pipeline.verification.expected_calendar import CalendarRow
from cdcsync.pipeline.verification.source_reader import CalendarMissing

DEFAULT_BUCKET_USERS = 1000


def verify_until_clean(
    targets: Targets,
    wait_s: float,
    poll_s: float = 1.0,
    bucket_users: int = DEFAULT_BUCKET_USERS,
    progress: Progress | None = None,
) -> VerifyReport:
    """Compare until clean or ``wait_s`` has passed; the last report."""
    return verify_until_clean_bucketed(targets, wait_s, poll_s, bucket_users, progress).report


def verify_until_clean_bucketed(
    targets: Targets,
    wait_s: float,
    poll_s: float = 1.0,
    bucket_users: int = DEFAULT_BUCKET_USERS,
    progress: Progress | None = None,
) -> BucketedReport:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            result = verify_bucketed(targets, bucket_users, progress)
        except CalendarMissing:
            if time.monotonic() >= deadline:
                raise
        else:
            if result.report.clean or time.monotonic() >= deadline:
                return result
        time.sleep(poll_s)


def render_report(report: VerifyReport, limit: int) -> list[str]:
    summary = (
        "OK" if report.clean else f"{len(report.missing)} missing, {len(report.extra)} extra, {len(report.wrong)} wrong"
    )
    lines = [
        f"verify: {report.expected_rows} rows expected by the rules, {report.actual_rows} in the calendar: {summary}"
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


def _row_json(row: CalendarRow) -> dict[str, object]:
    def plain(value: object) -> object:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return value

    return {key: plain(value) for key, value in asdict(row).items()}


def report_json(result: BucketedReport) -> str:
    report = result.report
    return json.dumps(
        {
            "clean": report.clean,
            "expected_rows": report.expected_rows,
            "actual_rows": report.actual_rows,
            "buckets": result.buckets,
            "differing_buckets": result.differing_buckets,
            "bucket_users": result.bucket_users,
            "missing": [_row_json(r) for r in report.missing],
            "extra": [_row_json(r) for r in report.extra],
            "wrong": [
                {"expected": _row_json(w.expected), "actual": _row_json(w.actual), "columns": list(w.differing_columns)}
                for w in report.wrong
            ],
        },
        sort_keys=True,
    )
