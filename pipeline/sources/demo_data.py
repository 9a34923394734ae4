"""A deterministic demo data set for the three source services, and its loader.

Same seed, same rows: ids, texts and timestamps (to the microsecond) all come from one
``random.Random(seed)``. The set touches every rule of the spec: cancelled lectures, lectures
without or with two attendance windows, unpublished assignments, dropped enrollments, decimal
``max_score`` values and NULLs, non-ASCII text, and descriptions over 4 KB with enough entropy
that PostgreSQL stores them out of line (TOAST). One attendance window names a lecture and one
assignment a course that do not exist, as cross-service ids may.

The text helpers are shared with ``pipeline.sources.workload``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

DEFAULT_SEED = 20260907
TERM_START = datetime(2026, 9, 7, 8, 0, tzinfo=UTC)  # a Monday
LARGE_DESCRIPTION_BYTES = 4096
FIRST_USER_ID = 1001
COURSE_COUNT = 12
USER_COUNT = 300

_SUBJECTS = (
    "Distributed Systems", "Compilers", "Linear Algebra", "Databases", "Operating Systems",
    "Machine Learning", "Computer Networks", "Cryptography", "Numerical Methods",
    "Software Architecture", "Information Retrieval", "Formal Languages", "Computer Graphics",
    "Signal Processing", "Stream Processing", "Program Verification",
)  # fmt: skip
_LEVELS = ("I", "II", "Advanced", "Seminar", "Lab", "for Engineers")
_TOPICS = (
    "Introduction", "Consensus", "Replication", "Logical clocks", "Transactions", "Indexing",
    "Query planning", "Scheduling", "Virtual memory", "Gradient descent", "Routing", "Hashing",
    "Recovery", "Concurrency control", "Parsing", "Type systems", "Sampling", "Review session",
)  # fmt: skip
_ROOMS = ("A-0.12", "A-1.07", "B-2.14", "B-3.01", "C-0.03", "HS 1", "HS 2", "Hörsaal Süd", "Lab 4.1", "Online")
_WORDS = (
    "submit", "a", "report", "on", "the", "implementation", "of", "your", "solution", "and",
    "explain", "each", "design", "decision", "with", "measurements", "include", "tests", "for",
    "edge", "cases", "discuss", "trade-offs", "between", "latency", "throughput", "correctness",
    "use", "provided", "template", "cite", "sources", "late", "penalty", "applies", "group",
    "work", "is", "allowed", "in", "pairs", "naïve", "approach", "first", "then", "improve",
)  # fmt: skip


class CourseRow(NamedTuple):
    id: int
    title: str
    description: str | None


class LectureRow(NamedTuple):
    id: int
    course_id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    room: str | None
    cancelled: bool


class EnrollmentRow(NamedTuple):
    course_id: int
    user_id: int
    status: str


class WindowRow(NamedTuple):
    id: int
    lecture_id: int
    opens_at: datetime
    closes_at: datetime


class AssignmentRow(NamedTuple):
    id: int
    course_id: int
    title: str
    description: str | None
    max_score: Decimal | None
    opens_at: datetime
    due_at: datetime
    published: bool


class TableRows(NamedTuple):
    table: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[object, ...]]


@dataclass(frozen=True)
class DemoData:
    courses: tuple[CourseRow, ...]
    lectures: tuple[LectureRow, ...]
    enrollments: tuple[EnrollmentRow, ...]
    windows: tuple[WindowRow, ...]
    assignments: tuple[AssignmentRow, ...]

    def tables_by_service(self) -> dict[str, tuple[TableRows, ...]]:
        """Each service's tables in an order that satisfies its foreign keys."""
        return {
            "course": (
                TableRows("courses", CourseRow._fields, self.courses),
                TableRows("lectures", LectureRow._fields, self.lectures),
                TableRows("enrollments", EnrollmentRow._fields, self.enrollments),
            ),
            "attendance": (TableRows("attendance_windows", WindowRow._fields, self.windows),),
            "assignment": (TableRows("assignments", AssignmentRow._fields, self.assignments),),
        }


# -- text and value helpers (also used by the workload) -------------------------------------------


def microseconds(rng: random.Random) -> timedelta:
    """A sub-second offset, so that timestamps exercise microsecond precision."""
    return timedelta(microseconds=rng.randrange(1, 1_000_000))


def course_title(rng: random.Random) -> str:
    return f"{rng.choice(_SUBJECTS)} {rng.choice(_LEVELS)}"


def lecture_title(rng: random.Random, number: int) -> str:
    return f"Lecture {number}: {rng.choice(_TOPICS)}"


def room(rng: random.Random) -> str | None:
    return None if rng.random() < 0.08 else rng.choice(_ROOMS)


def max_score(rng: random.Random) -> Decimal | None:
    if rng.random() < 0.1:
        return None
    return Decimal(rng.randrange(500, 100_001, 25)).scaleb(-2)  # 5.00 .. 1000.00 in steps of 0.25


def description(rng: random.Random, *, large: bool) -> str:
    """A few sentences, or over ``LARGE_DESCRIPTION_BYTES`` UTF-8 bytes of text that compresses poorly."""
    target = rng.randrange(2 * LARGE_DESCRIPTION_BYTES, 3 * LARGE_DESCRIPTION_BYTES) if large else 1
    sentences: list[str] = []
    size = 0
    while size < target or not sentences:
        words = " ".join(rng.choices(_WORDS, k=rng.randint(6, 14)))
        # A random reference in each sentence keeps pglz from shrinking the text below the TOAST threshold.
        sentence = f"{words.capitalize()} (ref {rng.getrandbits(64):016x})."
        sentences.append(sentence)
        size += len(sentence.encode()) + 1
        if not large and len(sentences) >= rng.randint(1, 3):
            break
    return " ".join(sentences)


# -- the data set ----------------------------------------------------------------------------------


def generate_demo_data(seed: int = DEFAULT_SEED) -> DemoData:
    """The demo rows for ``seed``; a pure function."""
    rng = random.Random(seed)
    courses: list[CourseRow] = []
    lectures: list[LectureRow] = []
    windows: list[WindowRow] = []
    assignments: list[AssignmentRow] = []
    for course_id in range(1, COURSE_COUNT + 1):
        summary = None if rng.random() < 0.2 else description(rng, large=False)
        courses.append(CourseRow(course_id, course_title(rng), summary))
        slot = timedelta(days=rng.randrange(5), hours=rng.choice((0, 2, 4, 6, 8)), minutes=rng.choice((0, 15)))
        for week in range(rng.randint(8, 12)):
            starts = TERM_START + slot + timedelta(weeks=week) + microseconds(rng)
            ends = starts + timedelta(minutes=90) + microseconds(rng)
            lecture = LectureRow(
                len(lectures) + 1, course_id, lecture_title(rng, week + 1), starts, ends, room(rng), rng.random() < 0.08
            )
            lectures.append(lecture)
            for _ in range(rng.choices((0, 1, 2), weights=(1, 8, 1))[0]):
                opens = starts - timedelta(minutes=10) + microseconds(rng)
                windows.append(WindowRow(len(windows) + 1, lecture.id, opens, opens + timedelta(minutes=25)))
        for number in range(1, rng.randint(3, 5) + 1):
            opens = TERM_START + timedelta(days=rng.randrange(70), hours=rng.randrange(24)) + microseconds(rng)
            due = opens + timedelta(days=rng.randint(7, 14)) + microseconds(rng)
            text = None if rng.random() < 0.05 else description(rng, large=rng.random() < 0.3)
            title = f"Assignment {number}: {rng.choice(_TOPICS)}"
            published = rng.random() < 0.85
            assignments.append(
                AssignmentRow(len(assignments) + 1, course_id, title, text, max_score(rng), opens, due, published)
            )
    # Cross-service ids have no foreign key: a window of a lecture and an assignment of a course
    # that do not exist, which the calendar must ignore.
    orphan_opens = TERM_START + microseconds(rng)
    windows.append(WindowRow(len(windows) + 1, 10_000, orphan_opens, orphan_opens + timedelta(minutes=20)))
    assignments.append(
        AssignmentRow(
            len(assignments) + 1, 10_000, "Orphan", "of a course that does not exist", None,
            orphan_opens, orphan_opens + timedelta(days=7), True,
        )
    )  # fmt: skip
    enrollments: list[EnrollmentRow] = []
    course_ids = [c.id for c in courses]
    for user_id in range(FIRST_USER_ID, FIRST_USER_ID + USER_COUNT):
        for course_id in sorted(rng.sample(course_ids, rng.choice((2, 3, 3, 4)))):
            status = "dropped" if rng.random() < 0.1 else "active"
            enrollments.append(EnrollmentRow(course_id, user_id, status))
    enrollments.sort()
    return DemoData(tuple(courses), tuple(lectures), tuple(enrollments), tuple(windows), tuple(assignments))


# -- loading ---------------------------------------------------------------------------------------


def _is_empty(conn: psycopg.Connection[tuple[object, ...]], table: str) -> bool:
    row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))).fetchone()
    return row is not None and row[0] is False


def load_demo_data(urls: Mapping[str, str], data: DemoData | None = None) -> bool:
    """Load the demo set (default seed unless ``data`` is given) into each service database whose
    tables are all empty; returns whether anything was loaded.

    ``urls`` maps "course", "attendance" and "assignment" to the service roles' URLs. Each
    database is filled with COPY in one transaction, so it ends up either empty or complete, and a
    second call is a no-op. Tables must exist (``ensure_source_schemas``).
    """
    data = generate_demo_data() if data is None else data
    loaded = False
    for service, tables in data.tables_by_service().items():
        with psycopg.connect(urls[service], connect_timeout=10) as conn:  # one transaction, committed on exit
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cdcsync demo data {service}",))
            if not all(_is_empty(conn, t.table) for t in tables):
                logger.info("%s database already has data; demo data not loaded there", service)
                continue
            for t in tables:
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(t.table), sql.SQL(", ").join(map(sql.Identifier, t.columns))
                )
                with conn.cursor().copy(statement) as copy:
                    for row in t.rows:
                        copy.write_row(row)
                logger.info("loaded %d demo rows into %s.%s", len(t.rows), service, t.table)
            loaded = True
    return loaded
